#include "runtime/tokenizer/pipeline.h"

#include <algorithm>
#include <functional>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/unicode_nfc.h"
#include "runtime/tokenizer/utf8.h"

namespace mm::text {

using nlohmann::json;

namespace {

mm::Error err_at(const std::string& origin, const std::string& key, const std::string& what) {
  return mm::Error::bad_input(origin + ": " + key + ": " + what);
}

// GPT-2's split, used by ByteLevel when use_regex is true (tokenizers' byte_level.rs).
const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::shared_ptr<Regex> gpt2_regex() {
  static std::shared_ptr<Regex> re = [] {
    auto r = Regex::compile(kGpt2Regex, "ByteLevel regex");
    return std::make_shared<Regex>(std::move(r.value()));
  }();
  return re;
}

// Unicode White_Space (Rust's char::is_whitespace, used by Strip and added-token stripping).
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Pattern of Split / Replace: {"Regex": "..."} or {"String": "..."}.
mm::Expected<std::shared_ptr<Regex>> parse_pattern(const json& j, const std::string& origin,
                                                   const std::string& key, bool* is_literal,
                                                   std::string* literal) {
  if (!j.is_object() || j.size() != 1)
    return err_at(origin, key, "expected {\"Regex\": ...} or {\"String\": ...}");
  if (j.contains("Regex")) {
    if (!j["Regex"].is_string()) return err_at(origin, key + ".Regex", "expected a string");
    if (is_literal) *is_literal = false;
    auto r = Regex::compile(j["Regex"].get<std::string>(), origin + ": " + key + ".Regex");
    if (!r) return r.error();
    return std::make_shared<Regex>(std::move(r.value()));
  }
  if (j.contains("String")) {
    if (!j["String"].is_string()) return err_at(origin, key + ".String", "expected a string");
    if (is_literal) *is_literal = true;
    if (literal) *literal = j["String"].get<std::string>();
    auto r = Regex::literal(j["String"].get<std::string>(), origin + ": " + key + ".String");
    if (!r) return r.error();
    return std::make_shared<Regex>(std::move(r.value()));
  }
  return err_at(origin, key, "expected {\"Regex\": ...} or {\"String\": ...}");
}

mm::Expected<std::string> get_type(const json& j, const std::string& origin, const std::string& key) {
  if (!j.is_object()) return err_at(origin, key, "expected an object or null");
  if (!j.contains("type") || !j["type"].is_string())
    return err_at(origin, key + ".type", "missing or not a string");
  return j["type"].get<std::string>();
}

mm::Expected<bool> get_bool(const json& j, const char* name, bool dflt, const std::string& origin,
                            const std::string& key) {
  if (!j.contains(name) || j[name].is_null()) return dflt;
  if (!j[name].is_boolean()) return err_at(origin, key + "." + name, "expected true/false");
  return j[name].get<bool>();
}

mm::Expected<std::string> get_string(const json& j, const char* name, const std::string& origin,
                                     const std::string& key) {
  if (!j.contains(name)) return err_at(origin, key + "." + name, "missing");
  if (!j[name].is_string()) return err_at(origin, key + "." + name, "expected a string");
  std::string s = j[name].get<std::string>();
  if (!utf8_valid(s)) return err_at(origin, key + "." + name, "not valid UTF-8");
  return s;
}

class SequenceNormalizer : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> parts;
  void apply(std::string& text) const override {
    for (auto& p : parts) p->apply(text);
  }
};

class ReplaceNormalizer : public Normalizer {
 public:
  std::shared_ptr<Regex> pattern;
  std::string content;
  void apply(std::string& text) const override {
    std::string out;
    size_t last = 0;
    bool any = false;
    pattern->for_each_match(text, [&](size_t s, size_t e) {
      out.append(text, last, s - last);
      out += content;
      last = e;
      any = true;
    });
    if (!any) return;
    out.append(text, last, std::string::npos);
    text.swap(out);
  }
};

class PrependNormalizer : public Normalizer {
 public:
  std::string prefix;
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix);
  }
};

class StripNormalizer : public Normalizer {
 public:
  bool left = false, right = false;
  void apply(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (left) {
      while (b < e) {
        Utf8Step st = utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + b, e - b);
        if (st.kind != Utf8Kind::Ok || !is_white_space(st.cp)) break;
        b += st.len;
      }
    }
    if (right) {
      while (e > b) {
        size_t start;
        uint32_t cp = utf8_last_cp(text, e, &start);
        if (!is_white_space(cp)) break;
        e = start;
      }
    }
    text = text.substr(b, e - b);
  }
};

class NfcNormalizer : public Normalizer {
 public:
  void apply(std::string& text) const override { text = nfc(text); }
};

}  // namespace

