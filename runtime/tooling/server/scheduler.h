// The engine thread of `mmrun serve`: continuous batching over one session of the C API (which is
// not thread-safe, so this thread alone calls it).
//
// Every iteration:
//   1. drops requests whose client went away (their slot keeps its KV for prefix reuse);
//   2. admits queued requests while a sequence slot is free (up to --max-num-seqs): the slot with
//      the longest cached prefix of the prompt is chosen (prefix_cache.h) and only the rest is fed;
//   3. one decode step for every sequence that is generating, batched in one call;
//   4. prompt chunks of at most --max-num-batched-tokens tokens in total, first come first served,
//      so that new requests prefill while running ones keep decoding.
// Sampling is per row (temperature, top-k, top-p, seed). The device sampler draws from
// (seed, step, row), so a request with an explicit seed and a temperature above zero runs its
// decode steps as a batch of one with its own step count: it then gets the same tokens alone or
// among others, and the same as `mmrun generate --seed`.
//
// Answers are detokenized here (text_stream.h: UTF-8-safe, stop strings, EOS) and sent as events
// to the request's RequestStream; reasoning and tool-call parsing happen on the HTTP side.
// tool_choice required / a named function: once the model's reasoning is over (the prompt closed
// it, or the model wrote "</think>"), the opening of the tool call is written into the answer as
// if generated (`forced` ids) and generation continues from there.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/tooling/runtime_api.h"
#include "runtime/tooling/server/metrics.h"
#include "runtime/tooling/server/prefix_cache.h"
#include "runtime/tooling/server/request_stream.h"
#include "runtime/tokenizer/tokenizer.h"

namespace mm::rt::server {

struct SamplingSettings {
  float temperature = 1.0f;  // <= 0: greedy
  float top_p = 1.0f;
  int32_t top_k = 0;         // <= 0: all
  std::optional<uint64_t> seed;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingSettings sampling;
  int64_t max_tokens = 16;                 // answer tokens, forced ones included
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;     // end the answer like EOS (also with ignore_eos)
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  bool reasoning_open = false;             // the prompt leaves the model inside "<think>"
  std::vector<int32_t> forced;             // written into the answer once reasoning is over
  std::chrono::steady_clock::time_point arrival = std::chrono::steady_clock::now();
};

struct SchedulerOptions {
  int32_t max_num_seqs = 1;        // the session's slots
  int64_t max_model_len = 0;       // the session's max_seq_len
  int64_t max_batched_tokens = 2048;
  int64_t max_queue = 64;          // waiting requests beyond the running ones
  bool prefix_caching = true;
  std::vector<int32_t> eos_ids;
  int32_t think_end_id = -1;       // "</think>"; -1: the tokenizer has none
  std::ostream* log = nullptr;     // engine failures are reported here too
};

enum class Refusal { None, QueueFull, Draining, Unhealthy };

struct Submitted {
  std::shared_ptr<RequestStream> stream;  // null when refused
  Refusal refusal = Refusal::None;
};

class Scheduler {
 public:
  // `session` (max_num_seqs slots) and `tokenizer` must outlive the scheduler; `metrics` may be null.
  Scheduler(ApiSession& session, const text::Tokenizer& tokenizer, SchedulerOptions options, Metrics* metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  // Queues a request (prompt and max_tokens already checked against max_model_len).
  Submitted submit(GenerationRequest request);
  // Refuses new requests from now on; accepted ones run to their end.
  void begin_drain();
  // Waits until no request is running or queued; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Cancels everything and joins the engine thread.
  void stop();

  EngineGauges gauges() const;
  bool healthy() const;
  bool draining() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Queued {
    GenerationRequest request;
    std::shared_ptr<RequestStream> stream;
  };
  struct Seq;

  void run();
  void admit(Queued q);
  void step();
  void decode_rows(const std::vector<Seq*>& rows, int64_t step);
  void prefill(Seq& s, int64_t budget_tokens, int64_t* used);
  void accept(Seq& s, int32_t token);
  void write_forced(Seq& s, EngineEvent& ev);
  bool check_end(Seq& s, EngineEvent& ev);
  void finish(Seq& s, FinishReason reason, EngineEvent& ev);
  void fail(Seq& s, const Error& e);
  void publish();

  ApiSession& session_;
  const text::Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  Metrics* metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // engine wake-up
  std::condition_variable idle_cv_;  // wait_idle
  std::deque<Queued> queue_;
  int64_t running_ = 0;              // published copy of seqs_.size()
  bool stop_ = false;
  bool draining_ = false;
  bool healthy_ = true;
  EngineGauges gauges_;

  // Engine thread only.
  std::vector<SlotState> slots_;
  std::vector<std::unique_ptr<Seq>> seqs_;  // admission order
  uint64_t tick_ = 0;
  int64_t decode_step_ = 0;
  std::mt19937_64 rng_;
  std::thread thread_;
};

}  // namespace mm::rt::server
