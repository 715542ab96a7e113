#include "runtime/cuda/device.h"

namespace mm::rt {

using cu::CUdeviceptr;

namespace {
CUdeviceptr dp(const void* p) { return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(p)); }
int parse_arch_number(const std::string& a) {
  // "sm_90" / "compute_90" / "sm_90a" -> 90
  const size_t u = a.find('_');
  if (u == std::string::npos) return -1;
  int v = 0;
  size_t i = u + 1;
  for (; i < a.size() && a[i] >= '0' && a[i] <= '9'; ++i) v = v * 10 + (a[i] - '0');
  return i == u + 1 ? -1 : v;
}
}  // namespace

Expected<std::unique_ptr<Device>> Device::open(int ordinal) {
  auto sym = cu::symbols();
  if (!sym.ok()) return sym.error();
  const cu::Symbols* s = *sym;
  int count = 0;
  MM_CU(s, cuDeviceGetCount, &count);
  if (count == 0) return Error::internal("no CUDA device: the driver reports 0 devices");
  if (ordinal < 0 || ordinal >= count)
    return Error::usage("CUDA device " + std::to_string(ordinal) + " does not exist (" + std::to_string(count) + " present)");
  std::unique_ptr<Device> d(new Device());
  d->sym_ = s;
  MM_CU(s, cuDeviceGet, &d->dev_, ordinal);
  MM_CU(s, cuDevicePrimaryCtxRetain, &d->ctx_, d->dev_);
  MM_CU(s, cuCtxSetCurrent, d->ctx_);
  MM_CU(s, cuStreamCreate, &d->stream_, cu::CU_STREAM_NON_BLOCKING);
  DeviceInfo& in = d->info_;
  in.ordinal = ordinal;
  char name[256] = {0};
  MM_CU(s, cuDeviceGetName, name, static_cast<int>(sizeof name - 1), d->dev_);
  in.name = name;
  MM_CU(s, cuDeviceGetAttribute, &in.cc_major, cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev_);
  MM_CU(s, cuDeviceGetAttribute, &in.cc_minor, cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev_);
  MM_CU(s, cuDeviceGetAttribute, &in.sm_count, cu::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d->dev_);
  MM_CU(s, cuDeviceGetAttribute, &in.l2_bytes, cu::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, d->dev_);
  MM_CU(s, cuDeviceGetAttribute, &in.max_shared_optin, cu::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, d->dev_);
  MM_CU(s, cuDeviceTotalMem_v2, &in.total_bytes, d->dev_);
  return d;
}

Device::~Device() {
  if (!sym_) return;
  sym_->cuCtxSetCurrent(ctx_);
  if (stream_) sym_->cuStreamDestroy_v2(stream_);
  if (ctx_) sym_->cuDevicePrimaryCtxRelease_v2(dev_);
}

// The context is current per thread, and a Device is used from threads other than the one that
// opened it (mmrun serve's engine thread; a C API caller's own threads). Driver calls that take a
// stream or a function find their context through it, but others need the current one
// (cuGraphInstantiate, cuEventCreate, synchronous copies and memsets): without this a graph
// captured on the server's engine thread failed with CUDA_ERROR_INVALID_CONTEXT. Every method
// binds the context first; the thread-local note of what this thread made current keeps that to
// one cuCtxSetCurrent per thread and device. (Nothing else in the process switches a thread's
// context: cuBLAS in measure.cpp runs on the primary context this Device retains.)
Status Device::make_current() const {
  thread_local cu::CUcontext current = nullptr;
  if (current == ctx_) return Status::success();
  MM_CU(sym_, cuCtxSetCurrent, ctx_);
  current = ctx_;
  return Status::success();
}

Expected<size_t> Device::free_memory() const {
  if (auto st = make_current(); !st) return st.error();
  size_t free_b = 0, total = 0;
  MM_CU(sym_, cuMemGetInfo_v2, &free_b, &total);
  return free_b;
}

