#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/bpe.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/pipeline.h"
#include "runtime/tokenizer/regex.h"
#include "runtime/tokenizer/utf8.h"
#include "support/file_util.h"
#include "support/json_util.h"

namespace mm::text {

using nlohmann::json;

namespace {

// Unicode White_Space: Rust regex's \s, which tokenizers uses for lstrip / rstrip.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

struct AddedToken {
  int32_t id = 0;
  std::string content;
  std::string pattern;  // what is searched: content, or its normalized form if normalized
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// Leftmost-longest search over a set of added tokens (tokenizers uses Aho-Corasick with
// MatchKind::LeftmostLongest; tokens are few, so a first-byte index is enough).
struct TokenSet {
  std::vector<const AddedToken*> by_first[256];  // longest pattern first
  bool first[256] = {};
  bool empty = true;

  void build(const std::vector<AddedToken>& tokens, bool normalized) {
    for (const AddedToken& t : tokens) {
      if (t.normalized != normalized || t.pattern.empty()) continue;
      unsigned char b = static_cast<unsigned char>(t.pattern[0]);
      by_first[b].push_back(&t);
      first[b] = true;
      empty = false;
    }
    for (auto& v : by_first)
      std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) {
        return a->pattern.size() > b->pattern.size();
      });
  }

  const AddedToken* longest_at(std::string_view s, size_t i) const {
    for (const AddedToken* t : by_first[static_cast<unsigned char>(s[i])])
      if (s.size() - i >= t->pattern.size() && s.compare(i, t->pattern.size(), t->pattern) == 0)
        return t;
    return nullptr;
  }
};

struct Split {
  const AddedToken* token;  // null: plain text
  size_t start, end;
};

struct DecodeEntry {
  std::string bytes;  // decoder output of this token alone (ByteLevel) or the token (no decoder)
  bool skip = false;  // dropped by decode(skip_special=true)
};

mm::Error load_error(const std::string& origin, const std::string& key, const std::string& what) {
  return mm::Error::bad_input(origin + ": " + key + ": " + what);
}

}  // namespace

struct TokenizerImpl {
  std::string origin;
  std::unique_ptr<Bpe> bpe;
  std::unique_ptr<Normalizer> normalizer;
  PreTokenizer pre;
  std::vector<AddedToken> added;
  TokenSet raw_set, norm_set;
  std::unordered_map<std::string, int32_t> added_by_content;
  std::unordered_map<int32_t, const AddedToken*> added_by_id;
  std::unordered_set<std::string> special_contents;
  bool byte_level_decoder = false;
  std::unordered_map<int32_t, DecodeEntry> decode_table;
  std::unordered_map<int32_t, std::string> id_to_vocab;
  int32_t vocab_size = 0;
  std::unique_ptr<Regex> word_char;  // Rust regex's Unicode \w, for single_word

  bool is_word_char(uint32_t cp) const {
    std::string s;
    utf8_append(s, cp);
    return word_char->matches_whole(s);
  }

  // tokenizers' AddedVocabulary::find_matches.
  void find_matches(std::string_view s, const TokenSet& set, bool parse_special,
                    std::vector<Split>& out) const {
    out.clear();
    size_t start_offset = 0, i = 0, n = s.size();
    if (!set.empty) {
      while (i < n) {
        if (!set.first[static_cast<unsigned char>(s[i])]) {
          ++i;
          continue;
        }
        const AddedToken* t = set.longest_at(s, i);
        if (!t) {
          ++i;
          continue;
        }
        size_t start = i, stop = i + t->pattern.size();
        i = stop;  // the automaton resumes after the match even when it is discarded below
        if (!parse_special && t->special) continue;
        if (t->single_word) {
          bool start_space = start == 0 || !is_word_char(utf8_last_cp(s, start, nullptr));
          bool stop_space = true;
          if (stop < n) {
            Utf8Step st = utf8_step(reinterpret_cast<const unsigned char*>(s.data()) + stop, n - stop);
            stop_space = !(st.kind == Utf8Kind::Ok && is_word_char(st.cp));
          }
          if (!start_space || !stop_space) continue;
        }
        if (t->lstrip) {
          size_t ns = start;
          while (ns > 0) {
            size_t b;
            uint32_t cp = utf8_last_cp(s, ns, &b);
            if (!is_white_space(cp)) break;
            ns = b;
          }
          start = std::max(ns, start_offset);
        }
        if (t->rstrip) {
          while (stop < n) {
            Utf8Step st = utf8_step(reinterpret_cast<const unsigned char*>(s.data()) + stop, n - stop);
            if (st.kind != Utf8Kind::Ok || !is_white_space(st.cp)) break;
            stop += st.len;
          }
        }
        if (start_offset < start) out.push_back({nullptr, start_offset, start});
        out.push_back({t, start, stop});
        start_offset = stop;
        i = std::max(i, stop);
      }
    }
    if (start_offset != n) out.push_back({nullptr, start_offset, n});
  }

