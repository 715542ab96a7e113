#include "runtime/src/session.h"

#include <algorithm>

namespace mm::rt {

Expected<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Plan> plan,
                                                   std::unique_ptr<Executor> executor,
                                                   int64_t max_seq_len, int64_t max_seqs) {
  const auto& def = plan->def();
  const auto& lim = *def.limits();
  if (max_seq_len <= 0 || max_seq_len > lim.max_seq_len())
    return Error::bad_input("--max-seq-len " + std::to_string(max_seq_len) +
                            " is outside the plan's limit [1, " + std::to_string(lim.max_seq_len()) +
                            "] (recompile with mmc compile --max-seq-len)");
  if (max_seqs <= 0 || max_seqs > lim.max_batch())
    return Error::bad_input("max sequences " + std::to_string(max_seqs) +
                            " is outside the plan's max_batch [1, " + std::to_string(lim.max_batch()) + "]");
  std::unique_ptr<Session> s(new Session());
  s->block_ = lim.kv_block_size();
  s->max_blocks_ = plan->max_blocks_per_seq();
  const int64_t need = max_seqs * ((max_seq_len + s->block_ - 1) / s->block_);
  if (executor->kv_blocks() < need)
    return Error::internal("the backend holds " + std::to_string(executor->kv_blocks()) +
                           " KV blocks, the session needs " + std::to_string(need));
  s->vocab_ = def.model()->vocab_size();
  s->max_seq_len_ = max_seq_len;
  s->max_seqs_ = max_seqs;
  s->prefill_max_ = std::min<int64_t>(lim.max_prefill_tokens(), plan->program("prefill").max_tokens());
  s->decode_max_ = std::min<int64_t>(lim.max_batch(), plan->program("decode").max_tokens());
  s->seqs_.resize(static_cast<size_t>(max_seqs));
  // Free blocks form a stack with block 0 on top: fresh blocks are taken in increasing order and
  // released ones are reused first (see reserve()).
  for (int64_t b = executor->kv_blocks() - 1; b >= 0; --b) s->free_blocks_.push_back(static_cast<int32_t>(b));
  s->block_tables_.assign(static_cast<size_t>(lim.max_batch() * s->max_blocks_), 0);
  s->plan_ = std::move(plan);
  s->executor_ = std::move(executor);
  return s;
}

Status Session::check_tokens(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab_)
      return Error::bad_input("token id " + std::to_string(tokens[i]) + " at index " +
                              std::to_string(i) + " is outside the vocabulary [0, " +
                              std::to_string(vocab_) + ")");
  return Status::success();
}

Status Session::reserve(int32_t slot, int64_t new_length) {
  if (new_length > max_seq_len_)
    return Error::bad_input("sequence " + std::to_string(slot) + " would reach " +
                            std::to_string(new_length) + " tokens, more than --max-seq-len " +
                            std::to_string(max_seq_len_));
  Seq& s = seqs_[slot];
  const int64_t blocks = (new_length + block_ - 1) / block_;
  while (static_cast<int64_t>(s.blocks.size()) < blocks) {
    if (free_blocks_.empty()) return Error::bad_input("the KV cache is full");
    const int32_t b = free_blocks_.back();
    // Fresh blocks come out lowest first (create() stacks them so), so the backend's pools only
    // ever grow to the most blocks in use at once.
    if (Status st = executor_->ensure_kv_blocks(int64_t{b} + 1); !st) return st;
    free_blocks_.pop_back();
    block_tables_[slot * max_blocks_ + static_cast<int64_t>(s.blocks.size())] = b;
    s.blocks.push_back(b);
  }
  return Status::success();
}

Status Session::release(int32_t slot) {
  if (slot < 0 || slot >= max_seqs_) return Error::bad_input("sequence slot " + std::to_string(slot) + " out of range");
  Seq& s = seqs_[slot];
  for (int32_t b : s.blocks) free_blocks_.push_back(b);
  s.blocks.clear();
  s.length = 0;
  std::fill(block_tables_.begin() + slot * max_blocks_, block_tables_.begin() + (slot + 1) * max_blocks_, 0);
  return Status::success();
}

Status Session::truncate(int32_t slot, int64_t length) {
  if (slot < 0 || slot >= max_seqs_) return Error::bad_input("sequence slot " + std::to_string(slot) + " out of range");
  Seq& s = seqs_[slot];
  if (length < 0 || length > s.length)
    return Error::bad_input("cannot truncate a sequence of " + std::to_string(s.length) + " tokens to " +
                            std::to_string(length));
  const size_t keep = static_cast<size_t>((length + block_ - 1) / block_);
  for (size_t i = keep; i < s.blocks.size(); ++i) {
    free_blocks_.push_back(s.blocks[i]);
    block_tables_[static_cast<size_t>(slot * max_blocks_) + i] = 0;
  }
  s.blocks.resize(keep);
  s.length = length;
  return Status::success();
}