// Sequences nest by recursion: bound the depth so that a hostile file cannot exhaust the stack.
constexpr size_t kMaxKeyLength = 4096;

mm::Expected<std::unique_ptr<Normalizer>> parse_normalizer(const json& j, const std::string& origin,
                                                           const std::string& key) {
  if (key.size() > kMaxKeyLength) return err_at(origin, key.substr(0, 64) + "...", "nested too deeply");
  auto type = get_type(j, origin, key);
  if (!type) return type.error();
  const std::string& t = *type;
  if (t == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      return err_at(origin, key + ".normalizers", "missing or not an array");
    auto seq = std::make_unique<SequenceNormalizer>();
    const json& arr = j["normalizers"];
    for (size_t i = 0; i < arr.size(); ++i) {
      auto p = parse_normalizer(arr[i], origin, key + ".normalizers[" + std::to_string(i) + "]");
      if (!p) return p.error();
      seq->parts.push_back(std::move(p.value()));
    }
    return std::unique_ptr<Normalizer>(std::move(seq));
  }
  if (t == "Replace") {
    auto r = std::make_unique<ReplaceNormalizer>();
    if (!j.contains("pattern")) return err_at(origin, key + ".pattern", "missing");
    auto pat = parse_pattern(j["pattern"], origin, key + ".pattern", nullptr, nullptr);
    if (!pat) return pat.error();
    r->pattern = std::move(pat.value());
    auto content = get_string(j, "content", origin, key);
    if (!content) return content.error();
    r->content = *content;
    return std::unique_ptr<Normalizer>(std::move(r));
  }
  if (t == "Prepend") {
    auto p = std::make_unique<PrependNormalizer>();
    auto s = get_string(j, "prepend", origin, key);
    if (!s) return s.error();
    p->prefix = *s;
    return std::unique_ptr<Normalizer>(std::move(p));
  }
  if (t == "Strip") {
    auto s = std::make_unique<StripNormalizer>();
    auto l = get_bool(j, "strip_left", false, origin, key);
    if (!l) return l.error();
    auto r = get_bool(j, "strip_right", false, origin, key);
    if (!r) return r.error();
    s->left = *l;
    s->right = *r;
    return std::unique_ptr<Normalizer>(std::move(s));
  }
  if (t == "NFC") return std::unique_ptr<Normalizer>(std::make_unique<NfcNormalizer>());
  return err_at(origin, key + ".type",
                "unsupported normalizer \"" + t +
                    "\" (supported: Sequence, Replace, Prepend, Strip, NFC); refusing rather "
                    "than tokenizing differently from Hugging Face");
}

