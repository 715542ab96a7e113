#include "runtime/src/measure.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "codegen/reference/reference.h"
#include "runtime/cuda/cublas_symbols.h"
#include "runtime/cuda/device.h"
#include "runtime/src/host_buffer.h"
#include "runtime/src/open_session.h"

namespace mm::rt {

namespace {

using plan::WeightTransform;

// ---- Host -------------------------------------------------------------------------------------

Expected<DeviceRates> measure_host(int threads) {
  if (threads > 0) ref::set_num_threads(threads);
  DeviceRates r;
  r.device = "host (" + std::to_string(ref::num_threads()) + " threads)";
  // Large enough to leave every cache, small enough for CI: 2 x 256 MiB.
  constexpr uint64_t kBytes = uint64_t{256} << 20;
  HostBuffer src, dst;
  if (!src.allocate(kBytes) || !dst.allocate(kBytes))
    return Error::internal("cannot allocate 2 x 256 MiB of host memory for the copy measurement");
  std::memset(src.data(), 0x5A, kBytes);  // fault every source page in (untouched ones all map the zero page)
  auto copy = [&] {
    ref::parallel_for(static_cast<int64_t>(kBytes >> 20), 1, [&](int64_t b, int64_t e) {
      std::memcpy(dst.data() + (b << 20), src.data() + (b << 20), static_cast<size_t>((e - b) << 20));
    });
  };
  copy();  // warm-up (faults the destination in)
  constexpr int kReps = 2;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReps; ++i) copy();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.copy_bytes = kBytes;
  r.copy_bytes_per_second = s > 0 ? 2.0 * kBytes * kReps / s : 0.0;
  r.gemm = "n/a: the host backend has no GEMM library";
  return r;
}

// ---- CUDA -------------------------------------------------------------------------------------

// Device buffers freed on every exit path.
class DeviceBuffers {
 public:
  explicit DeviceBuffers(Device& dev) : dev_(dev) {}
  ~DeviceBuffers() {
    (void)dev_.synchronize();
    for (void* p : ptrs_) (void)dev_.free(p);
  }
  Expected<void*> alloc(uint64_t bytes) {
    auto p = dev_.alloc(bytes);
    if (p) ptrs_.push_back(*p);
    return p;
  }

