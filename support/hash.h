// FNV-1a, 64-bit: the project's one non-cryptographic hash (kernel source hashes, the kernel
// cache's file names and checksums, mm-synth's per-tensor keys). Not for anything an adversary
// chooses to collide: where that matters the hashed bytes are compared as well.
#pragma once

#include <cstdint>
#include <string_view>

namespace mm {

inline constexpr uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;

// `h` continues a hash (FNV-1a of a concatenation), or starts from another offset for a second,
// independent hash of the same bytes.
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = kFnv1aOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace mm
