// Reading the files the tools are given, as hostile input: only regular files are opened (a FIFO
// would block the reader forever, a device such as /dev/zero never ends, a directory is a
// mistake), every read is bounded by a size limit stated per kind of file, and every failure is an
// mm::Error that names the file. The one implementation behind every tool's file reads; the
// limits are listed in docs/cli.md ("Input limits").
#pragma once

#include <cstdint>
#include <string>

#include "support/status.h"

namespace mm {

// Largest file of each kind the tools read. Each is far above what a real MiniMax-M2 checkpoint
// or plan holds (numbers in docs/cli.md) and low enough that a hostile file cannot make a tool
// allocate without bound.
inline constexpr uint64_t kMaxPlanFileBytes = 4ull << 30;          // plans hold no weights: 21 MB for 62 layers
inline constexpr uint64_t kMaxConfigFileBytes = 16ull << 20;      // config.json & co. (~3 KB real)
inline constexpr uint64_t kMaxIndexFileBytes = 64ull << 20;        // the safetensors index (9 MB real)
inline constexpr uint64_t kMaxTokenizerFileBytes = 256ull << 20;   // tokenizer.json (~10 MB real)
inline constexpr uint64_t kMaxChatTemplateFileBytes = 4ull << 20;  // chat_template.jinja (~5 KB real)
inline constexpr uint64_t kMaxToolsFileBytes = 16ull << 20;        // mmrun --tools

// An open, regular, read-only file (closed on destruction).
class RegularFile {
 public:
  // Opens `path` without blocking (a FIFO would block in open()), then refuses anything that is
  // not a regular file by what it is ("is a FIFO", "is a directory", ...). `label` prefixes every
  // message (the flag or file kind, e.g. "--tools" or "tokenizer").
  static Expected<RegularFile> open(const std::string& path, const std::string& label);

  RegularFile(RegularFile&& other) noexcept;
  RegularFile& operator=(RegularFile&& other) noexcept;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // at open time
  const std::string& path() const { return path_; }

  // Reads exactly `n` bytes at `offset` (EINTR retried); a short file is a BadInput error.
  Status read_at(uint64_t offset, void* dst, uint64_t n, const std::string& label) const;

 private:
  RegularFile(int fd, uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// The whole of a regular file of at most `max_bytes` bytes. Errors name `label` and `path`: not
// found, not a regular file (by kind), over the limit (with both numbers), read failures.
Expected<std::string> read_regular_file(const std::string& path, const std::string& label,
                                        uint64_t max_bytes);

// What a path is, in words, for messages: "a regular file", "a directory", "a FIFO (named pipe)",
// "a character device", ... or "missing".
std::string describe_file_kind(const std::string& path);

}  // namespace mm
