// GPU test harness: opens the device once (tests skip with "skipped: no CUDA device" without one),
// compiles specializations with NVRTC for the device's arch at test time, and moves host buffers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codegen/kernels/specialize.h"
#include "codegen/nvrtc/nvrtc_compiler.h"
#include "codegen/reference/reference.h"
#include "runtime/cuda/device.h"

namespace mm::gputest {

struct Ctx {
  std::unique_ptr<rt::Device> dev;
  std::unique_ptr<codegen::NvrtcCompiler> nvrtc;
  std::string why;   // why there is no device
};

inline Ctx& ctx() {
  static Ctx c = [] {
    Ctx c;
    auto d = rt::Device::open(0);
    if (!d.ok()) {
      c.why = d.error().message;
      return c;
    }
    c.dev = std::move(*d);
    // The GPU machine may keep the CUDA headers elsewhere: MM_CUDA_INCLUDE overrides.
    std::string inc = std::getenv("MM_CUDA_INCLUDE") ? std::getenv("MM_CUDA_INCLUDE") : codegen::default_cuda_include_dir();
    if (!std::ifstream(inc + "/cuda_bf16.h")) inc = "/usr/local/cuda/include";
    c.nvrtc = std::make_unique<codegen::NvrtcCompiler>(codegen::NvrtcOptions{{c.dev->info().arch()}, inc, false, false});
    std::printf("[gpu] %s (%s, %d SMs), NVRTC headers from %s\n", c.dev->info().name.c_str(),
                c.dev->info().arch().c_str(), c.dev->info().sm_count, inc.c_str());
    return c;
  }();
  return c;
}

#define MM_REQUIRE_GPU()                                                   \
  do {                                                                     \
    if (!::mm::gputest::ctx().dev) GTEST_SKIP() << "skipped: no CUDA device (" << ::mm::gputest::ctx().why << ")"; \
  } while (0)

// A host buffer mirrored on the device.
struct Buf {
  std::vector<uint8_t> host;
  void* dev = nullptr;
  explicit Buf(size_t bytes = 0) : host(bytes) {}
  Buf(const Buf&) = delete;
  ~Buf() {
    if (dev && ctx().dev) (void)ctx().dev->free(dev);
  }
  template <class T> T* h() { return reinterpret_cast<T*>(host.data()); }
  template <class T> size_t n() const { return host.size() / sizeof(T); }
  void upload() {
    if (!dev) {
      auto p = ctx().dev->alloc(host.size());
      ASSERT_TRUE(p.ok()) << p.error().message;
      dev = *p;
    }
    auto st = ctx().dev->copy_to_device(dev, host.data(), host.size());
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  std::vector<uint8_t> download() const {
    std::vector<uint8_t> out(host.size());
    auto st = ctx().dev->copy_to_host(out.data(), dev, host.size());
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }
};

struct Compiled {
  kernels::Specialization spec;
  kernels::KernelSource src;
  rt::Kernel kernel;
};

// Specializes, compiles (cached per source by NvrtcCompiler) and loads one kernel.
inline std::shared_ptr<Compiled> build(kernels::Kind kind, const kernels::Params& params) {
  auto spec = kernels::specialize(kind, params);
  EXPECT_TRUE(spec.ok()) << (spec.ok() ? "" : spec.error().message);
  if (!spec.ok()) return nullptr;
  auto src = kernels::kernel_source(*spec);
  EXPECT_TRUE(src.ok()) << (src.ok() ? "" : src.error().message);
  if (!src.ok()) return nullptr;
  auto res = ctx().nvrtc->compile(src->entry, src->source);
  EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
  if (!res.ok()) return nullptr;
  rt::KernelImage img;
  img.name = src->entry;
  for (const auto& b : (*res)->binaries)
    img.cubins.emplace_back(b.arch, std::string_view(reinterpret_cast<const char*>(b.cubin.data()), b.cubin.size()));
  auto k = ctx().dev->load(img);
  EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.error().message);
  if (!k.ok()) return nullptr;
  if (spec->dynamic_shared_bytes > 48 * 1024) {   // as the cuda executor does at plan load
    auto st = ctx().dev->set_dynamic_shared(*k, spec->dynamic_shared_bytes);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return nullptr;
  }
  auto c = std::make_shared<Compiled>();
  c->spec = std::move(*spec);
  c->src = std::move(*src);
  c->kernel = *k;
  return c;
}

// pdl: with the programmatic-launch attribute, as the runtime launches decode kernels.
inline void launch(const Compiled& c, const std::vector<Buf*>& ptrs, const std::vector<int64_t>& dims, bool sync = true,
                   bool pdl = false) {
  mm_kernel_args a{};
  for (size_t i = 0; i < ptrs.size(); ++i) a.ptr[i] = ptrs[i] ? ptrs[i]->dev : nullptr;
  int64_t d[MM_MAX_DIMS] = {0};
  for (size_t i = 0; i < dims.size() && i < MM_MAX_DIMS; ++i) d[i] = a.dim[i] = dims[i];
  rt::Dim3 g{static_cast<unsigned>(c.spec.grid[0].eval(d)), static_cast<unsigned>(c.spec.grid[1].eval(d)),
             static_cast<unsigned>(c.spec.grid[2].eval(d))};
  rt::Dim3 b{static_cast<unsigned>(c.spec.block[0]), static_cast<unsigned>(c.spec.block[1]),
             static_cast<unsigned>(c.spec.block[2])};
  auto st = ctx().dev->launch(c.kernel, g, b, c.spec.dynamic_shared_bytes, a, pdl);
  ASSERT_TRUE(st.ok()) << st.error().message;
  if (sync) {
    st = ctx().dev->synchronize();
    ASSERT_TRUE(st.ok()) << c.src.entry << ": " << st.error().message;
  }
}

// The same operands as host pointers, for the reference.
inline mm_kernel_args host_args(const std::vector<Buf*>& ptrs, const std::vector<int64_t>& dims) {
  mm_kernel_args a{};
  for (size_t i = 0; i < ptrs.size(); ++i) a.ptr[i] = ptrs[i] ? ptrs[i]->host.data() : nullptr;
  for (size_t i = 0; i < dims.size() && i < MM_MAX_DIMS; ++i) a.dim[i] = dims[i];
  return a;
}

// ---- timing ----
// Median over `iters` of the GPU time between two events around `work()` (queued, not synced),
// `before(i)` running first each time (an L2 flush, or nothing); in microseconds, -1 when an event
// fails.
inline double median_event_us(int iters, const std::function<void(int)>& before, const std::function<void()>& work) {
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    before(i);
    auto a = ctx().dev->record_event();
    work();
    auto b = ctx().dev->record_event();
    if (!a.ok() || !b.ok()) return -1;
    auto t = ctx().dev->elapsed_ms(*a, *b);
    EXPECT_TRUE(t.ok());
    ms.push_back(t.ok() ? *t : 0.f);
    (void)ctx().dev->destroy_event(*a);
    (void)ctx().dev->destroy_event(*b);
  }
  std::sort(ms.begin(), ms.end());
  return ms.empty() ? -1 : 1000.0 * ms[ms.size() / 2];
}

