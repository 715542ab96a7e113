#include "runtime/chat/tool_call_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

#include "runtime/chat/python_json.h"
#include "runtime/chat/reasoning_parser.h"

namespace mm::text {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kBlockBegin = "<minimax:tool_call>";
constexpr std::string_view kBlockEnd = "</minimax:tool_call>";
constexpr std::string_view kInvokeBegin = "<invoke name=";
constexpr std::string_view kInvokeEnd = "</invoke>";
constexpr std::string_view kParamBegin = "<parameter name=";
constexpr std::string_view kParamEnd = "</parameter>";

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// vLLM _extract_name: strip, then drop one pair of surrounding double or single quotes. Names go
// into JSON (function names, argument keys): bytes that are not UTF-8 become U+FFFD here, so that
// two names that differ only in such bytes are one key, as they will be on the wire.
std::string extract_name(std::string_view raw) {
  std::string_view s = python_strip(raw);
  if (s.size() >= 1 && ((s.front() == '"' && s.back() == '"') || (s.front() == '\'' && s.back() == '\''))) {
    // A lone quote both starts and ends the string; Python's s[1:-1] is then "".
    return s.size() >= 2 ? to_valid_utf8(s.substr(1, s.size() - 2)) : std::string();
  }
  return to_valid_utf8(s);
}

// Removes Python's digit-grouping underscores ("1_000"); returns false where Python would reject
// them (leading, trailing, doubled, or next to a non-digit).
bool strip_underscores(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      bool ok = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!ok) return false;
      continue;
    }
    out.push_back(s[i]);
  }
  return true;
}

// Python int(value).
std::optional<json> python_int(std::string_view value) {
  std::string s;
  if (!strip_underscores(python_strip(value), s) || s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  for (size_t k = i; k < s.size(); ++k)
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return std::nullopt;
  std::string_view digits(s.data() + i, s.size() - i);
  uint64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  constexpr uint64_t kMaxPositive = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMaxPositive + 1) return std::nullopt;
    return json(v == kMaxPositive + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v));
  }
  if (v <= kMaxPositive) return json(static_cast<int64_t>(v));
  return json(v);
}

