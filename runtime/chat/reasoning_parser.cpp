#include "runtime/chat/reasoning_parser.h"

#include <algorithm>

namespace mm::text {
namespace {
constexpr std::string_view kThinkStart = "<think>";
constexpr std::string_view kThinkEnd = "</think>";
}  // namespace

size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  size_t longest = std::min(text.size(), tag.size() - 1);
  for (size_t len = longest; len > 0; --len)
    if (text.substr(text.size() - len) == tag.substr(0, len)) return len;
  return 0;
}

ReasoningSplit split_reasoning(std::string_view output) {
  if (output.substr(0, kThinkStart.size()) == kThinkStart) output.remove_prefix(kThinkStart.size());
  ReasoningSplit split;
  size_t end = output.find(kThinkEnd);
  if (end == std::string_view::npos) {
    split.reasoning = std::string(output);
    return split;
  }
  split.reasoning = std::string(output.substr(0, end));
  std::string_view rest = output.substr(end + kThinkEnd.size());
  if (!rest.empty()) split.content = std::string(rest);
  return split;
}

ReasoningDelta ReasoningStreamParser::feed(std::string_view text) {
  pending_.append(text);
  return drain(false);
}

ReasoningDelta ReasoningStreamParser::finish() { return drain(true); }

ReasoningDelta ReasoningStreamParser::drain(bool at_end) {
  ReasoningDelta delta;
  if (state_ == State::Start) {
    // Wait until we know whether the output opens with its own "<think>".
    if (pending_.size() < kThinkStart.size() && kThinkStart.substr(0, pending_.size()) == pending_ && !at_end)
      return delta;
    if (pending_.compare(0, kThinkStart.size(), kThinkStart) == 0) pending_.erase(0, kThinkStart.size());
    state_ = State::Reasoning;
  }
  if (state_ == State::Reasoning) {
    size_t end = pending_.find(kThinkEnd);
    if (end == std::string::npos) {
      size_t hold = at_end ? 0 : partial_tag_suffix(pending_, kThinkEnd);
      delta.reasoning = pending_.substr(0, pending_.size() - hold);
      pending_.erase(0, pending_.size() - hold);
      return delta;
    }
    delta.reasoning = pending_.substr(0, end);
    pending_.erase(0, end + kThinkEnd.size());
    state_ = State::Content;
  }
  delta.content += pending_;
  pending_.clear();
  return delta;
}

std::string append_think(std::string_view output) { return std::string(kThinkStart) + std::string(output); }

std::string AppendThinkStream::feed(std::string_view text) {
  if (started_) return std::string(text);
  started_ = true;
  return std::string(kThinkStart) + std::string(text);
}

bool is_reasoning_end(std::span<const int32_t> ids, int32_t think_start_id, int32_t think_end_id) {
  for (size_t i = ids.size(); i > 0; --i) {
    if (ids[i - 1] == think_end_id) return true;
    if (ids[i - 1] == think_start_id) return false;
  }
  return false;
}

}  // namespace mm::text
