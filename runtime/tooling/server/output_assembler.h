// A chat answer as OpenAI deltas: the generated text (as the engine sends it, in pieces cut
// anywhere) split into reasoning, content and tool calls the way vLLM's
// `--reasoning-parser minimax_m2 | minimax_m2_append_think` and `--tool-call-parser minimax_m2` do
// (minimax-m2-spec.md section 6). Streaming and non-streaming answers both come from here, so the
// concatenated deltas always equal the non-streaming message.
//
//   none:                    everything is content (tool calls parsed over all of it)
//   minimax_m2:              text up to "</think>" is reasoning_content, the rest content
//   minimax_m2_append_think: everything is content, with the "<think>" the prompt opened put back
//                            in front; tool calls are parsed after "</think>" only
// When the prompt already closed the reasoning (continue_final_message after "</think>"), all of
// the answer is content. Tool calls: a <minimax:tool_call> block becomes OpenAI tool_calls with
// arguments typed by the tool's JSON schema; a block from which no call can be read stays content.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/reasoning_parser.h"
#include "runtime/chat/tool_call_parser.h"

namespace mm::rt::server {

enum class ReasoningMode { None, Split, AppendThink };

struct OutputDelta {
  std::string reasoning;
  std::string content;
  std::vector<text::ToolCallDelta> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

class OutputAssembler {
 public:
  // parse_tools: run the tool-call parser (tools offered and tool_choice not "none"); `tools` is the
  // request's OpenAI tools list (for argument types). `id_seed`: tool-call ids ("call_" + 24 hex).
  OutputAssembler(ReasoningMode mode, bool reasoning_open, bool parse_tools, nlohmann::ordered_json tools,
                  uint64_t id_seed);
  OutputAssembler(const OutputAssembler&) = delete;
  OutputAssembler& operator=(const OutputAssembler&) = delete;

  OutputDelta feed(std::string_view text);
  // End of the answer: what the parsers held back.
  OutputDelta finish();

  // The whole answer so far.
  const std::string& reasoning() const { return reasoning_; }
  const std::string& content() const { return content_; }
  const std::vector<text::ToolCall>& tool_calls() const;

 private:
  void after_reasoning(std::string_view text, OutputDelta& out);
  void add(OutputDelta& out);

  ReasoningMode mode_;
  bool reasoning_open_;
  bool parse_tools_;
  text::ToolCallIdGenerator ids_;
  text::ReasoningStreamParser reasoning_parser_;
  text::ToolCallStreamParser tool_parser_;
  bool think_restored_ = false;   // append_think: "<think>" sent
  std::string reasoning_, content_;
};

}  // namespace mm::rt::server
