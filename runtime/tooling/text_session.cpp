#include "runtime/tooling/text_session.h"

#include <algorithm>
#include <chrono>

namespace mm::rt {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TextEngine::TextEngine(std::unique_ptr<ApiSession> session, text::Tokenizer tokenizer, std::vector<int32_t> eos_ids)
    : session_(std::move(session)), tokenizer_(std::move(tokenizer)), eos_(std::move(eos_ids)) {}

Status TextEngine::reset() {
  cached_.clear();
  return session_->release(0);
}

Expected<TextGenResult> TextEngine::generate(std::span<const int32_t> prompt, const TextGenParams& params,
                                             const std::function<void(std::string_view)>& on_text,
                                             const std::atomic<bool>* cancel) {
  TextGenResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return Error::bad_input("the prompt is empty (it encodes to no tokens)");
  const int64_t cap = session_->max_seq_len();
  if (r.prompt_tokens > cap)
    return Error::bad_input("the prompt has " + std::to_string(r.prompt_tokens) +
                            " tokens, more than the maximum sequence length " + std::to_string(cap) +
                            " (--max-seq-len, or the plan's limit)");
  TokenTextStream stream(tokenizer_, eos_, params.stop, params.ignore_eos);
  auto show = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  if (params.max_new_tokens <= 0) {
    r.reason = FinishReason::Length;
    return r;
  }

  // Reuse the cache for the longest prefix the prompt shares with what it holds (a chat turn
  // drops the previous answer's reasoning, so the shared part ends there); at least the last
  // prompt token is prefilled again, since its logits are needed.
  size_t reuse = 0;
  const size_t limit = std::min(cached_.size(), prompt.size() - 1);
  while (reuse < limit && cached_[reuse] == prompt[reuse]) ++reuse;
  if (reuse == 0 && !cached_.empty()) {
    if (Status st = reset(); !st) return st.error();
  } else if (reuse < cached_.size()) {
    if (Status st = session_->truncate(0, static_cast<int64_t>(reuse)); !st) return st.error();
    cached_.resize(reuse);
  }
  r.reused_tokens = static_cast<int64_t>(reuse);
  r.prefilled_tokens = r.prompt_tokens - r.reused_tokens;

  const auto t0 = std::chrono::steady_clock::now();
  int32_t next = -1;
  std::vector<float> logits;
  std::vector<float>* keep = params.keep_logits ? &logits : nullptr;
  const int64_t vocab = session_->vocab_size();
  const std::span<const int32_t> fresh = prompt.subspan(reuse);
  if (Status st = session_->prefill(0, fresh, params.sampling, 0, keep, &next); !st) {
    // A failed prefill leaves the sequence in an unknown state: start over next time.
    (void)reset();
    return st.error();
  }
  cached_.insert(cached_.end(), fresh.begin(), fresh.end());
  r.prefill_s = seconds_since(t0);

  for (int64_t step = 1;; ++step) {
    if (keep) r.logits.insert(r.logits.end(), logits.begin(), logits.begin() + vocab);
    r.ids.push_back(next);
    show(stream.push(next));
    if (stream.done()) break;
    if (static_cast<int64_t>(r.ids.size()) >= params.max_new_tokens) {
      r.reason = FinishReason::Length;
      break;
    }
    if (cancel && cancel->load()) {
      r.reason = FinishReason::Cancelled;
      break;
    }
    if (session_->length(0) >= cap) {
      r.reason = FinishReason::Length;
      r.context_full = true;
      break;
    }
    const auto t1 = std::chrono::steady_clock::now();
    const int32_t slot = 0;
    std::vector<int32_t> nexts;
    if (Status st = session_->decode({&slot, 1}, {&next, 1}, {&params.sampling, 1}, step, keep, &nexts); !st) {
      (void)reset();
      return st.error();
    }
    cached_.push_back(next);
    r.decode_s += seconds_since(t1);
    ++r.decoded;
    next = nexts[0];
  }
  if (stream.done()) {
    r.reason = stream.reason();
  } else {
    show(stream.finish());
    // finish() may still complete a stop string from held-back bytes.
    if (stream.done()) r.reason = stream.reason();
  }
  return r;
}

}  // namespace mm::rt
