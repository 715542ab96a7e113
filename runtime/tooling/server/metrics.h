// Prometheus metrics of `mmrun serve` (GET /metrics, text exposition format 0.0.4). Names follow
// vLLM's (vllm:* -> mmrun:*) so that dashboards carry over: requests running/waiting, KV blocks,
// prompt/generation token counters, prefix-cache queries/hits, finished requests by reason, and
// histograms of time to first token, inter-token latency and end-to-end latency. Thread-safe:
// the engine thread records, HTTP threads render.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mm::rt::server {

// A cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of `name` with `labels` ("model_name=\"x\"").
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What the scheduler reports about itself when /metrics is read.
struct EngineGauges {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;    // held by running requests
  int64_t kv_blocks_cached = 0;  // held by idle sequences for prefix reuse (evicted on demand)
  int64_t kv_blocks_free = 0;
};

class Metrics {
 public:
  explicit Metrics(std::string model_name);

  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);
  void observe_e2e_latency(double seconds);
  void observe_queue_time(double seconds);
  void add_prompt_tokens(int64_t n);
  void add_generation_tokens(int64_t n);
  // A prompt of `queried` tokens found `hit` of them in the KV cache.
  void add_prefix_cache(int64_t queried, int64_t hit);
  // finished_reason: stop, length, abort, error (vLLM's labels).
  void add_finished(const std::string& finished_reason);
  // reason: queue_full, draining, bad_request, ...
  void add_rejected(const std::string& reason);

  std::string render(const EngineGauges& gauges, int64_t resident_bytes) const;

 private:
  std::string labels_;
  mutable std::mutex mu_;
  Histogram ttft_, itl_, e2e_, queue_;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0, prefix_queries_ = 0, prefix_hits_ = 0;
  std::map<std::string, int64_t> finished_, rejected_;
};

// Resident set size of this process in bytes (/proc/self/statm); 0 where unavailable.
int64_t resident_memory_bytes();

}  // namespace mm::rt::server
