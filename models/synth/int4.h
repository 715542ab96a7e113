// AutoRound's symmetric 4-bit RTN rule and GPTQ-v1 packing (../shared/docs/minimax-m2-spec.md 4.1).
//
// Per group of 128 input rows k of output column n:
//   w*    = the element of largest |w| (the first one on ties), signed
//   scale = fp16(-w* / 8)            so w* maps to -8, the full [-8, 7] range; about half the
//                                    scales come out negative, as in the real checkpoint
//   q     = clamp(round_half_even(w / scale) + 8, 0, 15)   (an all-zero group: scale 0, q 8)
// Storage: qweight I32 [K/8, N] (row k in nibble k%8 of word [k/8, n]), scales F16 [K/128, N],
// qzeros I32 [K/128, N/8] all 0x77777777 (GPTQ v1 stores zero - 1 = 7), g_idx I32 [K] = k / 128.
#pragma once

#include <cstdint>

namespace mm::synth {

inline constexpr int64_t kGroupSize = 128;
inline constexpr uint32_t kQZerosWord = 0x77777777u;

// One output column's K masters (w[k] = W[n, k]) into qweight words (stride `n_stride` words
// between consecutive packed rows, i.e. N) and scales (stride N between groups).
// K must be a multiple of 128.
void quantize_column(const float* w, int64_t k_dim, uint32_t* qweight_col, uint16_t* scales_col,
                     int64_t n_stride);

// Dequantized value of row k (the inverse the runtime applies): (q - 8) * scale.
inline float dequantize(uint32_t qword, int64_t k, float scale) {
  int q = static_cast<int>((qword >> (4 * (k & 7))) & 0xFu);
  return static_cast<float>(q - 8) * scale;
}

}  // namespace mm::synth
