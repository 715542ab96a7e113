// The BPE model of tokenizer.json: vocab, merge ranks, and a per-pre-token result cache.
// Merging follows tokenizers' Word::merge_all: repeatedly apply the lowest-ranked adjacent pair,
// leftmost first, through a priority queue (O(n log n) even for very long pre-tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "support/status.h"

namespace mm::text {

class Bpe {
 public:
  // Parses tokenizer.json's "model" object. `byte_level`: pre-tokens arrive as raw bytes to be
  // spelled in the GPT-2 byte alphabet (a ByteLevel pre-tokenizer is present).
  static mm::Expected<Bpe> parse(const nlohmann::json& model, const std::string& origin,
                                 bool byte_level);

  // Appends the ids of one pre-token.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

  Bpe(Bpe&& o) noexcept;
  Bpe& operator=(Bpe&&) = delete;
  Bpe() = default;

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const;
  void merge(std::vector<int32_t>& syms) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  bool byte_level_ = false;
  int32_t byte_ids_[256];  // byte-level: id of each byte's one-character token, -1 if absent
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;
  int32_t fallback_ids_[256];  // byte_fallback: id of "<0xXX>", -1 if absent

  // Cache of pre-token -> ids (bounded: cleared when full). Looked up by string_view.
  struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, ViewHash, std::equal_to<>> cache_;
};

}  // namespace mm::text