// Python float(value), finite values only (see the header for inf/nan).
std::optional<double> python_finite_float(std::string_view value) {
  std::string s;
  if (!strip_underscores(python_strip(value), s) || s.empty()) return std::nullopt;
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  // Grammar: digits [. digits?] | . digits, then optional e[+-]digits. Validated here because
  // from_chars also takes "inf", "nan" and hex-like forms that float() treats differently.
  size_t int_digits = 0, frac_digits = 0, k = i;
  while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k, ++int_digits;
  if (k < s.size() && s[k] == '.') {
    ++k;
    while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (k < s.size() && (s[k] == 'e' || s[k] == 'E')) {
    ++k;
    if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
    size_t exp_digits = 0;
    while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (k != s.size()) return std::nullopt;
  std::string body = s.substr(s[0] == '+' ? 1 : 0);
  double v = 0;
  auto r = std::from_chars(body.data(), body.data() + body.size(), v);
  if (r.ptr != body.data() + body.size()) return std::nullopt;
  if (r.ec == std::errc::result_out_of_range) {
    // float() saturates to inf / underflows to 0 where from_chars reports a range error.
    if (std::isinf(v) || v == 0) return std::nullopt;
  } else if (r.ec != std::errc()) {
    return std::nullopt;
  }
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<json> python_json_loads(std::string_view value) {
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

// vLLM _extract_types_from_schema.
void collect_types(const json& schema, std::set<std::string>& types) {
  if (!schema.is_object()) return;
  if (auto t = schema.find("type"); t != schema.end()) {
    if (t->is_string()) {
      types.insert(t->get<std::string>());
    } else if (t->is_array()) {
      for (const json& item : *t)
        if (item.is_string()) types.insert(item.get<std::string>());
    }
  }
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    for (const json& v : *e) {
      if (v.is_null()) types.insert("null");
      else if (v.is_boolean()) types.insert("boolean");
      else if (v.is_number_integer()) types.insert("integer");
      else if (v.is_number_float()) types.insert("number");
      else if (v.is_string()) types.insert("string");
      else if (v.is_array()) types.insert("array");
      else if (v.is_object()) types.insert("object");
    }
  }
  for (const char* key : {"anyOf", "oneOf", "allOf"})
    if (auto c = schema.find(key); c != schema.end() && c->is_array())
      for (const json& choice : *c) {
        std::set<std::string> sub;
        collect_types(choice, sub);
        if (sub.empty()) sub.insert("string");  // a choice without types counts as string
        types.insert(sub.begin(), sub.end());
      }
}

// The "properties" of the first tool named `function_name` (vLLM stops at the first name match).
const json* find_properties(const json& tools, std::string_view function_name) {
  if (!tools.is_array()) return nullptr;
  for (const json& tool : tools) {
    if (!tool.is_object()) continue;
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) continue;
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string() || name->get_ref<const std::string&>() != function_name) continue;
    auto params = fn->find("parameters");
    if (params == fn->end() || !params->is_object()) return nullptr;
    auto props = params->find("properties");
    if (props == params->end() || !props->is_object()) return nullptr;
    return &*props;
  }
  return nullptr;
}

std::set<std::string> parameter_types(const json& tools, std::string_view function_name,
                                      std::string_view param_name) {
  std::set<std::string> types;
  const json* props = find_properties(tools, function_name);
  if (props != nullptr) {
    auto schema = props->find(std::string(param_name));
    if (schema != props->end()) collect_types(*schema, types);
  }
  if (types.empty()) types.insert("string");
  std::set<std::string> lowered;
  for (const std::string& t : types) lowered.insert(ascii_lower(t));
  return lowered;
}

json convert_with_types(std::string_view value, const std::set<std::string>& types) {
  std::string lower = ascii_lower(value);
  if (lower == "null" || lower == "none" || lower == "nil") return nullptr;
  static const char* const kPriority[] = {"integer", "int",   "number", "float", "boolean", "bool",
                                          "object",  "array", "string", "str",   "text"};
  for (const char* type : kPriority) {
    if (!types.count(type)) continue;
    std::string_view t(type);
    if (t == "string" || t == "str" || t == "text") return std::string(value);
    if (t == "integer" || t == "int") {
      if (auto v = python_int(value)) return *v;
    } else if (t == "number" || t == "float") {
      if (auto v = python_finite_float(value)) {
        // `val if val != int(val) else int(val)`: integral values are sent as integers.
        double d = *v;
        if (d == std::trunc(d) && std::fabs(d) < 9.2e18) return json(static_cast<int64_t>(d));
        return json(d);
      }
    } else if (t == "boolean" || t == "bool") {
      std::string b = ascii_lower(python_strip(value));
      if (b == "true" || b == "1" || b == "yes" || b == "on") return true;
      if (b == "false" || b == "0" || b == "no" || b == "off") return false;
    } else {  // object, array
      if (auto v = python_json_loads(value)) return *v;
    }
  }
  if (auto v = python_json_loads(value)) return *v;
  return std::string(value);
}

// Splits the text after "<parameter name=" (up to </parameter>) into name and converted value, as
// vLLM's `^([^>]+)>(.*)`: no '>' or an empty name means the parameter is ignored.
std::optional<std::pair<std::string, json>> read_parameter(std::string_view param_str, const json& tools,
                                                           std::string_view function_name) {
  size_t gt = param_str.find('>');
  if (gt == std::string_view::npos || gt == 0) return std::nullopt;
  std::string name = extract_name(param_str.substr(0, gt));
  // vLLM strips, then drops one leading/trailing "\n"; after strip() there is none left to drop.
  std::string_view value = python_strip(param_str.substr(gt + 1));
  return std::pair{name, convert_with_types(value, parameter_types(tools, function_name, name))};
}

// Finds the earliest of `markers` in `text` from `from`; returns {position, marker index}.
std::pair<size_t, size_t> find_first(std::string_view text, std::initializer_list<std::string_view> markers,
                                     size_t from = 0) {
  size_t best = std::string_view::npos, which = markers.size();
  size_t i = 0;
  for (std::string_view m : markers) {
    size_t p = text.find(m, from);
    if (p < best) best = p, which = i;
    ++i;
  }
  return {best, which};
}

size_t hold_for(std::string_view text, std::initializer_list<std::string_view> markers) {
  size_t hold = 0;
  for (std::string_view m : markers) hold = std::max(hold, partial_tag_suffix(text, m));
  return hold;
}

}  // namespace

