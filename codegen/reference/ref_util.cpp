#include "codegen/reference/ref_util.h"

#include <algorithm>

namespace mm::ref::detail {

void bf16_rows_to_f32(const uint16_t* x, int64_t n, int64_t m_count, const int32_t* rows,
                      float* out) {
  for (int64_t m = 0; m < m_count; ++m) {
    const uint16_t* src = x + (rows ? static_cast<int64_t>(rows[m]) : m) * n;
    float* dst = out + m * n;
    for (int64_t k = 0; k < n; ++k) dst[k] = bf16_to_f32(src[k]);
  }
}

MM_REF_VECTOR_CLONES void row_16bit_to_f32(const void* row, int64_t n, int dt, float* out) {
  const uint16_t* v = static_cast<const uint16_t*>(row);
  if (dt == MM_DT_F16)
    for (int64_t k = 0; k < n; ++k) out[k] = f16_to_f32(v[k]);
  else
    for (int64_t k = 0; k < n; ++k) out[k] = bf16_to_f32(v[k]);
}

MM_REF_VECTOR_CLONES float dot_f32(const float* a, const float* b, int64_t k) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  for (int l = 0; i < k; ++i, ++l) s[l] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

MM_REF_VECTOR_CLONES void w4_gemm_block(const float* x, int64_t M, int64_t K, const int32_t* qweight,
                                        const uint16_t* scales, int64_t N, int64_t G, int64_t n0, int64_t n1,
                                        int ql, float* acc) {
  const int64_t w = n1 - n0;
  std::fill(acc, acc + M * w, 0.0f);
  std::vector<float> sc(static_cast<size_t>(w));
  // Strips of 32 columns (ql 1): row r's words of [n0, n1) are gathered from their strips first
  // (n0 % 32 == 0), so the arithmetic below is the same for both layouts.
  std::vector<int32_t> qgather(ql == 1 ? static_cast<size_t>(w) : 0);
  // Few rows (decode) dequantize each packed word in registers and apply it to the rows'
  // accumulators at once; many rows (prefill) dequantize eight weight rows into `wrow` and reuse
  // them from cache for up to kMBlock activation rows. Both compute acc += x[k] * (float(q - 8) *
  // scale) for k ascending: the same operations in the same order.
  const bool fused = M <= kW4FusedRows;
  std::vector<float> wrow(fused ? 0 : static_cast<size_t>(w) * 8);
  constexpr int64_t kMBlock = 32;
  for (int64_t r = 0; r < K / 8; ++r) {
    const int64_t k0 = 8 * r;
    if (k0 % G == 0 || r == 0) {
      const uint16_t* srow = scales + (k0 / G) * N + n0;
      for (int64_t n = 0; n < w; ++n) sc[n] = f16_to_f32(srow[n]);
    }
    const int32_t* qrow = qweight + r * N + n0;
    if (ql == 1) {
      for (int64_t c = 0; c < w; c += 32)
        std::copy_n(qweight + w4_strip_index(r, n0 + c, K / 8), std::min<int64_t>(32, w - c), qgather.data() + c);
      qrow = qgather.data();
    }
    if (fused) {
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K + k0;
        float* a = acc + m * w;
        for (int64_t n = 0; n < w; ++n) {
          const uint32_t q = static_cast<uint32_t>(qrow[n]);
          float s = a[n];
          for (int j = 0; j < 8; ++j)
            s += xm[j] * (static_cast<float>(static_cast<int>((q >> (4 * j)) & 15) - 8) * sc[n]);
          a[n] = s;
        }
      }
      continue;
    }
    for (int j = 0; j < 8; ++j) {
      float* wr = wrow.data() + j * w;
      for (int64_t n = 0; n < w; ++n) {
        int q = (static_cast<uint32_t>(qrow[n]) >> (4 * j)) & 15;
        wr[n] = static_cast<float>(q - 8) * sc[n];
      }
    }
    for (int64_t mb = 0; mb < M; mb += kMBlock) {
      const int64_t me = std::min(M, mb + kMBlock);
      for (int64_t m = mb; m < me; ++m) {
        float* a = acc + m * w;
        const float* xm = x + m * K + k0;
        for (int j = 0; j < 8; ++j) {
          const float xv = xm[j];
          const float* wr = wrow.data() + j * w;
          for (int64_t n = 0; n < w; ++n) a[n] += xv * wr[n];
        }
      }
    }
  }
}

void group_by_expert(const int32_t* ids, int64_t slots, int64_t E0, int64_t E, std::vector<int32_t>& offsets,
                     std::vector<int32_t>& sorted) {
  offsets.assign(static_cast<size_t>(E + 1), 0);
  sorted.assign(static_cast<size_t>(slots), 0);
  auto held = [&](int64_t s) { return ids[s] >= E0 && ids[s] - E0 < E; };
  for (int64_t s = 0; s < slots; ++s)
    if (held(s)) ++offsets[ids[s] - E0 + 1];
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int64_t s = 0; s < slots; ++s)
    if (held(s)) sorted[fill[ids[s] - E0]++] = static_cast<int32_t>(s);
}

}  // namespace mm::ref::detail

namespace mm::ref {

void w4_rows_to_strips(const int32_t* rows, int64_t matrices, int64_t kr, int64_t n, int32_t* strips) {
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t r = 0; r < kr; ++r)
      for (int64_t c = 0; c < n; c += 32)
        std::copy_n(rows + (m * kr + r) * n + c, 32, strips + m * kr * n + w4_strip_index(r, c, kr));
}

}  // namespace mm::ref
