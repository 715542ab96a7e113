#include "runtime/tooling/server/scheduler.h"

#include <algorithm>

namespace mm::rt::server {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

const char* finished_label(FinishReason r) {
  switch (r) {
    case FinishReason::Eos:
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    default: return "abort";
  }
}

}  // namespace

struct Scheduler::Seq {
  Seq(Queued q, const text::Tokenizer& tok, std::vector<int32_t> eos, bool ignore_eos)
      : request(std::move(q.request)),
        stream(std::move(q.stream)),
        text(tok, std::move(eos), request.stop, ignore_eos, request.skip_special_tokens) {}

  GenerationRequest request;
  std::shared_ptr<RequestStream> stream;
  TokenTextStream text;
  int32_t slot = -1;
  std::vector<int32_t> to_feed;  // tokens to append to the slot before the next sample
  bool started = false;          // the first answer token was sampled
  bool done = false;
  int64_t generated = 0;         // answer tokens (sampled and forced)
  int64_t step = 0;              // sampling step of the next sample
  uint64_t seed = 0;
  bool reasoning_open = false;
  bool forced_written = false;
  int64_t reused = 0;
  EngineEvent carry;             // forced text written before the first sample
  Clock::time_point last_token;

  mm_sampling sampling() const {
    const SamplingSettings& s = request.sampling;
    return mm_sampling{s.temperature, s.top_k, s.top_p, seed};
  }
  // Decode steps of its own: the sampler's draw depends on the batch row and the shared step.
  bool solo() const { return request.sampling.seed.has_value() && request.sampling.temperature > 0; }
};

Scheduler::Scheduler(ApiSession& session, const text::Tokenizer& tokenizer, SchedulerOptions options,
                     Metrics* metrics)
    : session_(session), tokenizer_(tokenizer), options_(std::move(options)), metrics_(metrics),
      rng_(std::random_device{}()) {
  slots_.resize(static_cast<size_t>(options_.max_num_seqs));
  publish();
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() { thread_ = std::thread([this] { run(); }); }

Submitted Scheduler::submit(GenerationRequest request) {
  Submitted out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!healthy_) {
      out.refusal = Refusal::Unhealthy;
    } else if (draining_ || stop_) {
      out.refusal = Refusal::Draining;
    } else if (running_ + static_cast<int64_t>(queue_.size()) >= options_.max_num_seqs + options_.max_queue) {
      out.refusal = Refusal::QueueFull;
    } else {
      out.stream = std::make_shared<RequestStream>();
      queue_.push_back(Queued{std::move(request), out.stream});
      gauges_.waiting = static_cast<int64_t>(queue_.size());
    }
  }
  if (out.stream) cv_.notify_one();
  return out;
}

void Scheduler::begin_drain() {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = true;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return running_ == 0 && queue_.empty(); });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineGauges Scheduler::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gauges_;
}

bool Scheduler::healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return healthy_;
}

bool Scheduler::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_ || stop_;
}

void Scheduler::run() {
  for (;;) {
    std::vector<Queued> admitted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (seqs_.empty())
        cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      // A queued request whose client left never reaches a slot.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->stream->cancelled()) {
          EngineEvent ev;
          ev.finished = true;
          ev.reason = FinishReason::Cancelled;
          ev.prompt_tokens = static_cast<int64_t>(it->request.prompt.size());
          it->stream->push(std::move(ev));
          if (metrics_) metrics_->add_finished("abort");
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      while (!queue_.empty() && static_cast<int64_t>(seqs_.size() + admitted.size()) < options_.max_num_seqs) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      running_ = static_cast<int64_t>(seqs_.size() + admitted.size());
    }
    for (auto& q : admitted) admit(std::move(q));
    if (!seqs_.empty()) step();
    seqs_.erase(std::remove_if(seqs_.begin(), seqs_.end(), [](const auto& s) { return s->done; }), seqs_.end());
    publish();
  }
  // Stopped: whatever is left ends as cancelled.
  std::deque<Queued> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& q : left) {
    EngineEvent ev;
    ev.finished = true;
    ev.reason = FinishReason::Cancelled;
    q.stream->push(std::move(ev));
  }
  for (auto& s : seqs_) {
    if (s->done) continue;
    EngineEvent ev;
    finish(*s, FinishReason::Cancelled, ev);
    s->stream->push(std::move(ev));
  }
  seqs_.clear();
  publish();
}

