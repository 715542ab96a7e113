// PCRE2 wrapper for the tokenizer's regexes (tokenizers uses Oniguruma; PCRE2 with UTF + UCP
// accepts the same \p{..} classes, (?i:..) groups and lookaheads these patterns use).
// Compiled once at load, JIT-compiled when the library supports it; matching is thread-safe
// (per-call match data, a per-thread JIT stack).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "support/status.h"

namespace mm::text {

class Regex {
 public:
  // `what` names the pattern in errors (e.g. "pre_tokenizer.pretokenizers[0].pattern.Regex").
  static mm::Expected<Regex> compile(const std::string& pattern, const std::string& what);
  // A regex matching `literal` exactly.
  static mm::Expected<Regex> literal(std::string_view literal, const std::string& what);

  // Calls fn(start, end) for every non-overlapping match in `text` (valid UTF-8), left to right.
  // Empty matches are skipped (the search moves on by one character), as tokenizers drops
  // empty pieces anyway.
  void for_each_match(std::string_view text,
                      const std::function<void(size_t, size_t)>& fn) const;
  // True if the pattern matches the whole of `text` (anchored at both ends).
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
