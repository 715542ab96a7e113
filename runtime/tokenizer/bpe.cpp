#include "runtime/tokenizer/bpe.h"

#include <cstdio>
#include <queue>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/utf8.h"

namespace mm::text {

using nlohmann::json;

namespace {
constexpr size_t kCacheMax = 1 << 16;   // entries
constexpr size_t kCacheKeyMax = 256;    // longer pre-tokens are rare; not worth caching
constexpr size_t kSmallWord = 48;       // symbols: merged with the array path

mm::Error model_error(const std::string& origin, const std::string& key, const std::string& what) {
  return mm::Error::bad_input(origin + ": model." + key + ": " + what);
}
}  // namespace

Bpe::Bpe(Bpe&& o) noexcept
    : vocab_(std::move(o.vocab_)),
      merges_(std::move(o.merges_)),
      byte_level_(o.byte_level_),
      ignore_merges_(o.ignore_merges_),
      byte_fallback_(o.byte_fallback_),
      fuse_unk_(o.fuse_unk_),
      unk_id_(o.unk_id_),
      cache_(std::move(o.cache_)) {
  std::copy(std::begin(o.byte_ids_), std::end(o.byte_ids_), byte_ids_);
  std::copy(std::begin(o.fallback_ids_), std::end(o.fallback_ids_), fallback_ids_);
}

mm::Expected<Bpe> Bpe::parse(const json& model, const std::string& origin, bool byte_level) {
  if (!model.is_object()) return model_error(origin, "", "expected an object");
  if (model.contains("type")) {
    const json& t = model["type"];
    if (!t.is_string()) return model_error(origin, "type", "expected a string");
    if (t.get<std::string>() != "BPE")
      return model_error(origin, "type",
                         "unsupported model type \"" + t.get<std::string>() + "\" (only BPE)");
  }
  auto opt_bool = [&](const char* key, bool& dst) -> mm::Status {
    if (!model.contains(key) || model[key].is_null()) return mm::Status::success();
    if (!model[key].is_boolean()) return model_error(origin, key, "expected true/false");
    dst = model[key].get<bool>();
    return mm::Status::success();
  };
  Bpe bpe;
  bpe.byte_level_ = byte_level;
  for (auto& [key, dst] : {std::pair<const char*, bool*>{"ignore_merges", &bpe.ignore_merges_},
                           {"byte_fallback", &bpe.byte_fallback_},
                           {"fuse_unk", &bpe.fuse_unk_}}) {
    if (auto st = opt_bool(key, *dst); !st) return st.error();
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    if (!model["dropout"].is_number()) return model_error(origin, "dropout", "expected a number");
    double d = model["dropout"].get<double>();
    // Dropout randomizes merges (a training-time regularizer); inference must be deterministic.
    if (d != 0.0 && d != 1.0)
      return model_error(origin, "dropout", "BPE dropout " + std::to_string(d) + " is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null()) {
      if (!model[key].is_string()) return model_error(origin, key, "expected a string or null");
      if (!model[key].get<std::string>().empty())
        return model_error(origin, key, "non-empty subword affixes are not supported");
    }
  }

  if (!model.contains("vocab")) return model_error(origin, "vocab", "missing");
  const json& vocab = model["vocab"];
  if (!vocab.is_object()) return model_error(origin, "vocab", "expected an object token -> id");
  bpe.vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const json& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return model_error(origin, "vocab[\"" + it.key() + "\"]",
                         "expected a non-negative 32-bit integer id");
    if (!utf8_valid(it.key()))
      return model_error(origin, "vocab", "token is not valid UTF-8");
    bpe.vocab_[it.key()] = static_cast<int32_t>(v.get<int64_t>());
  }

  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    if (!model["unk_token"].is_string()) return model_error(origin, "unk_token", "expected a string");
    auto it = bpe.vocab_.find(model["unk_token"].get<std::string>());
    if (it == bpe.vocab_.end())
      return model_error(origin, "unk_token",
                         "\"" + model["unk_token"].get<std::string>() + "\" is not in model.vocab");
    bpe.unk_id_ = it->second;
  }

  if (!model.contains("merges")) return model_error(origin, "merges", "missing");
  const json& merges = model["merges"];
  if (!merges.is_array()) return model_error(origin, "merges", "expected an array");
  bpe.merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    std::string key = "merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return model_error(origin, key, "expected \"left right\" (one space), got \"" + s + "\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return model_error(origin, key, "expected a \"left right\" string or a [left, right] pair");
    }
    auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b), im = bpe.vocab_.find(a + b);
    if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end())
      return model_error(origin, key, "token \"" + (ia == bpe.vocab_.end() ? a : b) +
                                          "\" is not in model.vocab");
    if (im == bpe.vocab_.end())
      return model_error(origin, key, "merged token \"" + a + b + "\" is not in model.vocab");
    // The first occurrence of a pair defines its rank (later duplicates are ignored, as HF).
    bpe.merges_.try_emplace(pair_key(ia->second, ib->second),
                            MergeTarget{static_cast<int32_t>(i), im->second});
  }

  const ByteLevelTable& bl = byte_level_table();
  for (int b = 0; b < 256; ++b) {
    auto it = bpe.vocab_.find(bl.to_text[b]);
    bpe.byte_ids_[b] = it == bpe.vocab_.end() ? -1 : it->second;
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto fb = bpe.vocab_.find(name);
    bpe.fallback_ids_[b] = fb == bpe.vocab_.end() ? -1 : fb->second;
  }
  return bpe;
}

