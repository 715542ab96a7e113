#include "models/synth/masters.h"

#include <cmath>
#include <cstring>
#include <numbers>

namespace mm::synth {
namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;
constexpr double kTwoPow53 = 1.0 / 9007199254740992.0;  // 2^-53

inline uint64_t bits_at(uint64_t key, uint64_t n) { return mix64(key + (n + 1) * kGamma); }

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t float_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u;             // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;            // rounds to >= 65520: infinity
  if (a < 0x38800000u) {                                  // below 2^-14: subnormal or zero
    // Scale into the subnormal grid (2^-24 steps); the float addition rounds to nearest even.
    float v = bits_float(a) + 0.5f;                       // 0.5 = 2^-1: ulp there is 2^-24
    return sign | static_cast<uint16_t>(float_bits(v) - float_bits(0.5f));
  }
  uint32_t mant_odd = (a >> 13) & 1u;
  a += 0xC8000FFFu + mant_odd;                            // rebias exponent (-112 << 23) and round
  return sign | static_cast<uint16_t>(a >> 13);
}

float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    float v = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7F800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

void generate_masters(uint64_t key, Distribution dist, uint64_t begin, uint64_t count, float* out) {
  const double two_pi = 2.0 * std::numbers::pi;
  uint64_t end = begin + count;
  uint64_t i = begin;
  while (i < end) {
    uint64_t p = i / 2;
    double u1 = static_cast<double>((bits_at(key, 2 * p) >> 11) + 1) * kTwoPow53;
    double u2 = static_cast<double>(bits_at(key, 2 * p + 1) >> 11) * kTwoPow53;
    double r = std::sqrt(-2.0 * std::log(u1));
    double t = two_pi * u2;
    if (i % 2 == 0) {
      double z = r * std::cos(t);
      out[i - begin] = bf16_to_float(float_to_bf16(static_cast<float>(dist.mean + dist.stddev * z)));
      ++i;
      if (i >= end) break;
    }
    double z = r * std::sin(t);
    out[i - begin] = bf16_to_float(float_to_bf16(static_cast<float>(dist.mean + dist.stddev * z)));
    ++i;
  }
}

}  // namespace mm::synth
