// Generated ids to the text a user sees: streaming decode (never a broken UTF-8 sequence), stop
// strings matched across token boundaries, and the end-of-sequence rule (design.md section 3,
// minimax-m2-spec.md section 5.1). No model here, so the rules are unit-testable on their own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace mm::rt {

// Finds the first occurrence of any stop string in a text that arrives in pieces. Text that may
// be the beginning of a stop string is held back until the next piece decides, so a stop string
// is never printed, even partly, whatever the token boundaries. Works on bytes: the held-back
// part is a prefix of a (valid UTF-8) stop string, so it always starts at a character boundary.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Returns the text that is safe to show now. After a match, stopped() is true, the text from
  // the match on is dropped, and further pushes return nothing.
  std::string push(std::string_view text);
  // End of stream: releases what was held back (it did not become a stop string).
  std::string flush();
  bool stopped() const { return stopped_; }
  // The stop string that matched (empty before a match).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

enum class FinishReason { None, Eos, Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);

// One generation's ids -> text. push() every sampled id in order; the returned text is ready to
// print. Stops on an EOS id (unless ignore_eos; the EOS token itself is not shown) and on a stop
// string (not shown). Once done(), further ids are ignored. skip_special: special added tokens
// decode to nothing (what vLLM's skip_special_tokens, on by default, does for a server).
class TokenTextStream {
 public:
  TokenTextStream(const text::Tokenizer& tokenizer, std::vector<int32_t> eos_ids,
                  std::vector<std::string> stops, bool ignore_eos, bool skip_special = false);
  std::string push(int32_t id);
  // End of generation for another reason (length, cancel): releases the held-back text; an
  // incomplete UTF-8 sequence at the very end becomes U+FFFD, as Tokenizer::decode does.
  std::string finish();
  bool done() const { return reason_ != FinishReason::None; }
  FinishReason reason() const { return reason_; }
  // Everything returned so far.
  const std::string& text() const { return text_; }

 private:
  std::string emit(std::string s);
  text::StreamDecoder decoder_;
  StopMatcher stop_;
  std::vector<int32_t> eos_;
  bool ignore_eos_;
  FinishReason reason_ = FinishReason::None;
  std::string text_;
};

// EOS ids of a model: the plan's eos_token_ids (from generation_config.json) plus the tokenizer's
// end-of-message token "[e~[" when it has one, without duplicates.
std::vector<int32_t> eos_ids_of(const std::vector<int64_t>& plan_eos, const text::Tokenizer* tokenizer);

}  // namespace mm::rt
