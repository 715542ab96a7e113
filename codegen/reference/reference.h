// C++ reference of every kernel kind of docs/kernels.md: the host backend of the runtime and the
// ground truth of the GPU kernel tests. Each `<kind>_ref` takes the same mm_kernel_args a CUDA
// entry point gets (ptr[] in the operand order of docs/kernels.md section 5, dim[] = T, R, S, CTX,
// STEP) plus the kind's specialization constants, named exactly as the plan's KernelDef.params.
//
// Numerics (design.md section 5): fp32 accumulation, fp32 norm statistics / router / softmax,
// bf16 activations between kernels, one round-to-nearest-even to the output dtype at the end of
// each kernel unless docs/kernels.md says otherwise (RMSNorm rounds twice, like Hugging Face).
// The references are deterministic: the result does not depend on the number of threads.
//
// Plain C++ (depends only on abi.h and the registry) so runtime-zone code and GPU tests can link it.
#pragma once

#include <cstdint>
#include <bit>
#include <functional>

#include "codegen/kernels/abi.h"
#include "codegen/kernels/registry.h"

namespace mm::ref {

// ---- Scalar conversions (round-to-nearest-even; NaN stays NaN) --------------------------------
inline float bf16_to_f32(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }
uint16_t f32_to_bf16(float v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_f16(float v);
// fp8 e4m3 (OCP "fn": no infinities, max 448). Encoding saturates to +-448 (satfinite, as
// __nv_cvt_float_to_fp8(..., __NV_SATFINITE, __NV_E4M3)); NaN -> 0x7F.
float fp8e4m3_to_f32(uint8_t v);
uint8_t f32_to_fp8e4m3(float v);
// v rounded to the nearest bf16, returned as float.
inline float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }
// Element `i` of a 16-bit array of dtype code `dt` (MM_DT_BF16 or MM_DT_F16), as float.
float load_16bit(const void* base, int64_t i, int dt);

// splitmix64 (docs/kernels.md, SAMPLE), the standard generator step: z = x + 0x9E3779B97F4A7C15;
// z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31.
uint64_t splitmix64(uint64_t x);
// The uniform [0, 1) draw of SAMPLE for (seed, step, row).
float sample_uniform(uint64_t seed, int64_t step, int64_t row);

// Strips of 32 columns (kinds.def QL 1): word (row, col) of a packed matrix of kr rows stands at
// this index of its [n/32, kr, 32] words (codegen/kernels/w4.cuh mm_qw_at on the device) ...
constexpr int64_t w4_strip_index(int64_t row, int64_t col, int64_t kr) {
  return (col / 32) * kr * 32 + row * 32 + col % 32;
}
// ... and index i of those words holds the word of GPTQ rows index row * n + col (the inverse).
constexpr int64_t w4_rows_index(int64_t i, int64_t kr, int64_t n) {
  return ((i / 32) % kr) * n + (i / (kr * 32)) * 32 + i % 32;
}
// The packed int4 words of `matrices` matrices [kr, n] (QL 0) in strips of 32 columns (QL 1), as
// the loader lays them out on the device (n % 32 == 0).
void w4_rows_to_strips(const int32_t* rows, int64_t matrices, int64_t kr, int64_t n, int32_t* strips);

// ---- Threading -------------------------------------------------------------------------------
// A process-wide pool used by the GEMMs, attention and the expert FFN. Default: the hardware
// concurrency (at least 1). Set before the first kernel call or between calls, never during one.
void set_num_threads(int n);
int num_threads();
// Runs fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items, on the
// pool; returns when every chunk is done. Chunks never overlap, so writes to disjoint outputs
// need no synchronization.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// ---- Kernel kinds -----------------------------------------------------------------------------
// One entry point per kind of the registry (codegen/kernels/kinds.def: operands in ptr[] order,
// parameters), generated from it: `void <ref>_ref(const mm_kernel_args&, const <Struct>Params&)`,
// e.g. gemm_w4_ref(args, GemmW4Params). Integer parameters are int64_t, floating ones double,
// dtype codes MM_DT_*. Notes per kind:
//   RMS_NORM: rows_out = GATHER ? R : T; x is updated in place when RESIDUAL.
//   GEMM_W4 / GEMM_DENSE: M = dim[MDIM] (0 -> T, 1 -> R); VARIANT does not change the result.
//   ATTENTION: VARIANT does not change the result.
//   ATTENTION_DECODE: VARIANT 1 (the combine after a VARIANT 0 launch) is a no-op here; SPLITS
//     does not change the result; `partial` is ignored.
//   MOE_W13 / MOE_W2: offsets and sorted (GROUPED only) are not needed by the reference.
#define MM_KIND(NAME, Struct, fn, file, uses_w4) \
  using Struct##Params = kernels::Struct##Params;  \
  void fn##_ref(const mm_kernel_args& args, const Struct##Params& p);
#include "codegen/kernels/kinds_expand.h"

}  // namespace mm::ref
