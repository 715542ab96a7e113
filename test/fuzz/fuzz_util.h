// Shared by the libFuzzer targets of test/fuzz (docs/reliability.md).
//
// Inputs of several parts (config + index + shard header, messages + tools, tools + model output)
// are split at kSep, three bytes that never occur in UTF-8 text, so JSON seeds never contain it.
// FUZZ_CHECK states a property the code under test promises (streamed parsers agree with the
// non-streaming ones, decode(encode(text)) == text, ...): its failure is a finding like a crash.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace mm::fuzz {

inline constexpr std::string_view kSep = "\xFF\xFE\xFD";

// The first max_parts - 1 separators split; the last part keeps the rest. Missing parts are empty.
inline std::vector<std::string_view> split_input(const uint8_t* data, size_t size, size_t max_parts) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = in.find(kSep);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + kSep.size());
  }
  parts.push_back(in);
  parts.resize(max_parts);
  return parts;
}

// Where a streaming parser's input is cut: a deterministic pattern of chunk lengths 1..16 drawn
// from `seed`, so that the fuzzer explores the cuts along with the text.
inline std::vector<size_t> cuts_for(size_t length, uint8_t seed) {
  std::vector<size_t> cuts;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t pos = 0;;) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    pos += 1 + (seed % 4 == 0 ? 0 : x % 16);
    if (pos >= length) break;
    cuts.push_back(pos);
  }
  return cuts;
}

// An anonymous in-memory file whose path (/proc/self/fd/N) the file readers can open: the code
// under test reads it through its own regular-file path, with no disk I/O.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  // The file becomes `bytes` followed by `zeros` zero bytes (a hole: costs nothing).
  const std::string& set(std::string_view bytes, uint64_t zeros = 0) {
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()) ||
        ::ftruncate(fd_, static_cast<off_t>(bytes.size() + zeros)) != 0)
      std::abort();
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// A test tokenizer loaded once for a target's whole run (LLVMFuzzerInitialize); a fixture that
// does not load stops the run with its message.
inline const mm::text::Tokenizer* load_fixture_tokenizer(const char* path) {
  auto tok = mm::text::Tokenizer::load(path);
  if (!tok) {
    std::fprintf(stderr, "%s\n", tok.error().message.c_str());
    std::abort();
  }
  return new mm::text::Tokenizer(std::move(*tok));
}

}  // namespace mm::fuzz

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);     \
      std::abort();                                                                          \
    }                                                                                        \
} while (0)
