// The runtime core as the tooling sees it: C++ owners over the C API of include/mm/mm_runtime.h
// (mmrun generate, chat, serve and bench are built on it, as IREE's tooling is built on its HAL).
// An mm_status becomes an mm::Error of the matching exit-code class (design.md section 6).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mm/mm_runtime.h"
#include "support/status.h"

namespace mm::rt {

// Takes ownership of `st` (non-null) and frees it.
Error error_of(mm_status st);

inline mm_sampling greedy_sampling() { return mm_sampling{0.0f, 0, 1.0f, 0}; }

class ApiPlan {
 public:
  static Expected<ApiPlan> load(const std::string& path);
  static Expected<ApiPlan> load_from_memory(const void* data, size_t size, const std::string& origin);

  const mm_plan* get() const { return plan_.get(); }
  const mm_plan_info& info() const { return info_; }
  std::vector<int64_t> eos_ids() const {
    return {info_.eos_token_ids, info_.eos_token_ids + info_.num_eos_token_ids};
  }

 private:
  std::shared_ptr<mm_plan> plan_;
  mm_plan_info info_{};
};

// A session over a plan (which it keeps alive).
class ApiSession {
 public:
  static Expected<std::unique_ptr<ApiSession>> open(const ApiPlan& plan, const mm_session_options& options);
  ~ApiSession() { mm_session_free(session_); }
  ApiSession(const ApiSession&) = delete;
  ApiSession& operator=(const ApiSession&) = delete;

  int64_t vocab_size() const { return plan_.info().vocab_size; }
  int64_t max_seq_len() const { return info().max_seq_len; }
  int64_t length(int32_t slot) const { return mm_session_length(session_, slot); }
  mm_session_info info() const;
  const ApiPlan& plan() const { return plan_; }
  const mm_session* get() const { return session_; }

  // As mm_session_prefill / mm_session_decode; `logits` (may be null) is resized to [n, vocab].
  Status prefill(int32_t slot, std::span<const int32_t> ids, const mm_sampling& sampling, int64_t step,
                 std::vector<float>* logits, int32_t* next);
  Status decode(std::span<const int32_t> slots, std::span<const int32_t> ids,
                std::span<const mm_sampling> sampling, int64_t step, std::vector<float>* logits,
                std::vector<int32_t>* next);
  Status release(int32_t slot);
  Status truncate(int32_t slot, int64_t length);

 private:
  ApiSession(ApiPlan plan, mm_session* s) : plan_(std::move(plan)), session_(s) {}
  ApiPlan plan_;
  mm_session* session_;
};

}  // namespace mm::rt
