// A session: one plan, one backend, a paged KV cache shared by up to `max_seqs` sequences.
// prefill() appends a sequence's prompt in chunks of the plan's max_prefill_tokens; decode()
// advances several sequences by one token each. Both sample on the backend (the SAMPLE kind)
// and return the logits the token was chosen from.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/src/executor.h"
#include "runtime/src/plan_reader.h"

namespace mm::rt {

struct Sampling {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;         // <= 0: all
  float top_p = 1.0f;        // >= 1: all
  uint64_t seed = 0;
};

class Session {
 public:
  // max_seq_len <= the plan's limit; max_seqs <= the plan's max_batch. The executor must hold at
  // least max_seqs * ceil(max_seq_len / kv_block_size) KV blocks.
  static Expected<std::unique_ptr<Session>> create(std::shared_ptr<const Plan> plan,
                                                   std::unique_ptr<Executor> executor,
                                                   int64_t max_seq_len, int64_t max_seqs);

  int64_t vocab_size() const { return vocab_; }
  int64_t max_seq_len() const { return max_seq_len_; }
  int64_t length(int32_t slot) const { return seqs_[slot].length; }
  int64_t max_seqs() const { return max_seqs_; }
  int64_t kv_blocks_free() const { return static_cast<int64_t>(free_blocks_.size()); }
  const Plan& plan() const { return *plan_; }
  Executor& executor() { return *executor_; }
  int64_t kv_blocks_total() const { return executor_->kv_blocks(); }

  // Appends `tokens` to sequence `slot`; `logits` receives the last token's logits [V] (may be
  // null), `next` the token sampled from them with sampling step `step`.
  Status prefill(int32_t slot, std::span<const int32_t> tokens, const Sampling& sampling,
                 int64_t step, std::vector<float>* logits, int32_t* next);
  // One token per sequence in `slots`; logits [B, V] (may be null) and next [B].
  Status decode(std::span<const int32_t> slots, std::span<const int32_t> tokens,
                std::span<const Sampling> sampling, int64_t step, std::vector<float>* logits,
                std::vector<int32_t>* next);
  // Frees a sequence's KV blocks; the slot starts empty again.
  Status release(int32_t slot);
  // Keeps the first `length` tokens of a sequence and frees the blocks past them; later tokens
  // overwrite the rest of the last kept block (attention bounds keys by position, and fp8 scales
  // are per slot, so stale entries there are never read).
  Status truncate(int32_t slot, int64_t length);

 private:
  struct Seq {
    int64_t length = 0;
    std::vector<int32_t> blocks;
  };
  Session() = default;
  Status check_tokens(std::span<const int32_t> tokens) const;
  Status reserve(int32_t slot, int64_t new_length);

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Executor> executor_;
  int64_t vocab_ = 0, max_seq_len_ = 0, max_seqs_ = 0, block_ = 0, max_blocks_ = 0;
  int64_t prefill_max_ = 0, decode_max_ = 0;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_blocks_;
  std::vector<int32_t> block_tables_;  // [plan max_batch, max_blocks_per_seq]
};

}  // namespace mm::rt
