// NVRTC driver: compiles one generated kernel source for a list of GPU archs to cubins (+ PTX of
// the lowest arch for forward compatibility). MLIR-free; thread-safe; identical sources (same
// text and options) are compiled once and shared, and with a cache directory (kernel_cache.h)
// each (source, arch) NVRTC compiled before, in any process, is read back instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "codegen/nvrtc/kernel_cache.h"
#include "support/status.h"

namespace mm::codegen {

struct NvrtcOptions {
  std::vector<std::string> archs{"sm_121", "sm_90"};  // "sm_XX" each
  std::string include_dir;                            // CUDA headers (cuda_bf16.h ...); "" = built-in default
  bool line_info = false;                             // -lineinfo
  bool ptx = true;                                    // keep the PTX of the lowest arch
  std::string cache_dir;                              // KernelCache directory; "" = none
};

struct NvrtcResult {
  uint64_t source_hash = 0;
  std::vector<NvrtcBinary> binaries;  // in the order of NvrtcOptions::archs
  std::string ptx;
  std::string ptx_arch;               // "compute_90"
};

// The include directory CMake found (MM_CUDA_INCLUDE_DIR_FIRST), baked in at build time.
const char* default_cuda_include_dir();

// Parses an arch name: "sm_90" -> 90, "sm_121" -> 121; -1 if malformed.
int parse_sm(const std::string& arch);

class NvrtcCompiler {
 public:
  explicit NvrtcCompiler(NvrtcOptions options);
  const NvrtcOptions& options() const { return options_; }

  // `name` is the program name shown in messages (e.g. the entry name). On an NVRTC error the
  // message carries the arch, the log and each generated source line the log points at.
  Expected<std::shared_ptr<const NvrtcResult>> compile(const std::string& name, const std::string& source);

  size_t cached() const;  // distinct sources compiled so far
  // (source, arch) pairs read from the cache directory, and those NVRTC compiled.
  size_t disk_hits() const { return disk_hits_; }
  size_t nvrtc_runs() const { return nvrtc_runs_; }
  // The first failure to store into the cache directory ("" if none): the compiles succeeded.
  std::string cache_warning() const;

 private:
  std::vector<std::string> arch_options(const std::string& arch) const;
  std::string cache_key(const std::string& name, const std::string& source, const std::string& arch) const;
  Expected<CachedKernel> run_nvrtc(const std::string& name, const std::string& source,
                                   const std::string& arch) const;
  Expected<CachedKernel> compile_arch(const std::string& name, const std::string& source,
                                      const std::string& arch);

  NvrtcOptions options_;
  std::unique_ptr<KernelCache> disk_;
  std::atomic<size_t> disk_hits_{0}, nvrtc_runs_{0};
  std::string cache_warning_;  // under mu_
  mutable std::mutex mu_;
  std::map<uint64_t, std::vector<std::pair<std::string, std::shared_ptr<const NvrtcResult>>>> cache_;
};

}  // namespace mm::codegen
