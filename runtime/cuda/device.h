// A small CUDA device wrapper over the driver symbol table (cuda_symbols.h): context, memory,
// modules (cubin per arch, PTX fallback), launches with mm_kernel_args, one stream, CUDA graphs,
// events. Every failure is an mm::Error naming the driver call and where it was made.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/kernels/abi.h"
#include "support/status.h"
#include "runtime/cuda/cuda_symbols.h"

namespace mm::rt {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int l2_bytes = 0;
  int max_shared_optin = 0;   // bytes per block after cuFuncSetAttribute
  size_t total_bytes = 0;
  int sm() const { return cc_major * 10 + cc_minor; }          // 90, 121
  std::string arch() const { return "sm_" + std::to_string(sm()); }
};

// The images of one kernel: cubins per arch ("sm_90") and optional PTX (ptx_arch "compute_90").
struct KernelImage {
  std::string name;   // entry point
  std::vector<std::pair<std::string, std::string_view>> cubins;
  std::string_view ptx;
  std::string ptx_arch;
};

struct Kernel {
  cu::CUmodule module = nullptr;
  cu::CUfunction function = nullptr;
  std::string name;
  bool from_ptx = false;
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

class Device {
 public:
  // Fails cleanly (BadInput-free Internal error "no CUDA driver ..." / "no CUDA device ...")
  // when libcuda or a device is missing.
  static Expected<std::unique_ptr<Device>> open(int ordinal = 0);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }
  cu::CUstream stream() const { return stream_; }
  Expected<size_t> free_memory() const;

  Expected<void*> alloc(size_t bytes);      // device pointer (as void*)
  Status free(void* dptr);
  Expected<void*> alloc_host(size_t bytes); // pinned
  Status free_host(void* p);
  // Page-locks existing host memory (cuMemHostRegister): unlike alloc_host's memory it stays an
  // ordinary mapping, so O_DIRECT reads can land in it.
  Status register_host(void* p, size_t bytes);
  Status unregister_host(void* p);
  Status copy_to_device(void* dst, const void* src, size_t bytes);
  Status copy_to_host(void* dst, const void* src, size_t bytes);
  Status copy_device(void* dst, const void* src, size_t bytes);
  Status copy_to_device_async(void* dst, const void* src, size_t bytes);   // on stream()
  Status copy_to_host_async(void* dst, const void* src, size_t bytes);
  Status copy_device_async(void* dst, const void* src, size_t bytes);       // on stream()
  // `rows` rows of `width` bytes from host src (rows contiguous) to dst, dst + dst_pitch, ...
  Status copy_rows_to_device_async(void* dst, size_t dst_pitch, const void* src, size_t width, size_t rows);
  Status memset(void* dst, int byte, size_t bytes);
  Status memset_async(void* dst, int byte, size_t bytes);

  // Picks the cubin for this device's arch, else the PTX when its arch is not newer than the
  // device; otherwise a BadInput error naming the kernel, the device arch and what there is.
  Expected<Kernel> load(const KernelImage& image);
  Status unload(Kernel& kernel);
  Status set_dynamic_shared(const Kernel& kernel, int bytes);
  // pdl: programmatic dependent launch (cuLaunchKernelEx with programmatic stream serialization;
  // sm_90+): the kernel may start while the previous launch on the stream still runs and must
  // wait for it itself (docs/kernels.md section 6). Captured into graphs as a programmatic edge.
  Status launch(const Kernel& kernel, Dim3 grid, Dim3 block, int dynamic_shared, const mm_kernel_args& args,
                bool pdl = false);
  Status synchronize();

  // Graph capture on stream(): begin, launches, end -> an executable graph.
  Status begin_capture();
  Expected<cu::CUgraphExec> end_capture();
  Status launch_graph(cu::CUgraphExec exec);
  Status destroy_graph(cu::CUgraphExec exec);

  Expected<cu::CUevent> record_event();
  Expected<float> elapsed_ms(cu::CUevent start, cu::CUevent end);   // synchronizes on end
  Status destroy_event(cu::CUevent ev);

 private:
  Device() = default;
  const cu::Symbols* sym_ = nullptr;
  cu::CUdevice dev_ = 0;
  cu::CUcontext ctx_ = nullptr;
  cu::CUstream stream_ = nullptr;
  cu::CUgraph capturing_ = nullptr;
  DeviceInfo info_;
  Status make_current() const;
};

}  // namespace mm::rt
