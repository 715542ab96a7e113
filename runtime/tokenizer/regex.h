// PCRE2 wrapper for the tokenizer's regexes (tokenizers uses Oniguruma; PCRE2 with UTF + UCP
// accepts the same \p{..} classes, (?i:..) groups and lookaheads these patterns use).
// Compiled once at load, JIT-compiled when the library supports it; matching is thread-safe
// (per-call match data, a per-thread JIT stack).
//
// A pattern from a hostile tokenizer.json can make a match fail at run time: catastrophic
// backtracking hits PCRE2's match limit, unbounded recursion ((?R)) its depth or heap limit. Every
// match runs under those limits, so it ends quickly; a failure throws RegexMatchError, which the
// tokenizer turns into an mm::Error (Tokenizer::encode) and which never leaves runtime/tokenizer.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/status.h"

namespace mm::text {

// A match that PCRE2 gave up on; what() names the pattern and the reason.
class RegexMatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Regex {
 public:
  // `what` names the pattern in errors (e.g. "pre_tokenizer.pretokenizers[0].pattern.Regex").
  static mm::Expected<Regex> compile(const std::string& pattern, const std::string& what);
  // A regex matching `literal` exactly.
  static mm::Expected<Regex> literal(std::string_view literal, const std::string& what);

  // Calls fn(start, end) for every non-overlapping match in `text` (valid UTF-8), left to right.
  // Empty matches are skipped (the search moves on by one character), as tokenizers drops
  // empty pieces anyway. Throws RegexMatchError when a match exceeds the limits.
  void for_each_match(std::string_view text,
                      const std::function<void(size_t, size_t)>& fn) const;
  // True if the pattern matches the whole of `text` (anchored at both ends); false also when the
  // match exceeds the limits.
  bool matches_whole(std::string_view text) const;

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

 private:
  struct Code;
  explicit Regex(std::unique_ptr<Code> code);
  std::unique_ptr<Code> code_;
};

}  // namespace mm::text