mm::Expected<PreTokenizer> PreTokenizer::parse(const json& j, const std::string& origin) {
  PreTokenizer pt;
  if (j.is_null()) return pt;
  // Flatten nested Sequences into steps.
  std::vector<std::pair<const json*, std::string>> todo{{&j, "pre_tokenizer"}};
  std::vector<std::pair<const json*, std::string>> flat;
  std::function<mm::Status(const json&, const std::string&)> flatten =
      [&](const json& node, const std::string& key) -> mm::Status {
    if (key.size() > kMaxKeyLength) return err_at(origin, key.substr(0, 64) + "...", "nested too deeply");
    auto type = get_type(node, origin, key);
    if (!type) return type.error();
    if (*type == "Sequence") {
      if (!node.contains("pretokenizers") || !node["pretokenizers"].is_array())
        return err_at(origin, key + ".pretokenizers", "missing or not an array");
      const json& arr = node["pretokenizers"];
      for (size_t i = 0; i < arr.size(); ++i) {
        if (auto st = flatten(arr[i], key + ".pretokenizers[" + std::to_string(i) + "]"); !st)
          return st;
      }
      return mm::Status::success();
    }
    flat.emplace_back(&node, key);
    return mm::Status::success();
  };
  if (auto st = flatten(j, "pre_tokenizer"); !st) return st.error();

  for (auto& [node, key] : flat) {
    std::string t = (*node)["type"].get<std::string>();
    Step step;
    if (t == "Split") {
      if (pt.byte_level_)
        return err_at(origin, key,
                      "a Split after ByteLevel would run on byte-mapped text; unsupported");
      step.kind = Step::Kind::Split;
      if (!node->contains("pattern")) return err_at(origin, key + ".pattern", "missing");
      auto pat = parse_pattern((*node)["pattern"], origin, key + ".pattern", nullptr, nullptr);
      if (!pat) return pat.error();
      step.regex = std::move(pat.value());
      if (!node->contains("behavior") || !(*node)["behavior"].is_string())
        return err_at(origin, key + ".behavior", "missing or not a string");
      std::string b = (*node)["behavior"].get<std::string>();
      if (b == "Removed") step.behavior = Behavior::Removed;
      else if (b == "Isolated") step.behavior = Behavior::Isolated;
      else if (b == "MergedWithPrevious") step.behavior = Behavior::MergedWithPrevious;
      else if (b == "MergedWithNext") step.behavior = Behavior::MergedWithNext;
      else if (b == "Contiguous") step.behavior = Behavior::Contiguous;
      else
        return err_at(origin, key + ".behavior",
                      "unknown behavior \"" + b +
                          "\" (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
      auto inv = get_bool(*node, "invert", false, origin, key);
      if (!inv) return inv.error();
      step.invert = *inv;
    } else if (t == "ByteLevel") {
      step.kind = Step::Kind::ByteLevel;
      auto aps = get_bool(*node, "add_prefix_space", true, origin, key);
      if (!aps) return aps.error();
      auto ur = get_bool(*node, "use_regex", true, origin, key);
      if (!ur) return ur.error();
      step.add_prefix_space = *aps;
      step.use_regex = *ur;
      if (step.use_regex) step.regex = gpt2_regex();
      pt.byte_level_ = true;
    } else {
      return err_at(origin, key + ".type",
                    "unsupported pre-tokenizer \"" + t + "\" (supported: Sequence, Split, ByteLevel)");
    }
    pt.steps_.push_back(std::move(step));
  }
  return pt;
}

namespace {

// tokenizers' NormalizedString::split: pieces (start, end, is_match) covering `s`, combined
// according to the behavior; empty pieces dropped. Calls emit for each resulting piece.
void split_by(std::string_view s, const Regex& re, PreTokenizer::Behavior behavior, bool invert,
              const std::function<void(std::string_view)>& emit) {
  using B = PreTokenizer::Behavior;
  if (behavior == B::Isolated) {
    // Every match and every gap is its own piece, whatever `invert` says: stream them.
    size_t prev = 0;
    re.for_each_match(s, [&](size_t a, size_t b) {
      if (prev != a) emit(s.substr(prev, a - prev));
      emit(s.substr(a, b - a));
      prev = b;
    });
    if (prev != s.size()) emit(s.substr(prev));
    return;
  }
  struct Piece {
    size_t s, e;
    bool m;
  };
  std::vector<Piece> pieces;
  size_t prev = 0;
  re.for_each_match(s, [&](size_t a, size_t b) {
    if (prev != a) pieces.push_back({prev, a, false});
    pieces.push_back({a, b, true});
    prev = b;
  });
  if (prev != s.size()) pieces.push_back({prev, s.size(), false});
  if (invert)
    for (auto& p : pieces) p.m = !p.m;

  std::vector<Piece> merged;
  switch (behavior) {
    case B::Isolated:
      break;
    case B::Removed:
      for (auto& p : pieces)
        if (!p.m) merged.push_back(p);
      break;
    case B::MergedWithPrevious: {
      bool prev_match = false;
      for (auto& p : pieces) {
        if (p.m && !prev_match && !merged.empty()) merged.back().e = p.e;
        else merged.push_back({p.s, p.e, false});
        prev_match = p.m;
      }
      break;
    }
    case B::MergedWithNext: {
      bool prev_match = false;
      for (size_t i = pieces.size(); i-- > 0;) {
        auto& p = pieces[i];
        if (p.m && !prev_match && !merged.empty()) merged.back().s = p.s;
        else merged.push_back({p.s, p.e, false});
        prev_match = p.m;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case B::Contiguous: {
      bool prev_match = false;
      for (auto& p : pieces) {
        if (p.m == prev_match && !merged.empty()) merged.back().e = p.e;
        else merged.push_back({p.s, p.e, false});
        prev_match = p.m;
      }
      break;
    }
  }
  for (auto& p : merged)
    if (p.e > p.s) emit(s.substr(p.s, p.e - p.s));
}

}  // namespace

void PreTokenizer::run(size_t i, std::string_view piece,
                       const std::function<void(std::string_view)>& emit) const {
  if (piece.empty()) return;
  if (i == steps_.size()) {
    emit(piece);
    return;
  }
  const Step& step = steps_[i];
  auto next = [&](std::string_view sub) { run(i + 1, sub, emit); };
  if (step.kind == Step::Kind::ByteLevel) {
    std::string prefixed;
    if (step.add_prefix_space && piece[0] != ' ') {
      prefixed.reserve(piece.size() + 1);
      prefixed += ' ';
      prefixed += piece;
      piece = prefixed;
    }
    if (!step.use_regex) next(piece);
    else split_by(piece, *step.regex, Behavior::Isolated, false, next);
    return;
  }
  split_by(piece, *step.regex, step.behavior, step.invert, next);
}

void PreTokenizer::split(std::string_view piece,
                         const std::function<void(std::string_view)>& emit) const {
  run(0, piece, emit);
}

}  // namespace mm::text
