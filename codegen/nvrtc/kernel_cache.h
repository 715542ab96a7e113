// A directory of kernels NVRTC already compiled, so that compiling a plan again (another
// --max-seq-len, another checkpoint of the same shape, a test suite compiling the same tiny model
// thirty times) costs a file read per kernel instead of an NVRTC run of seconds. Like ccache: an
// entry is keyed by everything that decides NVRTC's output (the source text, the program name,
// the arch, the options, the NVRTC version and the header directory), and a hit gives back
// exactly what the compile would have produced.
//
// The directory is treated as hostile: an entry is used only when its magic, its length fields,
// its checksum and its whole stored key all check out; anything else (truncated, flipped, another
// key whose hash collides, not a regular file, larger than any kernel) is a miss, and the next
// store replaces it. Stores write a temporary file and rename it into place, so concurrent
// compilers (parallel builds, test suites) never read half an entry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "support/status.h"

namespace mm::codegen {

// One arch's binary of a kernel and what ptxas reported of it.
struct NvrtcBinary {
  std::string arch;              // "sm_90"
  std::vector<uint8_t> cubin;
  int registers = -1;            // per thread (ptxas -v), -1 if unknown
  int shared_bytes = -1;         // static shared memory per block
  int local_bytes = -1;          // stack frame per thread
  int spill_bytes = -1;          // register spill stores per thread
};

// What NVRTC produced for one source and one arch: the binary and that arch's PTX. The arch is
// part of the entry's key and is not stored (`binary.arch` is empty when loaded).
struct CachedKernel {
  NvrtcBinary binary;
  std::string ptx;
};

class KernelCache {
 public:
  // Largest entry read back: a cubin and its PTX are ~100 KB each for this model's kernels.
  static constexpr uint64_t kMaxEntryBytes = 64ull << 20;

  explicit KernelCache(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  // The entry stored under `key`, or nothing (no entry, or one that fails any check above).
  std::optional<CachedKernel> load(const std::string& key) const;

  // Writes the entry for `key` (creating the directory). An error names the path and the reason;
  // the caller's compile has succeeded anyway, so callers report it as a warning.
  Status store(const std::string& key, const CachedKernel& kernel) const;

  // The file an entry for `key` lives in (two 64-bit hashes of the key, in hex).
  std::string path_of(const std::string& key) const;

 private:
  std::string dir_;
};

// The cache directory mmc uses unless told otherwise: $MMC_KERNEL_CACHE when set ("off", "0" or
// "" turn it off: returns ""), else $XDG_CACHE_HOME/mmc/kernels, else $HOME/.cache/mmc/kernels,
// else "" (no cache).
std::string default_kernel_cache_dir();

}  // namespace mm::codegen