// ---- random data ----
inline std::mt19937_64& rng() {
  static std::mt19937_64 r(12345);
  return r;
}
inline float uni(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng()); }
inline void fill_bf16(Buf& b, float lo = -1.f, float hi = 1.f) {
  uint16_t* p = b.h<uint16_t>();
  for (size_t i = 0; i < b.n<uint16_t>(); ++i) p[i] = ref::f32_to_bf16(uni(lo, hi));
}
inline void fill_f16(Buf& b, float lo, float hi, bool random_sign = false) {
  uint16_t* p = b.h<uint16_t>();
  for (size_t i = 0; i < b.n<uint16_t>(); ++i) {
    float v = uni(lo, hi);
    if (random_sign && (rng()() & 1)) v = -v;
    p[i] = ref::f32_to_f16(v);
  }
}
inline void fill_f32(Buf& b, float lo, float hi) {
  float* p = b.h<float>();
  for (size_t i = 0; i < b.n<float>(); ++i) p[i] = uni(lo, hi);
}
// Random fp8 e4m3 bytes (no NaN encoding), for KV pools.
inline void fill_fp8(Buf& b) {
  for (auto& byte : b.host) {
    byte = static_cast<uint8_t>(rng()());
    if ((byte & 0x7f) == 0x7f) byte &= 0xfe;
  }
}
inline void fill_u32(Buf& b) {
  uint32_t* p = b.h<uint32_t>();
  for (size_t i = 0; i < b.n<uint32_t>(); ++i) p[i] = static_cast<uint32_t>(rng()());
}

// ---- comparison ----
// Values of a buffer of dtype code dt (bf16 / f16 / f32) as floats.
inline std::vector<float> as_f32(const uint8_t* p, size_t bytes, int dt) {
  std::vector<float> out;
  if (dt == MM_DT_F32) {
    out.resize(bytes / 4);
    std::memcpy(out.data(), p, bytes);
  } else {
    out.resize(bytes / 2);
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = dt == MM_DT_BF16 ? ref::bf16_to_f32(v) : ref::f16_to_f32(v);
    }
  }
  return out;
}

// Every element within atol + rtol * |ref|; reports the worst element.
inline ::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& want, float atol, float rtol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  size_t bad = 0, worst = 0;
  double worst_excess = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double lim = atol + rtol * std::fabs(want[i]);
    if (!(d <= lim)) {
      ++bad;
      if (!(d - lim <= worst_excess)) { worst_excess = d - lim; worst = i; }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements differ; worst [" << worst
                                       << "] got " << got[worst] << " want " << want[worst] << " (atol " << atol
                                       << ", rtol " << rtol << ")";
}
inline float rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return v.empty() ? 0.f : static_cast<float>(std::sqrt(s / v.size()));
}

}  // namespace mm::gputest
