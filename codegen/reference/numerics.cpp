// Scalar conversions and the sampling hash shared by every reference kernel.
#include <cmath>
#include <cstring>

#include "codegen/reference/reference.h"

namespace mm::ref {

namespace {
uint32_t bits_of(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
float float_of(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace

uint16_t f32_to_bf16(float v) {
  uint32_t u = bits_of(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24, exact in fp32
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  uint32_t x = bits_of(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;          // NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00u;         // >= 65520 rounds to infinity
  if (ax >= 0x38800000u) {                              // normal half (>= 2^-14)
    uint32_t odd = (ax >> 13) & 1u;
    ax = ax - (112u << 23) + 0xfffu + odd;              // rebias, round to nearest even
    return static_cast<uint16_t>(sign | (ax >> 13));
  }
  // Subnormal half: the value in units of 2^-24; scaling by a power of two is exact and
  // nearbyint rounds half to even in the default rounding mode. 1024 becomes the smallest normal.
  float units = std::nearbyint(std::fabs(f) * 16777216.0f);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>(units));
}

float fp8e4m3_to_f32(uint8_t v) {
  float sign = (v & 0x80u) ? -1.0f : 1.0f;
  uint32_t e = (v >> 3) & 0xfu;
  uint32_t m = v & 7u;
  if (e == 15 && m == 7) return std::nanf("");
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
}

uint8_t f32_to_fp8e4m3(float v) {
  if (std::isnan(v)) return 0x7f;
  uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  float a = std::fabs(v);
  if (a >= 448.0f) return sign | 0x7e;  // satfinite
  if (a < 0.015625f) {                  // below 2^-6: subnormal, units of 2^-9
    float units = std::nearbyint(a * 512.0f);  // 8 is the smallest normal's encoding
    return sign | static_cast<uint8_t>(units);
  }
  uint32_t x = bits_of(a);
  x += 0x7ffffu + ((x >> 20) & 1u);  // round the mantissa to 3 bits, ties to even
  int e = static_cast<int>(x >> 23) - 127;
  uint32_t m = (x >> 20) & 7u;
  return sign | static_cast<uint8_t>(((e + 7) << 3) | m);
}

float load_16bit(const void* base, int64_t i, int dt) {
  uint16_t v = static_cast<const uint16_t*>(base)[i];
  return dt == MM_DT_F16 ? f16_to_f32(v) : bf16_to_f32(v);
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

float sample_uniform(uint64_t seed, int64_t step, int64_t row) {
  uint64_t h = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull +
                                            static_cast<uint64_t>(row)));
  return static_cast<float>(h >> 40) / 16777216.0f;
}

}  // namespace mm::ref