ToolCallIdGenerator::ToolCallIdGenerator() : rng_(std::random_device{}()) {}

std::string ToolCallIdGenerator::next() {
  static const char kHex[] = "0123456789abcdef";
  std::string id = "call_";
  uint64_t a = rng_(), b = rng_();
  for (int i = 0; i < 16; ++i) id.push_back(kHex[(a >> (4 * i)) & 0xf]);
  for (int i = 0; i < 8; ++i) id.push_back(kHex[(b >> (4 * i)) & 0xf]);
  return id;
}

json convert_tool_parameter(std::string_view raw_value, const json& tools, std::string_view function_name,
                            std::string_view param_name) {
  return convert_with_types(raw_value, parameter_types(tools, function_name, param_name));
}

ToolCallParse parse_minimax_tool_calls(std::string_view text, const json& tools, ToolCallIdGenerator& ids) {
  ToolCallParse result;
  size_t first_block = text.find(kBlockBegin);
  if (first_block == std::string_view::npos) {
    result.content = std::string(text);
    return result;
  }
  // findall(<minimax:tool_call>(.*?)</minimax:tool_call>), then <invoke name=(.*?)</invoke> inside
  // each block, then <parameter name=(.*?)</parameter> inside each invoke.
  size_t pos = first_block;
  while (true) {
    size_t b = text.find(kBlockBegin, pos);
    if (b == std::string_view::npos) break;
    size_t e = text.find(kBlockEnd, b + kBlockBegin.size());
    if (e == std::string_view::npos) break;
    std::string_view block = text.substr(b + kBlockBegin.size(), e - b - kBlockBegin.size());
    pos = e + kBlockEnd.size();

    size_t ipos = 0;
    while (true) {
      size_t is = block.find(kInvokeBegin, ipos);
      if (is == std::string_view::npos) break;
      size_t ie = block.find(kInvokeEnd, is + kInvokeBegin.size());
      if (ie == std::string_view::npos) break;
      std::string_view invoke = block.substr(is + kInvokeBegin.size(), ie - is - kInvokeBegin.size());
      ipos = ie + kInvokeEnd.size();

      // Name: `^([^>]+)`, the text up to the first '>' (all of it if there is none).
      size_t gt = invoke.find('>');
      std::string_view raw_name = invoke.substr(0, gt);
      if (raw_name.empty()) continue;
      std::string name = extract_name(raw_name);

      json args = json::object();
      size_t ppos = 0;
      while (true) {
        size_t ps = invoke.find(kParamBegin, ppos);
        if (ps == std::string_view::npos) break;
        size_t pe = invoke.find(kParamEnd, ps + kParamBegin.size());
        if (pe == std::string_view::npos) break;
        ppos = pe + kParamEnd.size();
        auto param = read_parameter(invoke.substr(ps + kParamBegin.size(), pe - ps - kParamBegin.size()), tools, name);
        // A repeated name keeps its first value: the streaming parser has sent that one already.
        if (param && !args.contains(param->first)) args[param->first] = std::move(param->second);
      }
      result.tool_calls.push_back(ToolCall{ids.next(), std::move(name), dumps(args)});
    }
  }
  if (result.tool_calls.empty()) {
    result.content = std::string(text);
  } else if (first_block > 0) {
    result.content = std::string(text.substr(0, first_block));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Streaming

ToolCallStreamParser::ToolCallStreamParser(json tools, ToolCallIdGenerator& ids)
    : tools_(std::move(tools)), ids_(ids) {}

ToolStreamDelta ToolCallStreamParser::feed(std::string_view text) {
  ToolStreamDelta out;
  buf_.append(text);
  drain(false, out);
  return out;
}

ToolStreamDelta ToolCallStreamParser::finish() {
  ToolStreamDelta out;
  drain(true, out);
  if (state_ != State::Content) {
    // The stream ended inside a block: close an open call so its JSON is complete, and give back a
    // block that produced nothing as plain text.
    if (call_open_) close_call(out);
    if (!block_has_call_) {
      std::string raw = block_raw_ + buf_;
      emit_content(raw, out);
    }
    buf_.clear();
    block_raw_.clear();
    state_ = State::Content;
  }
  held_ws_.clear();
  return out;
}

void ToolCallStreamParser::consume(size_t n) {
  if (!block_has_call_ && state_ != State::Content) block_raw_.append(buf_, 0, n);
  buf_.erase(0, n);
  scan_from_ = 0;
}

void ToolCallStreamParser::emit_content(std::string_view text, ToolStreamDelta& out) {
  if (text.empty()) return;
  if (after_call_block_) {
    if (python_strip(text).empty()) {
      held_ws_.append(text);
      return;
    }
    out.content += held_ws_;
    held_ws_.clear();
    after_call_block_ = false;
  }
  out.content.append(text);
}

void ToolCallStreamParser::start_call(std::string name, ToolStreamDelta& out) {
  current_ = ToolCall{ids_.next(), std::move(name), ""};
  call_open_ = true;
  param_count_ = 0;
  param_names_.clear();
  block_has_call_ = true;
  block_raw_.clear();
  ToolCallDelta d;
  d.index = calls_.size();
  d.id = current_.id;
  d.name = current_.name;
  out.tool_calls.push_back(std::move(d));
}

void ToolCallStreamParser::add_argument_fragment(const std::string& fragment, ToolStreamDelta& out) {
  current_.arguments += fragment;
  size_t index = calls_.size();
  if (!out.tool_calls.empty() && out.tool_calls.back().index == index) {
    out.tool_calls.back().arguments += fragment;
  } else {
    ToolCallDelta d;
    d.index = index;
    d.arguments = fragment;
    out.tool_calls.push_back(std::move(d));
  }
}

void ToolCallStreamParser::close_call(ToolStreamDelta& out) {
  add_argument_fragment(param_count_ == 0 ? "{}" : "}", out);
  calls_.push_back(std::move(current_));
  current_ = ToolCall{};
  call_open_ = false;
}

void ToolCallStreamParser::close_block(ToolStreamDelta& out) {
  if (call_open_) close_call(out);
  state_ = State::Content;
  if (block_has_call_) {
    after_call_block_ = true;
    held_ws_.clear();
  } else {
    // Nothing callable inside: it was text after all.
    std::string raw = std::move(block_raw_);
    emit_content(raw, out);
  }
  block_raw_.clear();
}

void ToolCallStreamParser::drain(bool at_end, ToolStreamDelta& out) {
  while (true) {
    switch (state_) {
      case State::Content: {
        size_t p = buf_.find(kBlockBegin);
        if (p == std::string::npos) {
          size_t hold = at_end ? 0 : partial_tag_suffix(buf_, kBlockBegin);
          emit_content(std::string_view(buf_).substr(0, buf_.size() - hold), out);
          buf_.erase(0, buf_.size() - hold);
          return;
        }
        std::string before = buf_.substr(0, p);
        if (after_call_block_ && python_strip(before).empty()) {
          held_ws_.clear();  // whitespace between two blocks is dropped
        } else {
          emit_content(before, out);
        }
        buf_.erase(0, p);
        state_ = State::Block;
        block_has_call_ = false;
        block_raw_.clear();
        consume(kBlockBegin.size());
        break;
      }
      case State::Block: {
        auto [p, which] = find_first(buf_, {kInvokeBegin, kBlockEnd});
        if (p == std::string::npos) {
          consume(buf_.size() - (at_end ? 0 : hold_for(buf_, {kInvokeBegin, kBlockEnd})));
          return;
        }
        consume(p);
        if (which == 0) {
          consume(kInvokeBegin.size());
          state_ = State::Header;
        } else {
          consume(kBlockEnd.size());
          close_block(out);
        }
        break;
      }
      case State::Header: {
        size_t gt = buf_.find('>', scan_from_);
        if (gt == std::string::npos) {
          scan_from_ = buf_.size();
          return;  // finish() handles an unterminated header
        }
        std::string_view header(buf_.data(), gt);
        constexpr std::string_view kInvokeEndOpen = "</invoke";
        constexpr std::string_view kBlockEndOpen = "</minimax:tool_call";
        if (header.size() >= kBlockEndOpen.size() && header.substr(header.size() - kBlockEndOpen.size()) == kBlockEndOpen) {
          // The block closed before the invoke did: the non-streaming regex drops this invoke.
          consume(gt + 1);
          close_block(out);
        } else if (header.size() >= kInvokeEndOpen.size() &&
                   header.substr(header.size() - kInvokeEndOpen.size()) == kInvokeEndOpen) {
          // `<invoke name="x"</invoke>`: a call without parameters.
          std::string_view raw_name = header.substr(0, header.size() - kInvokeEndOpen.size());
          if (!raw_name.empty()) {
            start_call(extract_name(raw_name), out);
            close_call(out);
          }
          consume(gt + 1);
          state_ = State::Block;
        } else if (header.empty()) {
          consume(gt + 1);
          state_ = State::SkipInvoke;
        } else {
          std::string name = extract_name(header);
          consume(gt + 1);
          start_call(std::move(name), out);
          state_ = State::Body;
        }
        break;
      }
      case State::Body: {
        auto [p, which] = find_first(buf_, {kParamBegin, kInvokeEnd, kBlockEnd});
        if (p == std::string::npos) {
          consume(buf_.size() - (at_end ? 0 : hold_for(buf_, {kParamBegin, kInvokeEnd, kBlockEnd})));
          return;
        }
        consume(p);
        if (which == 0) {
          consume(kParamBegin.size());
          state_ = State::Param;
        } else if (which == 1) {
          consume(kInvokeEnd.size());
          close_call(out);
          state_ = State::Block;
        } else {
          consume(kBlockEnd.size());
          close_block(out);
        }
        break;
      }
      case State::Param: {
        // A parameter is sent only once complete, so nothing is consumed until its end tag.
        auto [p, which] = find_first(buf_, {kParamEnd, kInvokeEnd, kBlockEnd}, scan_from_);
        if (p == std::string::npos) {
          // Resume the search where a marker could still start, so long values are scanned once.
          scan_from_ = buf_.size() > kBlockEnd.size() ? buf_.size() - kBlockEnd.size() : 0;
          return;
        }
        if (which == 0) {
          auto param = read_parameter(std::string_view(buf_).substr(0, p), tools_, current_.name);
          consume(p + kParamEnd.size());
          // A name already sent for this call is skipped: its fragment cannot be taken back, and a
          // second key would make the arguments invalid JSON for strict clients.
          if (param && param_names_.insert(param->first).second) {
            std::string fragment = param_count_ == 0 ? "{" : ", ";
            fragment += dumps(json(param->first)) + ": " + dumps(param->second);
            ++param_count_;
            add_argument_fragment(fragment, out);
          }
          state_ = State::Body;
        } else if (which == 1) {
          consume(p + kInvokeEnd.size());  // unterminated parameter: dropped, as by the regex
          close_call(out);
          state_ = State::Block;
        } else {
          consume(p + kBlockEnd.size());
          close_block(out);
        }
        break;
      }
      case State::SkipInvoke: {
        auto [p, which] = find_first(buf_, {kInvokeEnd, kBlockEnd});
        if (p == std::string::npos) {
          consume(buf_.size() - (at_end ? 0 : hold_for(buf_, {kInvokeEnd, kBlockEnd})));
          return;
        }
        if (which == 0) {
          consume(p + kInvokeEnd.size());
          state_ = State::Block;
        } else {
          consume(p + kBlockEnd.size());
          close_block(out);
        }
        break;
      }
    }
  }
}

}  // namespace mm::text
