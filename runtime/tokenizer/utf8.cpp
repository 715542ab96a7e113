#include "runtime/tokenizer/utf8.h"

namespace mm::text {

Utf8Step utf8_step(const unsigned char* s, size_t n) {
  unsigned char b0 = s[0];
  if (b0 < 0x80) return {Utf8Kind::Ok, 1, b0};
  size_t need;
  uint32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return {Utf8Kind::Invalid, 1, 0};
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) return {Utf8Kind::Incomplete, n, 0};
    unsigned char b = s[i];
    unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) return {Utf8Kind::Invalid, i, 0};  // maximal subpart = the i bytes read
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Kind::Ok, need, cp};
}

bool utf8_valid(std::string_view s) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    Utf8Step st = utf8_step(p + i, n - i);
    if (st.kind != Utf8Kind::Ok) return false;
    i += st.len;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  if (utf8_valid(s)) return std::string(s);
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  std::string out;
  out.reserve(n + 8);
  while (i < n) {
    Utf8Step st = utf8_step(p + i, n - i);
    if (st.kind == Utf8Kind::Ok) {
      out.append(s.data() + i, st.len);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += st.len;
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t utf8_last_cp(std::string_view s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  Utf8Step st = utf8_step(reinterpret_cast<const unsigned char*>(s.data()) + b, end - b);
  if (start) *start = b;
  return st.kind == Utf8Kind::Ok ? st.cp : 0xFFFD;
}

}  // namespace mm::text
