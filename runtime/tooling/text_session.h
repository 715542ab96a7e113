// Text generation over a session of the C API (runtime_api.h): one sequence (slot 0) whose KV
// cache is kept between calls, so that a conversation re-rendered with one more turn only
// prefills what is new.
//
// The engine remembers the ids whose keys/values are in the cache (the prompt and every fed-back
// generated token; the last sampled token is not fed). A new prompt keeps the cache for the longest
// prefix it shares with those ids (mm_session_truncate drops the rest) and prefills the remainder;
// with the MiniMax-M2 template the shared part of a chat ends where the previous answer's
// reasoning was, since it is not re-rendered once a new user message follows.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tooling/runtime_api.h"
#include "runtime/tooling/text_stream.h"
#include "runtime/tokenizer/tokenizer.h"

namespace mm::rt {

struct TextGenParams {
  mm_sampling sampling = greedy_sampling();
  int64_t max_new_tokens = 256;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  bool keep_logits = false;  // fill TextGenResult::logits (for --dump-logits)
};

struct TextGenResult {
  std::vector<int32_t> ids;  // sampled ids, including the one that ended generation (EOS, stop)
  std::string text;          // everything passed to on_text
  FinishReason reason = FinishReason::None;
  int64_t prompt_tokens = 0;
  int64_t reused_tokens = 0;     // prompt tokens whose KV was already in the cache
  int64_t prefilled_tokens = 0;  // prompt tokens run through prefill
  double prefill_s = 0, decode_s = 0;
  int64_t decoded = 0;
  bool context_full = false;  // stopped because the sequence reached max_seq_len
  std::vector<float> logits;  // keep_logits: [ids.size(), vocab], row i the logits of ids[i]
};

class TextEngine {
 public:
  // `eos_ids`: see eos_ids_of(). The session must allow slot 0.
  TextEngine(std::unique_ptr<ApiSession> session, text::Tokenizer tokenizer, std::vector<int32_t> eos_ids);

  // Generates from `prompt` (ids), calling on_text with each piece of text as soon as it is safe to
  // show. Stops on EOS, a stop string, max_new_tokens, the end of the KV capacity (reason Length,
  // context_full set), or when *cancel becomes true (checked between tokens; reason Cancelled). A prompt longer than the capacity is a BadInput error naming both lengths.
  Expected<TextGenResult> generate(std::span<const int32_t> prompt, const TextGenParams& params,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel = nullptr);
  // Forgets the cached sequence.
  Status reset();

  const text::Tokenizer& tokenizer() const { return tokenizer_; }
  const std::vector<int32_t>& eos_ids() const { return eos_; }
  // Ids whose KV is in the cache, in order.
  const std::vector<int32_t>& cached_ids() const { return cached_; }
  int64_t max_seq_len() const { return session_->max_seq_len(); }
  ApiSession& session() { return *session_; }

 private:
  std::unique_ptr<ApiSession> session_;
  text::Tokenizer tokenizer_;
  std::vector<int32_t> eos_;
  std::vector<int32_t> cached_;
};

}  // namespace mm::rt
