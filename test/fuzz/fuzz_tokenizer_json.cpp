// tokenizer.json (runtime/tokenizer): load any file, and a tokenizer that loads must encode and
// decode a fixed text and the input's own first bytes (its regexes may give up: then encode says so).
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tok = mm::text::Tokenizer::from_json(text, "fuzz.json");
  if (!tok) {
    FUZZ_CHECK(!tok.error().message.empty());
    return 0;
  }
  for (std::string_view sample : {std::string_view("Hello wörld 123 ]~!b[ \xF0\x9F\x98\x80\n\n  x</think>"),
                                  text.substr(0, 64)}) {
    for (bool special : {true, false}) {
      auto ids = tok->encode(sample, special);
      if (!ids) continue;
      for (int32_t id : *ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
      const std::string decoded = tok->decode(*ids);
      mm::text::StreamDecoder stream(*tok);
      std::string streamed;
      for (int32_t id : *ids) streamed += stream.push(id);
      streamed += stream.flush();
      FUZZ_CHECK(streamed == decoded);
    }
  }
  return 0;
}
