// Text through the MiniMax-M2 tokenizer (test/inputs/tokenizer/minimax-full, byte-level BPE with no
// normalizer): any bytes encode; valid UTF-8 comes back unchanged from decode(encode(text)), and
// streamed decoding equals decode. Input byte 0 chooses whether special tokens are parsed.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"
#include "test/fuzz/fuzz_util.h"

namespace {
const mm::text::Tokenizer* g_tok = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_tok = mm::fuzz::load_fixture_tokenizer(MM_SOURCE_DIR "/test/inputs/tokenizer/minimax-full/tokenizer.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool special = data[0] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto ids = g_tok->encode(text, special);
  FUZZ_CHECK(ids.ok());  // the fixture's regexes never give up on inputs of fuzzing size
  for (int32_t id : *ids) FUZZ_CHECK(id >= 0 && id < g_tok->vocab_size());
  const std::string decoded = g_tok->decode(*ids);
  if (mm::text::utf8_valid(text)) FUZZ_CHECK(decoded == text);
  mm::text::StreamDecoder stream(*g_tok);
  std::string streamed;
  for (int32_t id : *ids) streamed += stream.push(id);
  streamed += stream.flush();
  FUZZ_CHECK(streamed == decoded);
  return 0;
}
