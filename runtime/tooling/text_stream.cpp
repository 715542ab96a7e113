#include "runtime/tooling/text_stream.h"

#include <algorithm>

namespace mm::rt {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  // An empty stop string would match everywhere; it means nothing, so it is ignored.
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  // The earliest match wins (on a tie, the longer stop string: both end the text at that point).
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    const size_t at = held_.find(s);
    if (at != std::string::npos && (best == std::string::npos || at < best ||
                                    (at == best && s.size() > matched_.size()))) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string: only there can a
  // match that the next piece completes begin.
  size_t keep = 0;
  for (const auto& s : stops_) {
    const size_t most = std::min(s.size() - 1, held_.size());
    for (size_t n = most; n > keep; --n)
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "none";
}

TokenTextStream::TokenTextStream(const text::Tokenizer& tokenizer, std::vector<int32_t> eos_ids,
                                 std::vector<std::string> stops, bool ignore_eos, bool skip_special)
    : decoder_(tokenizer, skip_special), stop_(std::move(stops)), eos_(std::move(eos_ids)), ignore_eos_(ignore_eos) {}

std::string TokenTextStream::emit(std::string s) {
  text_ += s;
  return s;
}

std::string TokenTextStream::push(int32_t id) {
  if (done()) return {};
  if (!ignore_eos_ && std::find(eos_.begin(), eos_.end(), id) != eos_.end()) {
    std::string out = stop_.push(decoder_.flush());
    if (stop_.stopped()) {
      reason_ = FinishReason::Stop;
      return emit(std::move(out));
    }
    out += stop_.flush();
    reason_ = FinishReason::Eos;
    return emit(std::move(out));
  }
  std::string out = stop_.push(decoder_.push(id));
  if (stop_.stopped()) reason_ = FinishReason::Stop;
  return emit(std::move(out));
}

std::string TokenTextStream::finish() {
  if (done()) return {};
  std::string out = stop_.push(decoder_.flush());
  if (stop_.stopped()) {
    reason_ = FinishReason::Stop;
    return emit(std::move(out));
  }
  out += stop_.flush();
  return emit(std::move(out));
}

std::vector<int32_t> eos_ids_of(const std::vector<int64_t>& plan_eos, const text::Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  auto add = [&](int64_t id) {
    if (id >= 0 && id <= INT32_MAX && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(static_cast<int32_t>(id));
  };
  for (int64_t id : plan_eos) add(id);
  if (tokenizer)
    if (auto id = tokenizer->token_id("[e~["); id) add(*id);
  return ids;
}

}  // namespace mm::rt
