// Deterministic random master weights for mm-synth, and the 16-bit float conversions they need.
//
// Counter-based: element i of a tensor is a pure function of (seed, tensor name, i), so any
// tensor, or any slice of one, can be generated independently and in parallel, and a checker
// (test/inputs/scripts/check_synth.py) can regenerate any element without running mm-synth.
//
//   key        = mix64(fnv1a64(name) ^ mix64(seed))
//   bits(n)    = mix64(key + (n + 1) * 0x9E3779B97F4A7C15)          (SplitMix64's n-th output)
//   pair p     : u1 = ((bits(2p) >> 11) + 1) * 2^-53   in (0, 1]
//                u2 =  (bits(2p+1) >> 11)    * 2^-53   in [0, 1)
//                r  = sqrt(-2 ln u1),  t = 2*pi*u2
//   z(2p) = r*cos(t), z(2p+1) = r*sin(t)                         (Box-Muller, double precision)
//   master(i)  = bf16_rne( float( mean + stddev * z(i) ) )
#pragma once

#include <cstdint>
#include <string_view>

#include "support/hash.h"

namespace mm::synth {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint64_t tensor_key(uint64_t seed, std::string_view name) {
  return mix64(fnv1a64(name) ^ mix64(seed));
}

// Normal(mean, stddev) masters as floats already rounded to bf16, elements [begin, begin + count).
struct Distribution {
  double mean = 0;
  double stddev = 1;
};
void generate_masters(uint64_t key, Distribution dist, uint64_t begin, uint64_t count, float* out);

// Round-to-nearest-even conversions (NaN stays NaN; we never produce one).
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t h);
uint16_t float_to_f16(float f);
float f16_to_float(uint16_t h);

}  // namespace mm::synth