void Scheduler::admit(Queued q) {
  std::vector<int32_t> eos = q.request.ignore_eos ? std::vector<int32_t>{} : options_.eos_ids;
  for (int32_t id : q.request.stop_token_ids)
    if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  auto seq = std::make_unique<Seq>(std::move(q), tokenizer_, std::move(eos), false);
  Seq& s = *seq;
  seqs_.push_back(std::move(seq));
  s.seed = s.request.sampling.seed ? *s.request.sampling.seed : rng_();
  s.reasoning_open = s.request.reasoning_open;
  const auto now = Clock::now();
  if (metrics_) metrics_->observe_queue_time(seconds_between(s.request.arrival, now));

  const SlotChoice choice = choose_slot(slots_, s.request.prompt, options_.prefix_caching);
  if (choice.slot < 0) {  // cannot happen: admission is bounded by the slot count
    fail(s, Error::internal("no free sequence slot"));
    return;
  }
  s.slot = choice.slot;
  SlotState& slot = slots_[static_cast<size_t>(s.slot)];
  slot.busy = true;
  slot.last_used = ++tick_;
  if (choice.reuse < slot.cached.size()) {
    Status st = choice.reuse == 0 ? session_.release(s.slot) : session_.truncate(s.slot, static_cast<int64_t>(choice.reuse));
    if (!st) {
      fail(s, st.error());
      return;
    }
    slot.cached.resize(choice.reuse);
  }
  s.reused = static_cast<int64_t>(choice.reuse);
  s.to_feed.assign(s.request.prompt.begin() + static_cast<std::ptrdiff_t>(choice.reuse), s.request.prompt.end());
  if (metrics_) {
    metrics_->add_prompt_tokens(static_cast<int64_t>(s.request.prompt.size()));
    metrics_->add_prefix_cache(static_cast<int64_t>(s.request.prompt.size()), s.reused);
  }
  // The prompt already ended the reasoning: a forced tool-call opening starts the answer.
  if (!s.reasoning_open && !s.request.forced.empty()) {
    write_forced(s, s.carry);
    if (!s.carry.finished && s.generated >= s.request.max_tokens) finish(s, FinishReason::Length, s.carry);
    if (s.carry.finished) {
      EngineEvent ev = std::move(s.carry);
      s.stream->push(std::move(ev));
    }
  }
}

void Scheduler::step() {
  // 1. Clients that went away.
  for (auto& sp : seqs_) {
    Seq& s = *sp;
    if (s.done || !s.stream->cancelled()) continue;
    EngineEvent ev;
    finish(s, FinishReason::Cancelled, ev);
    s.stream->push(std::move(ev));
  }
  // 2. One decode step for every generating sequence.
  std::vector<Seq*> batch, solo;
  for (auto& sp : seqs_) {
    Seq& s = *sp;
    if (s.done || !s.started || s.to_feed.size() != 1) continue;
    (s.solo() ? solo : batch).push_back(&s);
  }
  if (!batch.empty()) decode_rows(batch, decode_step_++);
  for (Seq* s : solo) decode_rows({s}, s->step);
  // 3. Prompt chunks (and forced tool-call openings) within the token budget.
  int64_t budget = options_.max_batched_tokens;
  for (auto& sp : seqs_) {
    if (budget <= 0) break;
    Seq& s = *sp;
    if (s.done || s.to_feed.empty() || (s.started && s.to_feed.size() == 1)) continue;
    int64_t used = 0;
    prefill(s, budget, &used);
    budget -= used;
  }
}

void Scheduler::decode_rows(const std::vector<Seq*>& rows, int64_t step) {
  std::vector<int32_t> slots, ids, next;
  std::vector<mm_sampling> sampling;
  for (Seq* s : rows) {
    slots.push_back(s->slot);
    ids.push_back(s->to_feed[0]);
    sampling.push_back(s->sampling());
  }
  Status st = session_.decode(slots, ids, sampling, step, nullptr, &next);
  if (!st) {
    for (Seq* s : rows) fail(*s, st.error());
    return;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    Seq& s = *rows[i];
    slots_[static_cast<size_t>(s.slot)].cached.push_back(s.to_feed[0]);
    s.to_feed.clear();
    accept(s, next[i]);
  }
}

void Scheduler::prefill(Seq& s, int64_t budget, int64_t* used) {
  const int64_t n = std::min<int64_t>(budget, static_cast<int64_t>(s.to_feed.size()));
  const std::span<const int32_t> chunk(s.to_feed.data(), static_cast<size_t>(n));
  int32_t next = -1;
  Status st = session_.prefill(s.slot, chunk, s.sampling(), s.step, nullptr, &next);
  *used = n;
  if (!st) {
    fail(s, st.error());
    return;
  }
  auto& cached = slots_[static_cast<size_t>(s.slot)].cached;
  cached.insert(cached.end(), chunk.begin(), chunk.end());
  s.to_feed.erase(s.to_feed.begin(), s.to_feed.begin() + n);
  if (s.to_feed.empty()) accept(s, next);
}

