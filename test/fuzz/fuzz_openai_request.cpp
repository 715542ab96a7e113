// The server's request parser (runtime/tooling/server/openai_request.h): any body sent to
// /v1/chat/completions or /v1/completions either becomes a request or is refused with an OpenAI
// error of a 4xx status and a message (never a crash, a hang or a 5xx). An accepted request keeps
// to what the scheduler relies on: prompt ids inside the vocabulary, at least one answer token, and
// prompt + answer within max_model_len. Input byte 0 picks the endpoint (bit 0), the reasoning mode
// (bit 1) and whether the tool-call parser is on (bit 2), as `mmrun serve` flags would; the rest is
// the body.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tooling/server/openai_request.h"
#include "test/fuzz/fuzz_util.h"

namespace {
const mm::text::Tokenizer* g_tok = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_tok = mm::fuzz::load_fixture_tokenizer(MM_SOURCE_DIR "/test/inputs/tokenizer/minimax-tiny/tokenizer.json");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mm::rt::server;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  ServerConfig c;
  c.model_names = {"tiny", "alias"};
  c.max_model_len = 256;
  c.vocab_size = g_tok->vocab_size();
  c.reasoning = (flags & 2) ? ReasoningMode::Split : ReasoningMode::None;
  c.tool_parser = c.auto_tool_choice = (flags & 4) != 0;
  if (auto id = g_tok->token_id("<think>")) c.think_start_id = *id;
  if (auto id = g_tok->token_id("</think>")) c.think_end_id = *id;
  PreparedRequest p;
  const std::optional<ApiError> e = (flags & 1) ? prepare_completion(body, c, *g_tok, &p)
                                                : prepare_chat(body, c, *g_tok, &p);
  if (e) {
    FUZZ_CHECK(e->status >= 400 && e->status < 500);
    FUZZ_CHECK(!e->message.empty());
    FUZZ_CHECK(nlohmann::json::accept(error_body(*e)));  // what the client receives is JSON
    return 0;
  }
  const auto& g = p.generation;
  for (int32_t id : g.prompt) FUZZ_CHECK(id >= 0 && id < c.vocab_size);
  FUZZ_CHECK(g.max_tokens >= 1);
  FUZZ_CHECK(static_cast<int64_t>(g.prompt.size()) + g.max_tokens <= c.max_model_len);
  for (int32_t id : g.stop_token_ids) FUZZ_CHECK(id >= 0 && id < c.vocab_size);
  return 0;
}