Status Session::prefill(int32_t slot, std::span<const int32_t> tokens, const Sampling& sampling,
                        int64_t step, std::vector<float>* logits, int32_t* next) {
  if (slot < 0 || slot >= max_seqs_) return Error::bad_input("sequence slot " + std::to_string(slot) + " out of range");
  if (tokens.empty()) return Error::bad_input("the prompt is empty");
  if (Status st = check_tokens(tokens); !st) return st;
  Seq& seq = seqs_[slot];
  if (Status st = reserve(slot, seq.length + static_cast<int64_t>(tokens.size())); !st) return st;
  std::vector<int32_t> positions, slots;
  std::vector<float> chunk_logits(static_cast<size_t>(vocab_));
  const int32_t row_sampled_init = -1;
  int32_t sampled = row_sampled_init;
  const float temperature = sampling.temperature;
  const int32_t top_k = sampling.top_k;
  const float top_p = sampling.top_p;
  const uint64_t seed = sampling.seed;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(prefill_max_)) {
    const int64_t n = std::min<int64_t>(prefill_max_, static_cast<int64_t>(tokens.size() - start));
    positions.resize(static_cast<size_t>(n));
    slots.assign(static_cast<size_t>(n), slot);
    for (int64_t i = 0; i < n; ++i) positions[i] = static_cast<int32_t>(seq.length + i);
    const int32_t last_row = static_cast<int32_t>(n - 1);
    CallDims d;
    d.T = n;
    d.R = 1;
    d.S = 1;
    d.CTX = seq.length + n;
    d.STEP = step;
    CallIo io;
    io.tokens = tokens.data() + start;
    io.positions = positions.data();
    io.seq_slots = slots.data();
    io.block_tables = block_tables_.data();
    io.logit_rows = &last_row;
    io.temperature = &temperature;
    io.top_k = &top_k;
    io.top_p = &top_p;
    io.seed = &seed;
    io.logits = chunk_logits.data();
    io.sampled = &sampled;
    if (Status st = executor_->run("prefill", d, io); !st) return st;
    seq.length += n;
  }
  if (logits) *logits = std::move(chunk_logits);
  if (next) *next = sampled;
  return Status::success();
}

Status Session::decode(std::span<const int32_t> slots, std::span<const int32_t> tokens,
                       std::span<const Sampling> sampling, int64_t step, std::vector<float>* logits,
                       std::vector<int32_t>* next) {
  const int64_t B = static_cast<int64_t>(slots.size());
  if (B == 0 || B > decode_max_ || tokens.size() != slots.size() || sampling.size() != slots.size())
    return Error::bad_input("decode takes 1.." + std::to_string(decode_max_) +
                            " sequences with one token and one sampling setting each");
  if (Status st = check_tokens(tokens); !st) return st;
  std::vector<int32_t> positions(static_cast<size_t>(B)), rows(static_cast<size_t>(B)),
      top_k(static_cast<size_t>(B));
  std::vector<float> temperature(static_cast<size_t>(B)), top_p(static_cast<size_t>(B));
  std::vector<uint64_t> seed(static_cast<size_t>(B));
  int64_t ctx = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int32_t s = slots[i];
    if (s < 0 || s >= max_seqs_) return Error::bad_input("sequence slot " + std::to_string(s) + " out of range");
    for (int64_t j = 0; j < i; ++j)
      if (slots[j] == s) return Error::bad_input("sequence slot " + std::to_string(s) + " listed twice");
    if (Status st = reserve(s, seqs_[s].length + 1); !st) return st;
    positions[i] = static_cast<int32_t>(seqs_[s].length);
    ctx = std::max<int64_t>(ctx, seqs_[s].length + 1);
    rows[i] = static_cast<int32_t>(i);
    temperature[i] = sampling[i].temperature;
    top_k[i] = sampling[i].top_k;
    top_p[i] = sampling[i].top_p;
    seed[i] = sampling[i].seed;
  }
  std::vector<float> out_logits(static_cast<size_t>(B * vocab_));
  std::vector<int32_t> sampled(static_cast<size_t>(B), -1);
  CallDims d;
  d.T = B;
  d.R = B;
  d.S = B;
  d.CTX = ctx;
  d.STEP = step;
  CallIo io;
  io.tokens = tokens.data();
  io.positions = positions.data();
  io.seq_slots = slots.data();
  io.block_tables = block_tables_.data();
  io.logit_rows = rows.data();
  io.temperature = temperature.data();
  io.top_k = top_k.data();
  io.top_p = top_p.data();
  io.seed = seed.data();
  io.logits = out_logits.data();
  io.sampled = sampled.data();
  if (Status st = executor_->run("decode", d, io); !st) return st;
  for (int64_t i = 0; i < B; ++i) ++seqs_[slots[i]].length;
  if (logits) *logits = std::move(out_logits);
  if (next) *next = std::move(sampled);
  return Status::success();
}

}  // namespace mm::rt