  void encode_plain(std::string_view piece, std::vector<int32_t>& ids) const {
    pre.split(piece, [&](std::string_view p) { bpe->tokenize(p, ids); });
  }
};

// The file's patterns are named "<origin>: <key>" already; the built-in ones are not.
static std::string name_regex_error(const std::string& origin, const RegexMatchError& e) {
  const std::string what = e.what();
  return what.rfind(origin + ": ", 0) == 0 ? what : origin + ": " + what;
}

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

mm::Expected<Tokenizer> Tokenizer::load(const std::string& path) {
  auto text = mm::read_regular_file(path, "tokenizer", mm::kMaxTokenizerFileBytes);
  if (!text) return text.error();
  return from_json(*text, path);
}

mm::Expected<Tokenizer> Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  // Strict parse: duplicate keys and nesting deeper than mm::kMaxJsonDepth are refused.
  auto parsed = mm::parse_json_strict(json_text, origin);
  if (!parsed) return parsed.error();
  json root = std::move(*parsed);
  if (!root.is_object()) return mm::Error::bad_input(origin + ": expected a JSON object at top level");

  auto impl = std::make_unique<TokenizerImpl>();
  impl->origin = origin;
  try {
    // Pre-tokenizer first: the model needs to know whether pre-tokens are byte-level.
    const json null_json;
    const json& pre_j = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : null_json;
    auto pre = PreTokenizer::parse(pre_j, origin);
    if (!pre) return pre.error();
    impl->pre = std::move(pre.value());

    if (!root.contains("model")) return load_error(origin, "model", "missing");
    auto bpe = Bpe::parse(root["model"], origin, impl->pre.byte_level());
    if (!bpe) return bpe.error();
    impl->bpe = std::make_unique<Bpe>(std::move(bpe.value()));

    for (const auto& [tok, id] : impl->bpe->vocab()) impl->id_to_vocab.emplace(id, tok);

    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      auto n = parse_normalizer(root["normalizer"], origin, "normalizer");
      if (!n) return n.error();
      impl->normalizer = std::move(n.value());
    }

    // Decoder.
    if (root.contains("decoder") && !root["decoder"].is_null()) {
      const json& d = root["decoder"];
      auto check_byte_level = [&](const json& node, const std::string& key) -> mm::Status {
        if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
          return load_error(origin, key + ".type", "missing or not a string");
        std::string t = node["type"].get<std::string>();
        if (t != "ByteLevel")
          return load_error(origin, key + ".type",
                            "unsupported decoder \"" + t + "\" (supported: ByteLevel, Sequence of ByteLevel)");
        return mm::Status::success();
      };
      if (d.is_object() && d.contains("type") && d["type"] == "Sequence") {
        if (!d.contains("decoders") || !d["decoders"].is_array() || d["decoders"].empty())
          return load_error(origin, "decoder.decoders", "missing, empty or not an array");
        for (size_t i = 0; i < d["decoders"].size(); ++i)
          if (auto st = check_byte_level(d["decoders"][i], "decoder.decoders[" + std::to_string(i) + "]"); !st)
            return st.error();
      } else if (auto st = check_byte_level(d, "decoder"); !st) {
        return st.error();
      }
      impl->byte_level_decoder = true;
    }

    // Added tokens.
    if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
      const json& arr = root["added_tokens"];
      if (!arr.is_array()) return load_error(origin, "added_tokens", "expected an array");
      for (size_t i = 0; i < arr.size(); ++i) {
        const json& e = arr[i];
        std::string key = "added_tokens[" + std::to_string(i) + "]";
        if (!e.is_object()) return load_error(origin, key, "expected an object");
        AddedToken t;
        if (!e.contains("id") || !e["id"].is_number_integer() || e["id"].get<int64_t>() < 0 ||
            e["id"].get<int64_t>() > INT32_MAX)
          return load_error(origin, key + ".id", "missing or not a non-negative 32-bit integer");
        t.id = static_cast<int32_t>(e["id"].get<int64_t>());
        if (!e.contains("content") || !e["content"].is_string())
          return load_error(origin, key + ".content", "missing or not a string");
        t.content = e["content"].get<std::string>();
        if (!utf8_valid(t.content)) return load_error(origin, key + ".content", "not valid UTF-8");
        auto flag = [&](const char* name, bool dflt, bool& dst) -> mm::Status {
          if (!e.contains(name) || e[name].is_null()) {
            dst = dflt;
            return mm::Status::success();
          }
          if (!e[name].is_boolean()) return load_error(origin, key + "." + name, "expected true/false");
          dst = e[name].get<bool>();
          return mm::Status::success();
        };
        for (auto [name, dst] : {std::pair<const char*, bool*>{"special", &t.special},
                                 {"single_word", &t.single_word},
                                 {"lstrip", &t.lstrip},
                                 {"rstrip", &t.rstrip}})
          if (auto st = flag(name, false, *dst); !st) return st.error();
        if (auto st = flag("normalized", !t.special, t.normalized); !st) return st.error();
        auto in_vocab = impl->bpe->vocab().find(t.content);
        if (in_vocab != impl->bpe->vocab().end() && in_vocab->second != t.id)
          return load_error(origin, key + ".id",
                            "added token \"" + t.content + "\" has id " + std::to_string(t.id) +
                                " but model.vocab gives it " + std::to_string(in_vocab->second));
        if (in_vocab == impl->bpe->vocab().end()) {
          if (auto v = impl->id_to_vocab.find(t.id); v != impl->id_to_vocab.end())
            return load_error(origin, key + ".id",
                              "added token \"" + t.content + "\" reuses id " + std::to_string(t.id) +
                                  " of model.vocab token \"" + v->second + "\"");
        }
        if (t.content.empty()) continue;  // tokenizers ignores empty added tokens
        auto [it, fresh] = impl->added_by_content.emplace(t.content, t.id);
        if (!fresh) return load_error(origin, key + ".content", "duplicate added token \"" + t.content + "\"");
        t.pattern = t.content;
        if (t.normalized && impl->normalizer) impl->normalizer->apply(t.pattern);
        impl->added.push_back(std::move(t));
      }
    }
    for (const AddedToken& t : impl->added) {
      if (impl->added_by_id.count(t.id))
        return load_error(origin, "added_tokens", "two added tokens share id " + std::to_string(t.id));
      impl->added_by_id[t.id] = &t;
      if (t.special) impl->special_contents.insert(t.content);
    }
    impl->raw_set.build(impl->added, false);
    impl->norm_set.build(impl->added, true);

    auto wc = Regex::compile(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", "word class");
    if (!wc) wc = Regex::compile(R"([\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", "word class");
    if (!wc) return wc.error();
    impl->word_char = std::make_unique<Regex>(std::move(wc.value()));

    // Decode table: the string tokenizers' decode hands to the decoder for each id (added tokens:
    // content, or its normalized form for normalized tokens), then the decoder's bytes.
    const ByteLevelTable& bl = byte_level_table();
    auto decoded = [&](const std::string& tok) {
      if (!impl->byte_level_decoder) return tok;
      std::string bytes;
      auto* p = reinterpret_cast<const unsigned char*>(tok.data());
      for (size_t i = 0; i < tok.size();) {
        Utf8Step st = utf8_step(p + i, tok.size() - i);
        if (st.kind != Utf8Kind::Ok || st.cp >= bl.to_byte.size() || bl.to_byte[st.cp] < 0)
          return tok;  // a character outside the byte alphabet: the token's own UTF-8
        bytes += static_cast<char>(bl.to_byte[st.cp]);
        i += st.len;
      }
      return bytes;
    };
    int64_t max_id = -1;
    for (const auto& [tok, id] : impl->bpe->vocab()) max_id = std::max<int64_t>(max_id, id);
    for (const auto& [id, tok] : impl->id_to_vocab) {
      DecodeEntry e;
      e.bytes = decoded(tok);
      e.skip = impl->special_contents.count(tok) > 0;
      impl->decode_table[id] = std::move(e);
    }
    for (const AddedToken& t : impl->added) {
      const std::string& s = t.normalized ? t.pattern : t.content;
      DecodeEntry e;
      e.bytes = decoded(s);
      e.skip = impl->special_contents.count(s) > 0;
      impl->decode_table[t.id] = std::move(e);
      max_id = std::max<int64_t>(max_id, t.id);
    }
    impl->vocab_size = static_cast<int32_t>(std::min<int64_t>(max_id + 1, INT32_MAX));
  } catch (const json::exception& e) {
    // Typed accessors are guarded above; this only catches what slipped through.
    return mm::Error::bad_input(origin + ": malformed tokenizer.json: " + e.what());
  } catch (const RegexMatchError& e) {
    // The normalizer runs over the added tokens at load.
    return mm::Error::bad_input(name_regex_error(origin, e));
  }
  return Tokenizer(std::move(impl));
}