 private:
  Device& dev_;
  std::vector<void*> ptrs_;
};

// Milliseconds of `reps` calls of fn() on the device's stream, between two events.
template <class Fn>
Expected<double> time_ms(Device& dev, int reps, Fn fn) {
  auto start = dev.record_event();
  if (!start) return start.error();
  Status st = Status::success();
  for (int i = 0; i < reps && st.ok(); ++i) st = fn();
  auto end = dev.record_event();
  if (!end) {
    (void)dev.destroy_event(*start);
    return end.error();
  }
  auto ms = dev.elapsed_ms(*start, *end);
  (void)dev.destroy_event(*start);
  (void)dev.destroy_event(*end);
  if (!st) return st.error();
  if (!ms) return ms.error();
  return static_cast<double>(*ms);
}

// Random bf16 values in [-1, 1) over `bytes` of device memory (a GEMM on zeros draws less power,
// so its clock and rate would be flattered).
Status fill_random_bf16(Device& dev, void* dst, uint64_t bytes) {
  constexpr uint64_t kTile = uint64_t{4} << 20;
  std::vector<uint16_t> tile(kTile / 2);
  for (size_t i = 0; i < tile.size(); ++i) {
    const uint64_t h = ref::splitmix64(i);
    tile[i] = ref::f32_to_bf16(static_cast<float>(h >> 40) / 8388608.0f - 1.0f);
  }
  for (uint64_t off = 0; off < bytes; off += kTile)
    if (Status st = dev.copy_to_device(static_cast<uint8_t*>(dst) + off, tile.data(), std::min(kTile, bytes - off)); !st)
      return st;
  return Status::success();
}

// "cublasGemmEx bf16 8192x8192x8192 (fp32 accumulate)" and its rate, or why not.
void measure_gemm(Device& dev, DeviceRates& r) {
  auto lib = cublas::symbols();
  if (!lib) {
    r.gemm = "n/a: " + lib.error().message;
    return;
  }
  const cublas::Symbols& cb = **lib;
  constexpr int kN = 8192;
  constexpr uint64_t kMatrix = uint64_t{kN} * kN * 2;
  DeviceBuffers bufs(dev);
  void* m[3] = {nullptr, nullptr, nullptr};
  for (void*& p : m) {
    auto a = bufs.alloc(kMatrix);
    if (!a) {
      r.gemm = "n/a: cannot allocate the GEMM operands: " + a.error().message;
      return;
    }
    p = *a;
  }
  for (int i = 0; i < 2; ++i)
    if (Status st = fill_random_bf16(dev, m[i], kMatrix); !st) {
      r.gemm = "n/a: " + st.error().message;
      return;
    }
  cublas::Handle h = nullptr;
  auto fail = [&](const char* call, cublas::Status s) {
    r.gemm = std::string("n/a: ") + call + " failed with status " + std::to_string(s) +
             (cb.cublasGetStatusString ? std::string(" (") + cb.cublasGetStatusString(s) + ")" : "");
  };
  if (cublas::Status s = cb.cublasCreate_v2(&h); s != cublas::kSuccess) return fail("cublasCreate_v2", s);
  const float alpha = 1.0f, beta = 0.0f;
  cublas::Status gs = cublas::kSuccess;
  auto gemm = [&]() -> Status {
    gs = cb.cublasGemmEx(h, cublas::kOpN, cublas::kOpN, kN, kN, kN, &alpha, m[0], cublas::kR16BF, kN, m[1],
                         cublas::kR16BF, kN, &beta, m[2], cublas::kR16BF, kN, cublas::kCompute32F, cublas::kGemmDefault);
    return gs == cublas::kSuccess ? Status::success() : Status(Error::internal("cublasGemmEx"));
  };
  if (cublas::Status s = cb.cublasSetStream_v2(h, dev.stream()); s != cublas::kSuccess) {
    cb.cublasDestroy_v2(h);
    return fail("cublasSetStream_v2", s);
  }
  constexpr int kReps = 10;
  auto warm = time_ms(dev, 3, gemm);  // heuristics, workspace, clocks
  auto ms = warm ? time_ms(dev, kReps, gemm) : warm;
  cb.cublasDestroy_v2(h);
  if (gs != cublas::kSuccess) return fail("cublasGemmEx", gs);
  if (!ms) {
    r.gemm = "n/a: " + ms.error().message;
    return;
  }
  r.gemm_flops_per_second = *ms > 0 ? 2.0 * kN * kN * static_cast<double>(kN) * kReps / (*ms / 1e3) : 0.0;
  r.gemm = "cublasGemmEx bf16 " + std::to_string(kN) + "x" + std::to_string(kN) + "x" + std::to_string(kN) +
           " (fp32 accumulate, " + cb.library + ")";
}

Expected<DeviceRates> measure_cuda() {
  auto dev = Device::open(0);
  if (!dev) return dev.error();
  Device& d = **dev;
  DeviceRates r;
  r.device = d.info().name + " (" + d.info().arch() + ")";
  {
    // Two buffers of 1 GiB (less when memory is short): far beyond the 50-60 MB of L2.
    auto free_b = d.free_memory();
    if (!free_b) return free_b.error();
    const uint64_t bytes = std::min<uint64_t>(uint64_t{1} << 30, *free_b / 8) & ~uint64_t{(1 << 20) - 1};
    if (bytes == 0) return Error::internal("no device memory free for the copy measurement");
    DeviceBuffers bufs(d);
    auto a = bufs.alloc(bytes);
    if (!a) return a.error();
    auto b = bufs.alloc(bytes);
    if (!b) return b.error();
    if (Status st = d.memset_async(*a, 0x5A, bytes); !st) return st.error();
    auto copy = [&] { return d.copy_device_async(*b, *a, bytes); };
    auto warm = time_ms(d, 2, copy);
    if (!warm) return warm.error();
    constexpr int kReps = 10;
    auto ms = time_ms(d, kReps, copy);
    if (!ms) return ms.error();
    r.copy_bytes = bytes;
    r.copy_bytes_per_second = *ms > 0 ? 2.0 * static_cast<double>(bytes) * kReps / (*ms / 1e3) : 0.0;
  }
  measure_gemm(d, r);
  return r;
}

}  // namespace

