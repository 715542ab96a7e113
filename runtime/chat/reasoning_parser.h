// Splitting MiniMax-M2 output into reasoning and answer (minimax-m2-spec.md section 6.2).
//
// The chat prompt ends in "<think>\n", so generation starts inside the reasoning block: everything
// up to the first "</think>" is reasoning, the rest is content. Two behaviours, as in vLLM:
//   - minimax_m2 ("split"): an optional leading "<think>" is dropped; without "</think>" everything is
//     reasoning and content is absent.
//   - minimax_m2_append_think: no split; content is "<think>" + output so that clients can pass the
//     whole string back verbatim in the next request.
// Work is on decoded text, so it does not matter how the tokenizer cut the tags: a tag split across
// two feed() calls is held back until it is known to be (or not be) a tag.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mm::text {

struct ReasoningSplit {
  std::string reasoning;               // may be empty
  std::optional<std::string> content;  // absent when there is no "</think>" or nothing after it
};

// Non-streaming minimax_m2 split of a complete output.
ReasoningSplit split_reasoning(std::string_view output);

// What one feed()/finish() call adds to each channel.
struct ReasoningDelta {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

// Streaming minimax_m2 split. The concatenation of all deltas equals split_reasoning() of the
// concatenated input (reasoning, and content or "").
class ReasoningStreamParser {
 public:
  ReasoningDelta feed(std::string_view text);
  // End of generation: releases text held back as a possible partial tag.
  ReasoningDelta finish();
  // True once "</think>" has been seen.
  bool reasoning_done() const { return state_ == State::Content; }

 private:
  enum class State { Start, Reasoning, Content };
  ReasoningDelta drain(bool at_end);
  State state_ = State::Start;
  std::string pending_;  // text not yet attributed to a channel
};

// Non-streaming minimax_m2_append_think: the content to return (reasoning is absent).
std::string append_think(std::string_view output);

// Streaming minimax_m2_append_think: "<think>" is put in front of the first delta.
class AppendThinkStream {
 public:
  std::string feed(std::string_view text);

 private:
  bool started_ = false;
};

// is_reasoning_end(): the most recent of {think_start_id, think_end_id} in `ids` is think_end_id.
// Used to decide whether the tool-call parser may look at the text yet.
bool is_reasoning_end(std::span<const int32_t> ids, int32_t think_start_id, int32_t think_end_id);

// Length of the longest suffix of `text` that is a proper prefix of `tag` (text that must be held
// back while streaming because the next chunk may complete the tag).
size_t partial_tag_suffix(std::string_view text, std::string_view tag);

}  // namespace mm::text
