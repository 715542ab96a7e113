// UTF-8 helpers of the tokenizer: one decoding step that tells complete, truncated and invalid
// sequences apart (the streaming decoder holds truncated ones), and lossy repair that replaces
// each maximal invalid subpart by U+FFFD exactly like Rust's String::from_utf8_lossy (what
// tokenizers' decoders use) and Python's errors="replace".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mm::text {

enum class Utf8Kind { Ok, Incomplete, Invalid };

struct Utf8Step {
  Utf8Kind kind;
  size_t len;     // Ok: bytes of the character; Incomplete: all bytes left; Invalid: bytes to skip
  uint32_t cp;    // Ok only
};

// Decodes the sequence starting at s[0] (n >= 1).
Utf8Step utf8_step(const unsigned char* s, size_t n);

// True if every byte of `s` belongs to a complete, valid UTF-8 sequence.
bool utf8_valid(std::string_view s);

// `s` with every maximal invalid subpart (and a truncated tail) replaced by U+FFFD.
std::string utf8_lossy(std::string_view s);

void utf8_append(std::string& out, uint32_t cp);

// Code point that ends at s[end) (s valid UTF-8, end > 0), and where it starts.
uint32_t utf8_last_cp(std::string_view s, size_t end, size_t* start);

}  // namespace mm::text
