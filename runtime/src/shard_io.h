// Reading checkpoint shards: the file operations the weight loader needs, behind a small interface
// (ShardFs) so that tests can inject short reads and I/O errors without a faulty disk, and the
// sequential-read measurement `mmrun bench --load` compares the loader against.
//
// A shard is opened twice: buffered (always) and with O_DIRECT when the loader asks for it and the
// filesystem allows it (tmpfs and many FUSE filesystems refuse O_DIRECT at open; some network
// filesystems refuse unaligned requests later). O_DIRECT reads need offsets, lengths and buffers
// aligned to kDirectAlign; everything else goes through the buffered descriptor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/status.h"

namespace mm::rt {

// Alignment of O_DIRECT requests (offset, length, buffer address): the largest logical block size
// of the devices we meet (4 KiB-sector NVMe); 512-byte devices accept it too.
inline constexpr uint64_t kDirectAlign = 4096;

class ShardFile {
 public:
  virtual ~ShardFile() = default;
  // pread(2): bytes read (0 at end of file, fewer than asked is allowed), or -errno.
  virtual int64_t read_at(void* dst, uint64_t n, uint64_t offset) = 0;
  // POSIX_FADV_DONTNEED over [offset, offset + n): the pages just read leave the page cache.
  virtual void drop_cache(uint64_t offset, uint64_t n) = 0;
};

class ShardFs {
 public:
  virtual ~ShardFs() = default;
  // Opens `path` for reading; direct: with O_DIRECT. An error carries errno's text and the path.
  // A refusal of O_DIRECT itself (EINVAL) is reported as ErrorKind::Usage so that the caller can
  // fall back to buffered reads.
  virtual Expected<std::unique_ptr<ShardFile>> open(const std::string& path, bool direct) = 0;
};

// The real filesystem (open/pread/posix_fadvise).
ShardFs& posix_shard_fs();

// What a plan reads: its distinct shard files, sorted by name (model-00001-of-00023, ...), which is
// the order the loader reads them in.
struct ShardSet {
  std::string dir;
  std::vector<std::string> files;
  std::string path(size_t i) const { return dir + "/" + files[i]; }
};

// Share of the files' bytes resident in the page cache (mincore over a mapping of each file);
// with drop, POSIX_FADV_DONTNEED is applied to every file first (clean pages only; no root
// needed). Returns the resident share after dropping.
Expected<double> page_cache_share(const ShardSet& shards, bool drop);

struct SequentialRead {
  uint64_t bytes = 0;
  double seconds = 0;
  int files = 0;
};
// Reads every file from start to end with 8 MiB read(2) calls, one file after the other, the way
// `cat` does (buffered, kernel readahead), dropping the page cache behind the reader.
Expected<SequentialRead> read_sequential(const ShardSet& shards);

}  // namespace mm::rt
