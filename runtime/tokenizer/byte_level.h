// GPT-2's reversible byte <-> printable-character mapping used by ByteLevel pre-tokenizers and
// decoders: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves, the other 68 bytes
// are shifted to U+0100..U+0143 in byte order.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace mm::text {

struct ByteLevelTable {
  std::array<std::string, 256> to_text;  // byte -> UTF-8 of its mapped character
  std::array<int16_t, 0x144> to_byte;    // mapped code point -> byte, -1 if none
};

const ByteLevelTable& byte_level_table();

}  // namespace mm::text