Expected<void*> Device::alloc(size_t bytes) {
  if (auto st = make_current(); !st) return st.error();
  CUdeviceptr p = 0;
  MM_CU(sym_, cuMemAlloc_v2, &p, bytes == 0 ? 1 : bytes);
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}
Status Device::free(void* dptr) {
  if (Status st = make_current(); !st) return st;
  if (!dptr) return Status::success();
  MM_CU(sym_, cuMemFree_v2, dp(dptr));
  return Status::success();
}
Expected<void*> Device::alloc_host(size_t bytes) {
  if (auto st = make_current(); !st) return st.error();
  void* p = nullptr;
  MM_CU(sym_, cuMemAllocHost_v2, &p, bytes == 0 ? 1 : bytes);
  return p;
}
Status Device::free_host(void* p) {
  if (Status st = make_current(); !st) return st;
  if (!p) return Status::success();
  MM_CU(sym_, cuMemFreeHost, p);
  return Status::success();
}
Status Device::register_host(void* p, size_t bytes) {
  if (auto st = make_current(); !st) return st.error();
  MM_CU(sym_, cuMemHostRegister_v2, p, bytes, 0);
  return Status::success();
}
Status Device::unregister_host(void* p) {
  if (Status st = make_current(); !st) return st;
  if (!p) return Status::success();
  MM_CU(sym_, cuMemHostUnregister, p);
  return Status::success();
}
Status Device::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyHtoD_v2, dp(dst), src, bytes);
  return Status::success();
}
Status Device::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyDtoH_v2, dst, dp(src), bytes);
  return Status::success();
}
Status Device::copy_device(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyDtoD_v2, dp(dst), dp(src), bytes);
  return Status::success();
}
Status Device::copy_to_device_async(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyHtoDAsync_v2, dp(dst), src, bytes, stream_);
  return Status::success();
}
Status Device::copy_to_host_async(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyDtoHAsync_v2, dst, dp(src), bytes, stream_);
  return Status::success();
}
Status Device::copy_device_async(void* dst, const void* src, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemcpyDtoDAsync_v2, dp(dst), dp(src), bytes, stream_);
  return Status::success();
}
Status Device::copy_rows_to_device_async(void* dst, size_t dst_pitch, const void* src, size_t width, size_t rows) {
  if (Status st = make_current(); !st) return st;
  if (rows == 0 || width == 0) return Status::success();
  cu::Memcpy2D m;
  m.srcMemoryType = cu::CU_MEMORYTYPE_HOST;
  m.srcHost = src;
  m.srcPitch = width;
  m.dstMemoryType = cu::CU_MEMORYTYPE_DEVICE;
  m.dstDevice = dp(dst);
  m.dstPitch = dst_pitch;
  m.WidthInBytes = width;
  m.Height = rows;
  MM_CU(sym_, cuMemcpy2DAsync_v2, &m, stream_);
  return Status::success();
}
Status Device::memset(void* dst, int byte, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemsetD8_v2, dp(dst), static_cast<unsigned char>(byte), bytes);
  return Status::success();
}
Status Device::memset_async(void* dst, int byte, size_t bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuMemsetD8Async, dp(dst), static_cast<unsigned char>(byte), bytes, stream_);
  return Status::success();
}

Expected<Kernel> Device::load(const KernelImage& image) {
  if (auto st = make_current(); !st) return st.error();
  const std::string arch = info_.arch();
  const void* data = nullptr;
  bool from_ptx = false;
  std::string have;
  for (const auto& [a, bytes] : image.cubins) {
    have += (have.empty() ? "" : ", ") + a;
    if (a == arch && !bytes.empty()) data = bytes.data();
  }
  std::string ptx_copy;
  if (!data && !image.ptx.empty()) {
    const int pa = parse_arch_number(image.ptx_arch);
    if (pa > 0 && pa <= info_.sm()) {
      ptx_copy.assign(image.ptx.data(), image.ptx.size());   // the driver wants it NUL-terminated
      data = ptx_copy.c_str();
      from_ptx = true;
    }
    have += (have.empty() ? "" : ", ") + std::string("PTX ") + image.ptx_arch;
  }
  if (!data)
    return Error::bad_input("kernel " + image.name + " has no cubin for this device's arch " + arch + " (" +
                            info_.name + ") and no PTX it can run (the plan has: " +
                            (have.empty() ? "nothing" : have) + "); recompile with --target " + arch);
  Kernel k;
  k.name = image.name;
  k.from_ptx = from_ptx;
  MM_CU(sym_, cuModuleLoadData, &k.module, data);
  const cu::CUresult rc = sym_->cuModuleGetFunction(&k.function, k.module, image.name.c_str());
  if (rc != cu::CUDA_SUCCESS) {
    sym_->cuModuleUnload(k.module);
    Error e = cu::call_error("cuModuleGetFunction", rc, __FILE__, __LINE__);
    e.message += " (entry point " + image.name + ")";
    return e;
  }
  return k;
}