// One sampled token: text out, end conditions, what to feed next.
void Scheduler::accept(Seq& s, int32_t token) {
  const auto now = Clock::now();
  EngineEvent ev = std::move(s.carry);
  s.carry = EngineEvent{};
  if (metrics_) {
    if (!s.started) metrics_->observe_time_to_first_token(seconds_between(s.request.arrival, now));
    else metrics_->observe_inter_token_latency(seconds_between(s.last_token, now));
    metrics_->add_generation_tokens(1);
  }
  s.started = true;
  s.last_token = now;
  ++s.step;
  ++s.generated;
  ev.ids.push_back(token);
  ev.text += s.text.push(token);
  s.to_feed.assign(1, token);
  if (!s.text.done() && s.reasoning_open && token == options_.think_end_id) {
    s.reasoning_open = false;
    if (!s.request.forced.empty() && s.generated < s.request.max_tokens) write_forced(s, ev);
  }
  if (!ev.finished) check_end(s, ev);
  s.stream->push(std::move(ev));
}

// Writes the forced tool-call opening into the answer (and the ids to feed).
void Scheduler::write_forced(Seq& s, EngineEvent& ev) {
  s.forced_written = true;
  for (int32_t id : s.request.forced) {
    if (s.generated >= s.request.max_tokens || s.text.done()) break;
    ++s.generated;
    if (metrics_) metrics_->add_generation_tokens(1);
    ev.ids.push_back(id);
    ev.text += s.text.push(id);
    s.to_feed.push_back(id);
  }
  if (s.text.done()) finish(s, s.text.reason(), ev);
}

// Ends the answer when the text stream stopped (EOS, stop string), max_tokens is reached, or the
// sequence would outgrow the session. Returns true when it ended.
bool Scheduler::check_end(Seq& s, EngineEvent& ev) {
  if (s.text.done()) {
    finish(s, s.text.reason(), ev);
    return true;
  }
  const int64_t length = static_cast<int64_t>(slots_[static_cast<size_t>(s.slot)].cached.size());
  if (s.generated >= s.request.max_tokens || length + static_cast<int64_t>(s.to_feed.size()) > options_.max_model_len) {
    finish(s, FinishReason::Length, ev);
    return true;
  }
  return false;
}

void Scheduler::finish(Seq& s, FinishReason reason, EngineEvent& ev) {
  if (reason == FinishReason::Length || reason == FinishReason::Cancelled) {
    // Release text held back for a possible stop string; it may still complete one.
    ev.text += s.text.finish();
    if (s.text.done()) reason = s.text.reason();
  }
  s.done = true;
  ev.finished = true;
  ev.reason = reason;
  ev.prompt_tokens = static_cast<int64_t>(s.request.prompt.size());
  ev.completion_tokens = s.generated;
  ev.cached_tokens = s.reused;
  s.to_feed.clear();
  if (s.slot >= 0) {
    SlotState& slot = slots_[static_cast<size_t>(s.slot)];
    slot.busy = false;
    slot.last_used = ++tick_;
  }
  if (metrics_) {
    metrics_->add_finished(finished_label(reason));
    metrics_->observe_e2e_latency(seconds_between(s.request.arrival, Clock::now()));
  }
}

// The engine call failed: the sequence's KV is in an unknown state, so its slot starts empty.
void Scheduler::fail(Seq& s, const Error& e) {
  if (s.done) return;
  s.done = true;
  if (s.slot >= 0) {
    SlotState& slot = slots_[static_cast<size_t>(s.slot)];
    (void)session_.release(s.slot);  // a failure here changes nothing: the slot starts over either way
    slot.cached.clear();
    slot.busy = false;
    slot.last_used = ++tick_;
  }
  if (options_.log) {
    *options_.log << "mmrun serve: a request failed in the engine: " << e.message
                  << (e.kind == ErrorKind::Internal ? " (the server now reports itself unhealthy)" : "") << "\n";
    options_.log->flush();
  }
  if (e.kind == ErrorKind::Internal) {
    std::lock_guard<std::mutex> lock(mu_);
    healthy_ = false;
  }
  EngineEvent ev = std::move(s.carry);
  ev.finished = true;
  ev.error = e;
  ev.prompt_tokens = static_cast<int64_t>(s.request.prompt.size());
  ev.completion_tokens = s.generated;
  ev.cached_tokens = s.reused;
  s.stream->push(std::move(ev));
  if (metrics_) metrics_->add_finished("error");
}

void Scheduler::publish() {
  EngineGauges g;
  const mm_session_info info = session_.info();
  const int64_t block = std::max<int32_t>(1, info.kv_block_size);
  g.kv_blocks_total = info.kv_blocks_total;
  g.kv_blocks_free = info.kv_blocks_free;
  for (const SlotState& slot : slots_) {
    const int64_t blocks = (static_cast<int64_t>(slot.cached.size()) + block - 1) / block;
    (slot.busy ? g.kv_blocks_used : g.kv_blocks_cached) += blocks;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = static_cast<int64_t>(seqs_.size());
    g.running = running_;
    g.waiting = static_cast<int64_t>(queue_.size());
    gauges_ = g;
  }
  if (g.running == 0 && g.waiting == 0) idle_cv_.notify_all();
}

}  // namespace mm::rt::server
