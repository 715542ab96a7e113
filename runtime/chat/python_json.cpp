#include "runtime/chat/python_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace mm::text {

std::string python_float_repr(double value, bool json_style) {
  if (std::isnan(value)) return json_style ? "NaN" : "nan";
  if (std::isinf(value)) {
    if (json_style) return value < 0 ? "-Infinity" : "Infinity";
    return value < 0 ? "-inf" : "inf";
  }
  // std::to_chars without a precision gives the shortest digits that round-trip, which is also
  // what Python's repr uses; only the layout differs, so take the digits and re-lay them out.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  // Python (format_float_short, mode 'r'): decpt is where the decimal point sits relative to the
  // first digit; exponent notation when decpt <= -4 or decpt > 16.
  int decpt = exponent + 1;
  int ndigits = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (ndigits > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", decpt - 1 < 0 ? '-' : '+', std::abs(decpt - 1));
    out += exp_buf;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= ndigits) {
    out += digits;
    out.append(static_cast<size_t>(decpt - ndigits), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(decpt), std::string::npos);
  }
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (Unicode table 3-7: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const size_t n = s.size() - i;
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < n && b(i + k) >= lo && b(i + k) <= hi;
  };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// json.dumps(ensure_ascii=False) escapes only '"', '\\' and the C0 controls; everything else,
// including DEL and all non-ASCII text, is written as is. A Python str holds no invalid UTF-8; here
// a byte that does not start a well-formed sequence (a model's parameter value can hold one)
// becomes U+FFFD, so that the output is always valid JSON for the client.
void dump_string(const std::string& s, std::string& out) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence(s, i);
      if (len == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(s, i, len);
        i += len;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\u%04x", c);
          out += esc;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Scalars are written at once; arrays and objects open a frame. Iterative (an explicit stack of
// open containers) so that depth costs heap, not stack: a model's tool-call argument or a --tools
// schema nested 100,000 deep is printed like any other.
void dump_scalar(const ordered_json& v, std::string& out) {
  switch (v.type()) {
    case ordered_json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case ordered_json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case ordered_json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case ordered_json::value_t::number_float: out += python_float_repr(v.get<double>(), true); break;
    case ordered_json::value_t::string: dump_string(v.get_ref<const std::string&>(), out); break;
    default: out += "null"; break;  // null, binary, discarded
  }
}

void dump_into(const ordered_json& root, std::string& out) {
  struct Frame {
    const ordered_json* container;
    ordered_json::const_iterator next;
    bool first;
  };
  std::vector<Frame> open;
  auto emit = [&](const ordered_json& v) {
    if (v.is_array() || v.is_object()) {
      out.push_back(v.is_array() ? '[' : '{');
      open.push_back({&v, v.cbegin(), true});
    } else {
      dump_scalar(v, out);
    }
  };
  emit(root);
  while (!open.empty()) {
    Frame& f = open.back();
    if (f.next == f.container->cend()) {
      out.push_back(f.container->is_array() ? ']' : '}');
      open.pop_back();
      continue;
    }
    if (!f.first) out += ", ";
    f.first = false;
    if (f.container->is_object()) {
      dump_string(f.next.key(), out);
      out += ": ";
    }
    const ordered_json& child = *f.next;
    ++f.next;
    emit(child);  // may grow `open`: `f` is not used after this
  }
}

}  // namespace

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8_sequence(text, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text, i, len);
      i += len;
    }
  }
  return out;
}

std::string dumps(const ordered_json& value) {
  std::string out;
  dump_into(value, out);
  return out;
}

mm::Expected<std::string> to_template_text(const ordered_json& value, std::string_view what) {
  switch (value.type()) {
    case ordered_json::value_t::null: return std::string("None");
    case ordered_json::value_t::boolean: return std::string(value.get<bool>() ? "True" : "False");
    case ordered_json::value_t::number_integer: return std::to_string(value.get<int64_t>());
    case ordered_json::value_t::number_unsigned: return std::to_string(value.get<uint64_t>());
    case ordered_json::value_t::number_float: return python_float_repr(value.get<double>(), false);
    case ordered_json::value_t::string: return value.get<std::string>();
    default:
      return mm::Error::bad_input(std::string(what) + ": expected text, got a JSON " + value.type_name() +
                                  " (the chat template would print it as a Python repr)");
  }
}

bool python_truthy(const ordered_json& value) {
  switch (value.type()) {
    case ordered_json::value_t::null: return false;
    case ordered_json::value_t::boolean: return value.get<bool>();
    case ordered_json::value_t::number_integer: return value.get<int64_t>() != 0;
    case ordered_json::value_t::number_unsigned: return value.get<uint64_t>() != 0;
    case ordered_json::value_t::number_float: return value.get<double>() != 0.0;
    case ordered_json::value_t::string: return !value.get_ref<const std::string&>().empty();
    case ordered_json::value_t::array:
    case ordered_json::value_t::object: return !value.empty();
    default: return false;
  }
}

namespace {

bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Decodes the code point starting at text[pos]; returns its byte length, or 0 if the bytes there are
// not valid UTF-8 (such bytes are never whitespace, so stripping stops at them).
size_t decode_at(std::string_view text, size_t pos, uint32_t& cp) {
  unsigned char c = static_cast<unsigned char>(text[pos]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || pos + len > text.size()) return 0;
  cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t i = 1; i < len; ++i) {
    unsigned char cc = static_cast<unsigned char>(text[pos + i]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  return len;
}

}  // namespace

std::string_view python_strip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    uint32_t cp = 0;
    size_t len = decode_at(text, begin, cp);
    if (len == 0 || !is_python_space(cp)) break;
    begin += len;
  }
  size_t end = text.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80) --start;
    uint32_t cp = 0;
    size_t len = decode_at(text, start, cp);
    if (len != end - start || !is_python_space(cp)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace mm::text