Status Device::unload(Kernel& kernel) {
  if (Status st = make_current(); !st) return st;
  if (kernel.module) MM_CU(sym_, cuModuleUnload, kernel.module);
  kernel.module = nullptr;
  kernel.function = nullptr;
  return Status::success();
}

Status Device::set_dynamic_shared(const Kernel& kernel, int bytes) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuFuncSetAttribute, kernel.function, cu::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
  return Status::success();
}

Status Device::launch(const Kernel& kernel, Dim3 grid, Dim3 block, int dynamic_shared, const mm_kernel_args& args,
                      bool pdl) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return Status::success();   // nothing to do
  if (Status st = make_current(); !st) return st;
  mm_kernel_args copy = args;   // passed by value: the driver copies the bytes at launch
  void* params[] = {&copy};
  if (pdl) {
    cu::CUlaunchAttribute attr{};
    attr.id = cu::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmatic_stream_serialization_allowed = 1;
    cu::CUlaunchConfig cfg{grid.x, grid.y, grid.z, block.x, block.y, block.z,
                           static_cast<unsigned>(dynamic_shared), stream_, &attr, 1};
    MM_CU(sym_, cuLaunchKernelEx, &cfg, kernel.function, params, nullptr);
    return Status::success();
  }
  MM_CU(sym_, cuLaunchKernel, kernel.function, grid.x, grid.y, grid.z, block.x, block.y, block.z,
        static_cast<unsigned>(dynamic_shared), stream_, params, nullptr);
  return Status::success();
}

Status Device::synchronize() {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuStreamSynchronize, stream_);
  return Status::success();
}

Status Device::begin_capture() {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuStreamBeginCapture_v2, stream_, cu::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
  return Status::success();
}
Expected<cu::CUgraphExec> Device::end_capture() {
  if (Status st = make_current(); !st) return st.error();
  cu::CUgraph g = nullptr;
  MM_CU(sym_, cuStreamEndCapture, stream_, &g);
  cu::CUgraphExec exec = nullptr;
  const cu::CUresult rc = sym_->cuGraphInstantiateWithFlags(&exec, g, 0);
  sym_->cuGraphDestroy(g);   // the executable graph is independent of its template
  if (rc != cu::CUDA_SUCCESS) return cu::call_error("cuGraphInstantiateWithFlags", rc, __FILE__, __LINE__);
  return exec;
}
Status Device::launch_graph(cu::CUgraphExec exec) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuGraphLaunch, exec, stream_);
  return Status::success();
}
Status Device::destroy_graph(cu::CUgraphExec exec) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuGraphExecDestroy, exec);
  return Status::success();
}

Expected<cu::CUevent> Device::record_event() {
  if (Status st = make_current(); !st) return st.error();
  cu::CUevent ev = nullptr;
  MM_CU(sym_, cuEventCreate, &ev, cu::CU_EVENT_DEFAULT);
  MM_CU(sym_, cuEventRecord, ev, stream_);
  return ev;
}
Expected<float> Device::elapsed_ms(cu::CUevent start, cu::CUevent end) {
  if (Status st = make_current(); !st) return st.error();
  MM_CU(sym_, cuEventSynchronize, end);
  float ms = 0.f;
  MM_CU(sym_, cuEventElapsedTime_v2, &ms, start, end);
  return ms;
}
Status Device::destroy_event(cu::CUevent ev) {
  if (Status st = make_current(); !st) return st;
  MM_CU(sym_, cuEventDestroy_v2, ev);
  return Status::success();
}

}  // namespace mm::rt
