// ATTENTION reference: causal GQA over the paged KV cache. For token t and head h (kv head
// g = h / (NQ/NKV)), keys 0..positions[t] of sequence seq_slots[t]; scores q.k * D^-0.5, fp32
// softmax and accumulation, one rounding to bf16. fp8 pools are dequantized with their per-row
// scale. VARIANT only changes how the GPU computes it.
#include <algorithm>
#include <cmath>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void attention_ref(const mm_kernel_args& args, const AttentionParams& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int64_t NQ = p.NQ, NKV = p.NKV, D = p.D, per = NQ / NKV;
  const uint16_t* q = ptr<const uint16_t>(args, 0);
  const int32_t* positions = ptr<const int32_t>(args, 1);
  const int32_t* seq_slots = ptr<const int32_t>(args, 2);
  const int32_t* block_tables = ptr<const int32_t>(args, 3);
  const void* k_pool = args.ptr[4];
  const void* v_pool = args.ptr[5];
  const float* k_scale = ptr<const float>(args, 6);
  const float* v_scale = ptr<const float>(args, 7);
  uint16_t* o = ptr<uint16_t>(args, 8);
  const bool fp8 = p.KVDT == MM_DT_FP8E4M3;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  auto load_row = [&](const void* pool, const float* scales, int64_t row_index, float* dst) {
    if (fp8) {
      const uint8_t* src = static_cast<const uint8_t*>(pool) + row_index * D;
      const float s = scales[row_index];
      for (int64_t d = 0; d < D; ++d) dst[d] = fp8e4m3_to_f32(src[d]) * s;
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(pool) + row_index * D;
      for (int64_t d = 0; d < D; ++d) dst[d] = bf16_to_f32(src[d]);
    }
  };

  // One task per (token, kv head): its keys/values are converted once and shared by the
  // NQ/NKV query heads of the group.
  parallel_for(T * NKV, 1, [&](int64_t b, int64_t e) {
    std::vector<float> kf, vf, qf(static_cast<size_t>(D)), sc, acc(static_cast<size_t>(D));
    for (int64_t task = b; task < e; ++task) {
      const int64_t t = task / NKV, g = task % NKV;
      const int64_t L = static_cast<int64_t>(positions[t]) + 1;
      const int32_t* table = block_tables + static_cast<int64_t>(seq_slots[t]) * p.MAX_BLOCKS;
      kf.resize(static_cast<size_t>(L * D));
      vf.resize(static_cast<size_t>(L * D));
      sc.resize(static_cast<size_t>(L));
      for (int64_t j = 0; j < L; ++j) {
        const int64_t row_index = (static_cast<int64_t>(table[j / p.BLOCK]) * p.BLOCK +
                                   j % p.BLOCK) * NKV + g;
        load_row(k_pool, k_scale, row_index, kf.data() + j * D);
        load_row(v_pool, v_scale, row_index, vf.data() + j * D);
      }
      for (int64_t hh = 0; hh < per; ++hh) {
        const int64_t h = g * per + hh;
        const uint16_t* qrow = q + (t * NQ + h) * D;
        for (int64_t d = 0; d < D; ++d) qf[d] = bf16_to_f32(qrow[d]);
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; ++j) {
          sc[j] = detail::dot_f32(qf.data(), kf.data() + j * D, D) * scale;
          mx = std::max(mx, sc[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < L; ++j) {
          sc[j] = std::exp(sc[j] - mx);
          sum += sc[j];
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t j = 0; j < L; ++j) {
          const float pj = sc[j];
          const float* vr = vf.data() + j * D;
          for (int64_t d = 0; d < D; ++d) acc[d] += pj * vr[d];
        }
        const float inv = 1.0f / sum;
        uint16_t* orow = o + (t * NQ + h) * D;
        for (int64_t d = 0; d < D; ++d) orow[d] = f32_to_bf16(acc[d] * inv);
      }
    }
  });
}

}  // namespace mm::ref
