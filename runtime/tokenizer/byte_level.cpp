#include "runtime/tokenizer/byte_level.h"

#include "runtime/tokenizer/utf8.h"

namespace mm::text {

static ByteLevelTable build_table() {
  ByteLevelTable t;
  t.to_byte.fill(-1);
  uint32_t shifted = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    uint32_t cp = printable ? static_cast<uint32_t>(b) : 256 + shifted++;
    utf8_append(t.to_text[b], cp);
    t.to_byte[cp] = static_cast<int16_t>(b);
  }
  return t;
}

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table = build_table();
  return table;
}

}  // namespace mm::text
