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
// Plain C++ (depends only on abi.h) so runtime-zone code and GPU tests can link it.
#pragma once

#include <cstdint>
#include <functional>

#include "codegen/kernels/abi.h"

namespace mm::ref {

// ---- Scalar conversions (round-to-nearest-even; NaN stays NaN) --------------------------------
float bf16_to_f32(uint16_t v);
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
// Integer parameters are int64_t, floating ones double, dtype codes MM_DT_*.

// EMBED. ptr: tokens i32[T], table WDT[V,H], out y bf16[T,H].
struct EmbedParams { int64_t V = 0, H = 0; int64_t WDT = MM_DT_BF16; };
void embed_ref(const mm_kernel_args& args, const EmbedParams& p);

// RMS_NORM. ptr: x bf16[*,N] (updated in place when RESIDUAL), r bf16[*,N], w WDT[N],
// rows i32[R], out y bf16[rows_out,N]; rows_out = GATHER ? R : T.
struct RmsNormParams {
  int64_t N = 0; double EPS = 1e-6; int64_t WDT = MM_DT_BF16;
  int64_t RESIDUAL = 0, GATHER = 0;
};
void rms_norm_ref(const mm_kernel_args& args, const RmsNormParams& p);

// GEMM_W4. ptr: x bf16[M,K], qweight i32[K/8,N], scales f16[K/G,N], out y OUT[M,N];
// M = dim[MDIM] (0 -> T, 1 -> R). VARIANT does not change the result.
struct GemmW4Params {
  int64_t K = 0, N = 0, G = 128; int64_t OUT = MM_DT_BF16; int64_t VARIANT = 0, MDIM = 0;
};
void gemm_w4_ref(const mm_kernel_args& args, const GemmW4Params& p);

// GEMM_DENSE. ptr: x bf16[M,K], w WDT[N,K], out y OUT[M,N]; M = dim[MDIM].
struct GemmDenseParams {
  int64_t K = 0, N = 0; int64_t WDT = MM_DT_BF16, OUT = MM_DT_F32; int64_t MDIM = 0;
};
void gemm_dense_ref(const mm_kernel_args& args, const GemmDenseParams& p);

// QK_NORM_ROPE_KV. ptr: qkv bf16[T, NQ*D + 2*NKV*D], q_norm WDT[NQ*D], k_norm WDT[NKV*D],
// positions i32[T], seq_slots i32[T], block_tables i32[*, MAX_BLOCKS], k_pool, v_pool,
// k_scale f32 (fp8 only), v_scale f32 (fp8 only), out q bf16[T, NQ*D].
struct QkNormRopeKvParams {
  int64_t NQ = 0, NKV = 0, D = 0, DR = 0; double THETA = 10000.0, EPS = 1e-6;
  int64_t WDT = MM_DT_BF16, KVDT = MM_DT_BF16; int64_t BLOCK = 16, MAX_BLOCKS = 0;
};
void qk_norm_rope_kv_ref(const mm_kernel_args& args, const QkNormRopeKvParams& p);

// ATTENTION. ptr: q bf16[T, NQ*D], positions, seq_slots, block_tables, k_pool, v_pool, k_scale,
// v_scale, partial f32 (ignored by the reference), out o bf16[T, NQ*D].
// VARIANT 2 (split-K combine, after a VARIANT 1 launch) is a no-op here.
// VARIANT and SPLITS do not change the result.
struct AttentionParams {
  int64_t NQ = 0, NKV = 0, D = 0; int64_t KVDT = MM_DT_BF16; int64_t BLOCK = 16, MAX_BLOCKS = 0;
  int64_t VARIANT = 0, SPLITS = 1;
};
void attention_ref(const mm_kernel_args& args, const AttentionParams& p);

// ROUTE_TOPK. FUSED_GEMM=1: ptr x bf16[T,H], gate WDT[E,H], bias f32[E], out ids i32[T,TOPK],
// out weights f32[T,TOPK]. FUSED_GEMM=0: ptr logits f32[T,E], bias, out ids, out weights.
struct RouteTopkParams {
  int64_t E = 0, TOPK = 0, H = 0; int64_t WDT = MM_DT_BF16; int64_t FUSED_GEMM = 0;
};
void route_topk_ref(const mm_kernel_args& args, const RouteTopkParams& p);

// MOE_ALIGN. ptr: ids i32[T,TOPK], out offsets i32[E+1], out sorted i32[T*TOPK].
struct MoeAlignParams { int64_t E = 0, TOPK = 0; };
void moe_align_ref(const mm_kernel_args& args, const MoeAlignParams& p);

// MOE_W13. ptr: x bf16[T,H], w13 qweight i32[E,H/8,2I], w13 scales f16[E,H/G,2I], ids i32[T,TOPK],
// offsets, sorted (GROUPED only; the reference does not need them), out act bf16[T*TOPK, I].
struct MoeW13Params { int64_t H = 0, I = 0, E = 0, TOPK = 0, G = 128; int64_t GROUPED = 0; };
void moe_w13_ref(const mm_kernel_args& args, const MoeW13Params& p);

// MOE_W2. ptr: act bf16[T*TOPK, I], w2 qweight i32[E,I/8,H], w2 scales f16[E,I/G,H], ids,
// weights f32[T,TOPK], offsets, sorted (GROUPED only), out y (COMBINE ? bf16[T,H] : f32[T*TOPK,H]).
struct MoeW2Params {
  int64_t H = 0, I = 0, E = 0, TOPK = 0, G = 128; int64_t GROUPED = 0, COMBINE = 1;
};
void moe_w2_ref(const mm_kernel_args& args, const MoeW2Params& p);

// MOE_COMBINE. ptr: y f32[T*TOPK, H], out out bf16[T,H].
struct MoeCombineParams { int64_t H = 0, TOPK = 0; };
void moe_combine_ref(const mm_kernel_args& args, const MoeCombineParams& p);

// SAMPLE. ptr: logits f32[R,V], temperature f32[R], top_k i32[R], top_p f32[R], seed u64[R],
// out sampled i32[R].
struct SampleParams { int64_t V = 0; };
void sample_ref(const mm_kernel_args& args, const SampleParams& p);

}  // namespace mm::ref
