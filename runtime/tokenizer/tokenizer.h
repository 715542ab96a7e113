// mm::text::Tokenizer: Hugging Face tokenizer.json byte-level BPE, reproducing the ids of the
// `tokenizers` library (docs: minimax-m2-spec.md section 5.1).
//
// Pipeline, as in tokenizers' TokenizerImpl::encode with add_special_tokens=false:
//   1. added tokens with normalized=false are cut out of the raw text (leftmost-longest, with
//      their lstrip / rstrip / single_word flags);
//   2. every remaining piece is normalized, then added tokens with normalized=true are cut out of
//      the normalized piece (their patterns are the normalized contents);
//   3. every remaining piece goes through the pre-tokenizer (Split regexes run with PCRE2,
//      ByteLevel) and each pre-token through the BPE model (merge ranks; results cached).
// Post-processor tokens (BOS/EOS templates) are never added: the chat template writes them.
// Added-token ids are taken from "added_tokens" (an id that contradicts model.vocab is refused).
// Regexes are Oniguruma syntax in the file; PCRE2 runs them (\uHHHH is translated).
//
// Supported components (anything else is refused at load with an error naming the key):
//   model BPE (merges as "a b" or [a, b]; unk_token, fuse_unk, byte_fallback, ignore_merges);
//   normalizer null / Sequence / Replace (String or Regex) / Prepend / Strip / NFC (table
//     generated from Unicode data, see unicode_nfc.cpp);
//   pre_tokenizer null / Sequence / Split (Regex or String; all five behaviors; invert) /
//     ByteLevel (add_prefix_space, use_regex);
//   decoder null / ByteLevel / Sequence of ByteLevel.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "support/status.h"

namespace mm::text {

struct TokenizerImpl;

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json (a regular file of at most kMaxTokenizerFileBytes).
  // Errors name the file and the JSON key at fault.
  static mm::Expected<Tokenizer> load(const std::string& path);
  // Same from the JSON text itself; `origin` names it in error messages.
  static mm::Expected<Tokenizer> from_json(std::string_view json_text,
                                           const std::string& origin = "tokenizer.json");

  // Text to ids. parse_special=false treats *special* added tokens as plain text (tokenizers'
  // encode_special_tokens=true); non-special added tokens are still recognized, as there.
  // Invalid UTF-8 in `text` is replaced by U+FFFD first (HF only accepts valid strings).
  // Fails (BadInput, naming the tokenizer file and the pattern) only when one of the file's
  // regexes gives up on the text (PCRE2 match, depth or heap limit: regex.h).
  mm::Expected<std::vector<int32_t>> encode(std::string_view text, bool parse_special = true) const;

  // Ids to text, like tokenizers' decode: unknown ids are dropped, invalid UTF-8 produced by
  // the byte-level decoder becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Id of a token string (added tokens first, then the model vocab, whose byte-level entries are
  // spelled in the GPT-2 mapped alphabet, e.g. "Ġthe").
  std::optional<int32_t> token_id(std::string_view token) const;
  // The vocab / added-token string of an id (as stored, not decoded).
  std::optional<std::string> id_to_token(int32_t id) const;
  // Whether `id` is an added token marked special (skipped by decode with skip_special).
  bool is_special(int32_t id) const;
  // One past the largest id in use (model vocab or added tokens).
  int32_t vocab_size() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::vector<int32_t> encode_unchecked(std::string_view text, bool parse_special) const;
  std::unique_ptr<TokenizerImpl> impl_;
};

// Incremental decoding for streaming output: push ids one by one and print what comes back.
// Never returns a partial UTF-8 sequence: bytes of a character split across tokens are held
// until the character is complete. The concatenation of every push() and the final flush()
// equals Tokenizer::decode of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  // Emits what is still held (an incomplete sequence becomes U+FFFD) and resets.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;  // undecoded bytes: at most an incomplete UTF-8 prefix
  std::string pending_plain_;  // decoder-less tokenizers: tokens joined with spaces
  bool first_token_ = true;
};

// `mmrun tokenize MODEL_DIR --text TEXT`: loads MODEL_DIR/tokenizer.json, prints the ids of
// TEXT (special tokens parsed) as one JSON array line. Returns the exit code (0, or 1 for a bad
// tokenizer with the message on `err`).
int tokenize_command(const std::string& model_dir, const std::string& text, std::ostream& out,
                     std::ostream& err);

}  // namespace mm::text
