// QK_NORM_ROPE_KV reference: q/k RMSNorm over the whole projection (MiniMax-M2 normalizes all heads
// together, not per head), partial RoPE on the first DR dims of each head (rotate-half pairing i,
// i + DR/2), then k and v written to the paged cache (docs/kernels.md section 4) and q to `q`.
//
// RoPE angle, as Hugging Face computes it in fp32: inv_freq_i = 1 / THETA^(2i/DR) (fp32 pow),
// a_i = float(pos) * inv_freq_i (fp32 product), cos/sin of that fp32 angle evaluated exactly
// (double) and rounded to fp32.
#include <algorithm>
#include <cmath>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

namespace {

void rope_head(float* h, int64_t dr, int32_t pos, const std::vector<float>& inv_freq) {
  const int64_t half = dr / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = static_cast<float>(pos) * inv_freq[i];
    const float c = static_cast<float>(std::cos(static_cast<double>(a)));
    const float s = static_cast<float>(std::sin(static_cast<double>(a)));
    const float x1 = h[i], x2 = h[i + half];
    h[i] = x1 * c - x2 * s;
    h[i + half] = x2 * c + x1 * s;
  }
}

// Writes one head's D values to a KV pool row; fp8 pools get the per-(block, row, head) scale.
void store_kv_head(const float* v, int64_t D, int kvdt, void* pool, float* scale_pool,
                   int64_t row_index /* (block*BLOCK + row)*NKV + g */) {
  if (kvdt == MM_DT_FP8E4M3) {
    float amax = 0.0f;
    for (int64_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(v[d]));
    const float scale = std::max(amax / 448.0f, 1e-8f);
    scale_pool[row_index] = scale;
    uint8_t* dst = static_cast<uint8_t*>(pool) + row_index * D;
    for (int64_t d = 0; d < D; ++d) dst[d] = f32_to_fp8e4m3(v[d] / scale);
  } else {
    uint16_t* dst = static_cast<uint16_t*>(pool) + row_index * D;
    for (int64_t d = 0; d < D; ++d) dst[d] = f32_to_bf16(v[d]);
  }
}

}  // namespace

void qk_norm_rope_kv_ref(const mm_kernel_args& args, const QkNormRopeKvParams& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int64_t NQ = p.NQ, NKV = p.NKV, D = p.D, DR = p.DR;
  const int64_t QN = NQ * D, KN = NKV * D, W = QN + 2 * KN;
  const uint16_t* qkv = ptr<const uint16_t>(args, 0);
  const void* q_norm = args.ptr[1];
  const void* k_norm = args.ptr[2];
  const int32_t* positions = ptr<const int32_t>(args, 3);
  const int32_t* seq_slots = ptr<const int32_t>(args, 4);
  const int32_t* block_tables = ptr<const int32_t>(args, 5);
  void* k_pool = args.ptr[6];
  void* v_pool = args.ptr[7];
  float* k_scale = ptr<float>(args, 8);
  float* v_scale = ptr<float>(args, 9);
  uint16_t* q_out = ptr<uint16_t>(args, 10);
  // Tensor parallel (docs/parallel.md): this rank holds NQ of TP·NQ q heads (NKV of TP·NKV kv
  // heads); the norm runs over the whole projection, so the sums of squares are all-reduced.
  // STATS = 1 writes this rank's partial sums and nothing else; TP > 1 otherwise reads the sums.
  float* sumsq = ptr<float>(args, 11);
  const int wdt = static_cast<int>(p.WDT), kvdt = static_cast<int>(p.KVDT);

  std::vector<float> inv_freq(static_cast<size_t>(DR / 2));
  for (int64_t i = 0; i < DR / 2; ++i)
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(p.THETA),
                                  static_cast<float>(2 * i) / static_cast<float>(DR));

  parallel_for(T, 4, [&](int64_t b, int64_t e) {
    std::vector<float> h(static_cast<size_t>(std::max(QN, KN))), o(h.size());
    for (int64_t t = b; t < e; ++t) {
      const uint16_t* row = qkv + t * W;
      const int32_t pos = positions[t];
      if (p.STATS) {
        for (int64_t i = 0; i < QN; ++i) h[i] = bf16_to_f32(row[i]);
        sumsq[2 * t] = static_cast<float>(detail::sum_squares(h.data(), QN));
        for (int64_t i = 0; i < KN; ++i) h[i] = bf16_to_f32(row[QN + i]);
        sumsq[2 * t + 1] = static_cast<float>(detail::sum_squares(h.data(), KN));
        continue;
      }
      auto norm = [&](int64_t n, const void* w, int which) {
        if (p.TP > 1)
          detail::rms_norm_row_stats(h.data(), n, sumsq[2 * t + which], n * p.TP, w, wdt, p.EPS, o.data());
        else
          detail::rms_norm_row(h.data(), n, w, wdt, p.EPS, o.data());
      };
      // q
      for (int64_t i = 0; i < QN; ++i) h[i] = bf16_to_f32(row[i]);
      norm(QN, q_norm, 0);
      for (int64_t hd = 0; hd < NQ; ++hd) rope_head(o.data() + hd * D, DR, pos, inv_freq);
      for (int64_t i = 0; i < QN; ++i) q_out[t * QN + i] = f32_to_bf16(o[i]);
      // k: normalized, rotated, rounded to bf16 once; fp8 pools quantize the bf16 values.
      for (int64_t i = 0; i < KN; ++i) h[i] = bf16_to_f32(row[QN + i]);
      norm(KN, k_norm, 1);
      for (int64_t g = 0; g < NKV; ++g) rope_head(o.data() + g * D, DR, pos, inv_freq);
      for (int64_t i = 0; i < KN; ++i) o[i] = round_bf16(o[i]);
      const int64_t block = block_tables[static_cast<int64_t>(seq_slots[t]) * p.MAX_BLOCKS +
                                         pos / p.BLOCK];
      const int64_t base = (block * p.BLOCK + pos % p.BLOCK) * NKV;
      for (int64_t g = 0; g < NKV; ++g)
        store_kv_head(o.data() + g * D, D, kvdt, k_pool, k_scale, base + g);
      // v: raw
      for (int64_t i = 0; i < KN; ++i) h[i] = bf16_to_f32(row[QN + KN + i]);
      for (int64_t g = 0; g < NKV; ++g)
        store_kv_head(h.data() + g * D, D, kvdt, v_pool, v_scale, base + g);
    }
  });
}

}  // namespace mm::ref