mm::Expected<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool parse_special) const {
  try {
    return encode_unchecked(text, parse_special);
  } catch (const RegexMatchError& e) {
    return mm::Error::bad_input(name_regex_error(impl_->origin, e) + "; the text cannot be tokenized");
  }
}

std::vector<int32_t> Tokenizer::encode_unchecked(std::string_view text, bool parse_special) const {
  const TokenizerImpl& t = *impl_;
  std::string repaired;
  if (!utf8_valid(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Split> outer, inner;
  std::string normalized;
  t.find_matches(text, t.raw_set, parse_special, outer);
  for (const Split& sp : outer) {
    if (sp.token) {
      ids.push_back(sp.token->id);
      continue;
    }
    std::string_view piece = text.substr(sp.start, sp.end - sp.start);
    if (piece.empty()) continue;
    std::string_view norm_piece = piece;
    if (t.normalizer) {
      normalized.assign(piece);
      t.normalizer->apply(normalized);
      norm_piece = normalized;
    }
    if (t.norm_set.empty) {
      t.encode_plain(norm_piece, ids);
      continue;
    }
    t.find_matches(norm_piece, t.norm_set, parse_special, inner);
    for (const Split& in : inner) {
      if (in.token) ids.push_back(in.token->id);
      else t.encode_plain(norm_piece.substr(in.start, in.end - in.start), ids);
    }
  }
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const TokenizerImpl& t = *impl_;
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    auto it = t.decode_table.find(id);
    if (it == t.decode_table.end()) continue;  // unknown ids are dropped, as tokenizers does
    if (skip_special && it->second.skip) continue;
    if (!t.byte_level_decoder && !first) out += ' ';  // no decoder: tokens joined by spaces
    out += it->second.bytes;
    first = false;
  }
  return t.byte_level_decoder ? utf8_lossy(out) : out;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  std::string key(token);
  if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->bpe->vocab().find(key); it != impl_->bpe->vocab().end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return it->second->content;
  if (auto it = impl_->id_to_vocab.find(id); it != impl_->id_to_vocab.end()) return it->second;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && it->second->special;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const TokenizerImpl& t = *tokenizer_->impl_;
  auto it = t.decode_table.find(id);
  if (it == t.decode_table.end() || (skip_special_ && it->second.skip)) return {};
  if (!t.byte_level_decoder) {
    std::string out = first_token_ ? it->second.bytes : " " + it->second.bytes;
    first_token_ = false;
    return out;
  }
  pending_ += it->second.bytes;
  // Emit every complete character; a truncated tail waits for the next token. Invalid bytes
  // become U+FFFD as soon as they are known to be invalid (same result as decode's lossy pass).
  std::string out;
  auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
  size_t n = pending_.size(), i = 0;
  while (i < n) {
    Utf8Step st = utf8_step(p + i, n - i);
    if (st.kind == Utf8Kind::Incomplete) break;
    if (st.kind == Utf8Kind::Ok) out.append(pending_, i, st.len);
    else out += "\xEF\xBF\xBD";
    i += st.len;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = pending_.empty() ? std::string() : utf8_lossy(pending_);
  pending_.clear();
  first_token_ = true;
  return out;
}

int tokenize_command(const std::string& model_dir, const std::string& text, std::ostream& out,
                     std::ostream& err) {
  std::filesystem::path p(model_dir);
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) p /= "tokenizer.json";
  auto tok = Tokenizer::load(p.string());
  if (!tok) {
    err << "error: " << tok.error().message << "\n";
    return tok.error().exit_code();
  }
  auto ids = tok->encode(text, /*parse_special=*/true);
  if (!ids) {
    err << "error: " << ids.error().message << "\n";
    return ids.error().exit_code();
  }
  out << '[';
  for (size_t i = 0; i < ids->size(); ++i) out << (i ? "," : "") << (*ids)[i];
  out << "]\n";
  return 0;
}

}  // namespace mm::text