PlanCosts plan_costs(const Plan& plan) {
  const auto& def = plan.def();
  const auto& m = *def.model();
  const auto& lim = *def.limits();
  PlanCosts c;
  c.num_experts = m.num_experts();
  c.top_k = m.top_k();
  const auto* weights = def.weights();
  const size_t n = weights ? weights->size() : 0;
  for (size_t i = 0; i < n; ++i) {
    const plan::WeightDef& w = *weights->Get(i);
    if (w.transform() == WeightTransform::CHECK_ZEROS) continue;  // verified, never on the device
    // Experts: the plan's category (the compiler's "experts"), or stacked per-expert sources.
    const bool expert = (w.category() && w.category()->string_view() == "experts") ||
                        w.transform() == WeightTransform::STACK_EXPERTS ||
                        w.transform() == WeightTransform::STACK_EXPERTS_W13;
    if (expert) {
      c.expert_weight_bytes += w.nbytes();
    } else if (w.role() == plan::WeightRole::EMBEDDING && w.shape() && w.shape()->size() == 2) {
      // The token-embedding table (the compiler's role): a token reads one row of it.
      c.embedding_bytes += w.nbytes();
      c.embedding_row_bytes += static_cast<uint64_t>(w.shape()->Get(1)) * plan_dtype_size(w.dtype());
    } else {
      c.other_weight_bytes += w.nbytes();
    }
  }
  const bool fp8 = lim.kv_dtype() == plan::DType::FP8_E4M3;
  const uint64_t L = static_cast<uint64_t>(m.num_layers()), nkv = static_cast<uint64_t>(m.num_kv_heads()),
                 d = static_cast<uint64_t>(m.head_dim());
  // K and V per layer; fp8 adds one f32 scale per head and position to each (docs/kernels.md 4).
  c.kv_bytes_per_token = L * 2 * nkv * (d * (fp8 ? 1 : 2) + (fp8 ? 4 : 0));
  const double H = static_cast<double>(m.hidden_size()), I = static_cast<double>(m.intermediate_size());
  const double q = static_cast<double>(m.num_heads() * m.head_dim()), kv = static_cast<double>(nkv * d);
  const double per_layer = 2 * H * (q + 2 * kv)            // q, k, v projections
                           + 2 * q * H                     // o projection
                           + 2 * H * static_cast<double>(m.num_experts())      // router
                           + static_cast<double>(m.top_k()) * (2 * H * 2 * I + 2 * I * H);  // w13, w2
  c.linear_flops_per_token = static_cast<double>(L) * per_layer + 2 * H * static_cast<double>(m.vocab_size());
  c.attention_flops_per_position = 4.0 * q * static_cast<double>(L);
  return c;
}

Expected<DeviceRates> measure_device(const std::string& device, int threads) {
  if (!device.empty() && device != "host" && device != "cuda")
    return Error::usage("device must be \"host\" or \"cuda\", got \"" + device + "\"");
  const bool cuda = device == "cuda" || (device.empty() && cuda_device_present());
  return cuda ? measure_cuda() : measure_host(threads);
}

}  // namespace mm::rt
