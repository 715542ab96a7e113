// The MiniMax-M2 chat renderer (runtime/chat/chat_template.h) on the JSON a client or --tools
// gives it: input parts messages, tools (strict JSON, as mmrun and the server parse them), and one
// options byte (generation prompt, string-argument parsing, a model identity).
#include <cstdint>
#include <string>

#include "runtime/chat/chat_template.h"
#include "support/json_util.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mm::fuzz::split_input(data, size, 3);
  auto messages = mm::parse_ordered_json_strict(parts[0], "messages");
  if (!messages) return 0;
  nlohmann::ordered_json tools;
  if (!parts[1].empty()) {
    auto t = mm::parse_ordered_json_strict(parts[1], "tools");
    if (!t) return 0;
    tools = std::move(*t);
  }
  const uint8_t opt = parts[2].empty() ? 0 : static_cast<uint8_t>(parts[2][0]);
  mm::text::ChatTemplateOptions options;
  options.add_generation_prompt = opt & 1;
  options.parse_string_arguments = !(opt & 2);
  if (opt & 4) options.model_identity = std::string(parts[2].substr(1));
  auto rendered = mm::text::render_minimax_m2_chat(*messages, tools, options);
  if (!rendered) FUZZ_CHECK(!rendered.error().message.empty());
  return 0;
}
