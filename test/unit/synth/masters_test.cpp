#include "models/synth/masters.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace mm::synth {
namespace {

TEST(Masters, AnySliceEqualsTheSameSliceOfTheWhole) {
  uint64_t key = tensor_key(7, "model.layers.0.self_attn.q_proj");
  std::vector<float> whole(101), part(40);
  generate_masters(key, {0.0, 1.0}, 0, whole.size(), whole.data());
  generate_masters(key, {0.0, 1.0}, 37, part.size(), part.data());  // odd start: second of a pair
  for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(part[i], whole[37 + i]) << i;
}

TEST(Masters, DependOnSeedAndName) {
  std::vector<float> a(16), b(16), c(16);
  generate_masters(tensor_key(1, "x"), {0.0, 1.0}, 0, 16, a.data());
  generate_masters(tensor_key(2, "x"), {0.0, 1.0}, 0, 16, b.data());
  generate_masters(tensor_key(1, "y"), {0.0, 1.0}, 0, 16, c.data());
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(Masters, AreBf16ExactWithTheRequestedMoments) {
  const size_t n = 200000;
  std::vector<float> v(n);
  generate_masters(tensor_key(0, "norm"), {1.0, 0.1}, 0, n, v.data());
  double sum = 0, sq = 0;
  for (float x : v) {
    EXPECT_EQ(bf16_to_float(float_to_bf16(x)), x);
    sum += x;
    sq += x * x;
  }
  double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  // 200k samples: the standard error of the mean is 0.1/447 ~ 2.2e-4; bf16 rounding near 1.0 adds
  // up to 2^-9 per element but averages out.
  EXPECT_NEAR(mean, 1.0, 2e-3);
  EXPECT_NEAR(sd, 0.1, 2e-3);
}

TEST(HalfConversions, RoundToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xC000);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256), 0x3F82);
  EXPECT_EQ(float_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_f16(-0.5f), 0xB800);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16(70000.0f), 0x7C00);
  EXPECT_EQ(float_to_f16(1.0f + 1.0f / 2048), 0x3C00);        // tie -> even
  EXPECT_EQ(float_to_f16(1.0f + 3.0f / 2048), 0x3C02);        // tie -> even (up)
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  for (uint32_t h = 0; h < 0x7C00; ++h) {  // every finite positive f16 round-trips
    EXPECT_EQ(float_to_f16(f16_to_float(static_cast<uint16_t>(h))), h);
    EXPECT_EQ(float_to_f16(-f16_to_float(static_cast<uint16_t>(h))), h | 0x8000);
  }
}

}  // namespace
}  // namespace mm::synth
