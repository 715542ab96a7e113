#include "models/synth/int4.h"

#include <algorithm>
#include <cmath>

#include "models/synth/masters.h"

namespace mm::synth {

void quantize_column(const float* w, int64_t k_dim, uint32_t* qweight_col, uint16_t* scales_col,
                     int64_t n_stride) {
  for (int64_t g = 0; g < k_dim / kGroupSize; ++g) {
    const float* wg = w + g * kGroupSize;
    float wstar = 0.0f;
    for (int64_t j = 0; j < kGroupSize; ++j)
      if (std::fabs(wg[j]) > std::fabs(wstar)) wstar = wg[j];
    // bf16 masters divided by 8 are exact in fp16 unless tiny (subnormal): quantize with the
    // stored (rounded) scale so dequantization reproduces exactly what we decided.
    uint16_t s16 = wstar == 0.0f ? 0 : float_to_f16(-wstar / 8.0f);  // never -0.0
    float scale = f16_to_float(s16);
    scales_col[g * n_stride] = s16;
    for (int64_t r = 0; r < kGroupSize / 8; ++r) {
      uint32_t word = 0;
      for (int j = 0; j < 8; ++j) {
        int q = 8;
        if (scale != 0.0f) {
          // nearbyint rounds half to even under the default rounding mode, as torch.round does.
          float v = std::nearbyint(wg[r * 8 + j] / scale) + 8.0f;
          q = static_cast<int>(std::clamp(v, 0.0f, 15.0f));
        }
        word |= static_cast<uint32_t>(q) << (4 * j);
      }
      qweight_col[(g * kGroupSize / 8 + r) * n_stride] = word;
    }
  }
}

}  // namespace mm::synth