void Bpe::initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const {
  syms.clear();
  if (byte_level_) {
    // Every character of the byte-level spelling stands for one byte of the piece.
    bool last_unk = false;
    for (unsigned char c : piece) {
      int32_t id = byte_ids_[c];
      if (id >= 0) {
        syms.push_back(id);
        last_unk = false;
      } else if (unk_id_ >= 0 && !(fuse_unk_ && last_unk)) {
        syms.push_back(unk_id_);
        last_unk = true;
      }
    }
    return;
  }
  auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  size_t n = piece.size(), i = 0;
  bool last_unk = false;
  std::string ch;
  while (i < n) {
    Utf8Step st = utf8_step(p + i, n - i);
    size_t len = st.kind == Utf8Kind::Ok ? st.len : 1;
    ch.assign(piece.data() + i, len);
    auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      syms.push_back(it->second);
      last_unk = false;
    } else {
      bool fell_back = false;
      if (byte_fallback_) {
        fell_back = true;
        for (size_t k = 0; k < len; ++k)
          if (fallback_ids_[static_cast<unsigned char>(ch[k])] < 0) fell_back = false;
        if (fell_back) {
          for (size_t k = 0; k < len; ++k)
            syms.push_back(fallback_ids_[static_cast<unsigned char>(ch[k])]);
          last_unk = false;
        }
      }
      // Without an unk token, HF silently drops characters missing from the vocab.
      if (!fell_back && unk_id_ >= 0 && !(fuse_unk_ && last_unk)) {
        syms.push_back(unk_id_);
        last_unk = true;
      }
    }
    i += len;
  }
}

void Bpe::merge(std::vector<int32_t>& syms) const {
  size_t n = syms.size();
  if (n < 2) return;
  if (n <= kSmallWord) {
    // Short words (nearly all of them): arrays of symbols and of the ranks of adjacent pairs,
    // rescanned for the minimum. Same order as the heap below: lowest rank, then leftmost.
    constexpr int32_t kNone = INT32_MAX;
    int32_t sym[kSmallWord], rank[kSmallWord], target[kSmallWord];
    size_t m = n;
    auto look = [&](size_t i) {
      auto it = merges_.find(pair_key(sym[i], sym[i + 1]));
      if (it == merges_.end()) {
        rank[i] = kNone;
      } else {
        rank[i] = it->second.rank;
        target[i] = it->second.id;
      }
    };
    for (size_t i = 0; i < m; ++i) sym[i] = syms[i];
    for (size_t i = 0; i + 1 < m; ++i) look(i);
    while (m > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < m; ++i)
        if (rank[i] < rank[best]) best = i;
      if (rank[best] == kNone) break;
      sym[best] = target[best];
      for (size_t i = best + 1; i + 1 < m; ++i) {
        sym[i] = sym[i + 1];
        rank[i] = rank[i + 1];
        target[i] = target[i + 1];
      }
      --m;
      if (best > 0) look(best - 1);
      if (best + 1 < m) look(best);
    }
    syms.assign(sym, sym + m);
    return;
  }
  // Doubly linked list over the symbols; a min-heap of (rank, left position) candidates that are
  // re-validated when popped (a merged neighbour invalidates them).
  std::vector<int32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t l) {
    if (l < 0 || next[l] < 0) return;
    int32_t r = next[l];
    auto it = merges_.find(pair_key(syms[l], syms[r]));
    if (it != merges_.end()) heap.push({it->second.rank, l, syms[l], syms[r]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int32_t l = c.pos;
    if (!alive[l] || next[l] < 0) continue;
    int32_t r = next[l];
    if (syms[l] != c.left_id || syms[r] != c.right_id) continue;  // stale
    syms[l] = merges_.find(pair_key(c.left_id, c.right_id))->second.id;
    alive[r] = false;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    push(prev[l]);
    push(l);
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void Bpe::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  bool cacheable = piece.size() <= kCacheKeyMax;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> syms;
  bool done = false;
  if (ignore_merges_) {
    // A pre-token that is a vocab entry as a whole is emitted as is (Llama-3 style).
    std::string spelled;
    if (byte_level_) {
      const ByteLevelTable& bl = byte_level_table();
      for (unsigned char c : piece) spelled += bl.to_text[c];
    } else {
      spelled.assign(piece);
    }
    auto it = vocab_.find(spelled);
    if (it != vocab_.end()) {
      syms.push_back(it->second);
      done = true;
    }
  }
  if (!done) {
    initial_symbols(piece, syms);
    merge(syms);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_.emplace(std::string(piece), std::move(syms));
  }
}

}  // namespace mm::text
