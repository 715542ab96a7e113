#include "models/synth/int4.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "models/synth/masters.h"

namespace mm::synth {
namespace {

// Quantizes a [K=256, N=3] matrix through the strided column API and checks spec 4.1 rule by rule.
TEST(Int4, SymmetricRuleAndGptqPacking) {
  const int64_t K = 256, N = 3;
  std::vector<float> w(K * N);  // W[n, k]
  generate_masters(tensor_key(3, "lin"), {0.0, 0.0625}, 0, w.size(), w.data());
  w[1 * K + 130] = 0.5f;   // column 1, group 1: a positive extreme -> negative scale
  w[2 * K + 5] = -0.75f;   // column 2, group 0: a negative extreme -> positive scale
  std::vector<uint32_t> qweight(K / 8 * N);
  std::vector<uint16_t> scales(K / kGroupSize * N);
  for (int64_t n = 0; n < N; ++n)
    quantize_column(w.data() + n * K, K, qweight.data() + n, scales.data() + n, N);

  EXPECT_EQ(f16_to_float(scales[1 * N + 1]), -0.0625f);  // -0.5 / 8
  EXPECT_EQ(f16_to_float(scales[0 * N + 2]), 0.09375f);  // 0.75 / 8
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < K / kGroupSize; ++g) {
      float s = f16_to_float(scales[g * N + n]);
      float wstar = 0;
      for (int64_t k = g * kGroupSize; k < (g + 1) * kGroupSize; ++k)
        if (std::fabs(w[n * K + k]) > std::fabs(wstar)) wstar = w[n * K + k];
      EXPECT_EQ(s, -wstar / 8) << "n=" << n << " g=" << g;
      for (int64_t k = g * kGroupSize; k < (g + 1) * kGroupSize; ++k) {
        uint32_t word = qweight[(k / 8) * N + n];
        int q = static_cast<int>((word >> (4 * (k % 8))) & 0xF);
        float expect_q = std::nearbyint(w[n * K + k] / s) + 8;
        EXPECT_EQ(q, static_cast<int>(std::fmin(15.0f, std::fmax(0.0f, expect_q)))) << k;
        if (w[n * K + k] == wstar) { EXPECT_EQ(q, 0); }  // the extreme maps to -8
        float deq = dequantize(word, k, s);
        // Half a step, or one step where +8 had to clamp to +7 (the side opposite the extreme).
        float bound = (q == 15 ? std::fabs(s) : std::fabs(s) / 2) + 1e-7f;
        EXPECT_LE(std::fabs(deq - w[n * K + k]), bound) << k;
      }
    }
  }
}

TEST(Int4, AllZeroGroupGivesZeroScaleAndMidpoint) {
  std::vector<float> w(128, 0.0f);
  std::vector<uint32_t> qweight(16);
  uint16_t scale = 0xFFFF;
  quantize_column(w.data(), 128, qweight.data(), &scale, 1);
  EXPECT_EQ(scale, 0);
  for (uint32_t word : qweight) EXPECT_EQ(word, 0x88888888u);
}

}  // namespace
}  // namespace mm::synth
