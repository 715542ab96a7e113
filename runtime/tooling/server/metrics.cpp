#include "runtime/tooling/server/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace mm::rt::server {

namespace {

// vLLM's bucket bounds for the same histograms, so that quantiles compare.
const std::vector<double> kTtftBounds = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                         1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBounds = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                        0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kLatencyBounds = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,  15.0,
                                            20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double value) {
  out += name;
  out += '{';
  out += labels;
  out += "} ";
  out += number(value);
  out += '\n';
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i)
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + ",le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + ",le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

Metrics::Metrics(std::string model_name)
    : labels_("model_name=\"" + escape_label(model_name) + "\""),
      ttft_(kTtftBounds),
      itl_(kItlBounds),
      e2e_(kLatencyBounds),
      queue_(kLatencyBounds) {}

void Metrics::observe_time_to_first_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}
void Metrics::observe_inter_token_latency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.observe(s);
}
void Metrics::observe_e2e_latency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  e2e_.observe(s);
}
void Metrics::observe_queue_time(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.observe(s);
}
void Metrics::add_prompt_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += n;
}
void Metrics::add_generation_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_tokens_ += n;
}
void Metrics::add_prefix_cache(int64_t queried, int64_t hit) {
  std::lock_guard<std::mutex> lock(mu_);
  prefix_queries_ += queried;
  prefix_hits_ += hit;
}
void Metrics::add_finished(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[reason];
}
void Metrics::add_rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

std::string Metrics::render(const EngineGauges& g, int64_t resident_bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  const std::string& l = labels_;
  header(out, "mmrun:num_requests_running", "gauge", "Requests in the engine (prefilling or decoding).");
  sample(out, "mmrun:num_requests_running", l, static_cast<double>(g.running));
  header(out, "mmrun:num_requests_waiting", "gauge", "Requests queued for a sequence slot.");
  sample(out, "mmrun:num_requests_waiting", l, static_cast<double>(g.waiting));
  header(out, "mmrun:kv_blocks_total", "gauge", "KV-cache blocks of the session.");
  sample(out, "mmrun:kv_blocks_total", l, static_cast<double>(g.kv_blocks_total));
  header(out, "mmrun:kv_blocks_used", "gauge", "KV-cache blocks held by running requests.");
  sample(out, "mmrun:kv_blocks_used", l, static_cast<double>(g.kv_blocks_used));
  header(out, "mmrun:kv_blocks_cached", "gauge",
         "KV-cache blocks kept by idle sequences for prefix reuse (freed when their slot is reused).");
  sample(out, "mmrun:kv_blocks_cached", l, static_cast<double>(g.kv_blocks_cached));
  header(out, "mmrun:kv_blocks_free", "gauge", "KV-cache blocks in the free list.");
  sample(out, "mmrun:kv_blocks_free", l, static_cast<double>(g.kv_blocks_free));
  header(out, "mmrun:kv_cache_usage_perc", "gauge", "KV-cache usage by running requests (1 = 100 percent).");
  sample(out, "mmrun:kv_cache_usage_perc", l,
         g.kv_blocks_total > 0 ? static_cast<double>(g.kv_blocks_used) / static_cast<double>(g.kv_blocks_total) : 0.0);
  header(out, "mmrun:prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
  sample(out, "mmrun:prompt_tokens_total", l, static_cast<double>(prompt_tokens_));
  header(out, "mmrun:generation_tokens_total", "counter", "Generated tokens.");
  sample(out, "mmrun:generation_tokens_total", l, static_cast<double>(generation_tokens_));
  header(out, "mmrun:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.");
  sample(out, "mmrun:prefix_cache_queries_total", l, static_cast<double>(prefix_queries_));
  header(out, "mmrun:prefix_cache_hits_total", "counter", "Prompt tokens whose KV came from the prefix cache.");
  sample(out, "mmrun:prefix_cache_hits_total", l, static_cast<double>(prefix_hits_));
  header(out, "mmrun:request_success_total", "counter", "Finished requests by finish reason.");
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    auto it = finished_.find(reason);
    sample(out, "mmrun:request_success_total", l + ",finished_reason=\"" + reason + "\"",
           static_cast<double>(it == finished_.end() ? 0 : it->second));
  }
  header(out, "mmrun:request_rejected_total", "counter", "Requests refused before they reached the engine.");
  for (const char* reason : {"queue_full", "draining", "unhealthy"}) {
    auto it = rejected_.find(reason);
    sample(out, "mmrun:request_rejected_total", l + ",reason=\"" + reason + "\"",
           static_cast<double>(it == rejected_.end() ? 0 : it->second));
  }
  header(out, "mmrun:time_to_first_token_seconds", "histogram", "Time from arrival to the first generated token.");
  ttft_.render(out, "mmrun:time_to_first_token_seconds", l);
  header(out, "mmrun:inter_token_latency_seconds", "histogram", "Time between two generated tokens of a request.");
  itl_.render(out, "mmrun:inter_token_latency_seconds", l);
  header(out, "mmrun:e2e_request_latency_seconds", "histogram", "Time from arrival to the last token.");
  e2e_.render(out, "mmrun:e2e_request_latency_seconds", l);
  header(out, "mmrun:request_queue_time_seconds", "histogram", "Time a request waited for a sequence slot.");
  queue_.render(out, "mmrun:request_queue_time_seconds", l);
  header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out += "process_resident_memory_bytes " + std::to_string(resident_bytes) + "\n";
  return out;
}

int64_t resident_memory_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace mm::rt::server
