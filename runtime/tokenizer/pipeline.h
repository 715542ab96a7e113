// Normalizer and pre-tokenizer stages of tokenizer.json, parsed from JSON and applied to text.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "support/status.h"
#include "runtime/tokenizer/regex.h"

namespace mm::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(std::string& text) const = 0;
};

// `key` is the JSON path of `j` for error messages ("normalizer", "normalizer.normalizers[1]").
mm::Expected<std::unique_ptr<Normalizer>> parse_normalizer(const nlohmann::json& j,
                                                           const std::string& origin,
                                                           const std::string& key);

class PreTokenizer {
 public:
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    enum class Kind { Split, ByteLevel } kind;
    // Split
    std::shared_ptr<Regex> regex;
    Behavior behavior = Behavior::Isolated;
    bool invert = false;
    // ByteLevel
    bool add_prefix_space = false;
    bool use_regex = true;
  };

  // Parses "pre_tokenizer" (null allowed: the whole piece is one pre-token).
  static mm::Expected<PreTokenizer> parse(const nlohmann::json& j, const std::string& origin);

  // Splits one piece (already normalized) into pre-tokens (raw bytes; the model spells them in
  // the byte alphabet when byte_level()) and calls emit(pre_token) for each, in order. The views
  // are only valid during the call.
  void split(std::string_view piece, const std::function<void(std::string_view)>& emit) const;
  bool byte_level() const { return byte_level_; }

 private:
  void run(size_t step, std::string_view piece,
           const std::function<void(std::string_view)>& emit) const;
  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace mm::text
