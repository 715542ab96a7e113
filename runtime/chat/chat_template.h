// The MiniMax-M2 chat template (docs: minimax-m2-spec.md section 5.2) rendered in C++.
//
// Ground truth is models/minimax_m2/chat_template.jinja as transformers' apply_chat_template renders
// it (jinja2 ImmutableSandboxedEnvironment with trim_blocks/lstrip_blocks, json.dumps-based tojson,
// raise_exception). The goldens in test/inputs/chat/ come from that pipeline
// (test/inputs/chat/make_goldens.py) and chat_template_test.cpp compares byte for byte.
//
// Input is an OpenAI chat-completions request as JSON, so a server can pass it straight through:
//   messages: [{role: system|user|assistant|tool, content: string | [{type:"text", text}, ...] | null,
//               reasoning_content?, tool_calls?: [{id, type:"function", function:{name, arguments}}],
//               tool_call_id?}, ...]
//   tools:    null or [{type:"function", function:{name, description, parameters}}, ...]
// Use nlohmann::ordered_json: tool schemas and arguments are printed in the order given.
//
// What the renderer does before templating, because apply_chat_template does it too:
//   - drops message keys whose value is null (so `content: null` renders as nothing, not "None");
//   - takes reasoning from `reasoning_content`, else `thinking`, else `reasoning`.
// Behaviour of the reference template under Jinja2 that we keep, although it looks unintended:
//   - `<think>...</think>` inside an assistant's *content* is NOT split out: the template assigns the
//     split parts inside a for loop, and Jinja2 scopes such assignments to the loop, so the content
//     is printed verbatim. Only `reasoning_content` (or its aliases) is re-rendered as a think block,
//     and only for assistant turns after the last user message.
//   - a system message that is not the first message is dropped.
//   - `</minimax:tool_call>` is followed by "\n" before "[e~[" (a newline left by a Jinja comment).
// Deliberate differences (documented in the option or the error):
//   - parse_string_arguments (default on): tool-call arguments given as a JSON string, as OpenAI
//     clients send them, are parsed into an object first, as vLLM does before templating. The
//     template only prints <parameter> lines for an object; with the option off a string renders
//     no parameters, exactly as apply_chat_template would.
//   - a message whose role is missing or not system/user/assistant/tool is an error (the template
//     would silently drop it).
//   - values the template would print as a Python repr (an object as content, etc.) are errors.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "support/status.h"

namespace mm::text {

struct ChatTemplateOptions {
  // Append "]~b]ai\n<think>\n" so the model starts its answer inside the reasoning block.
  bool add_generation_prompt = true;
  // The template variable `model_identity`: the system text used when no system message is given.
  // Unset means the template's own default, "You are a helpful assistant.".
  std::optional<std::string> model_identity;
  // See the header comment.
  bool parse_string_arguments = true;
};

// The template's default system text.
inline constexpr const char* kMiniMaxDefaultSystemPrompt = "You are a helpful assistant.";

// Renders the prompt. Errors (BadInput) name the message index and field at fault; the template's
// own raise_exception message is kept verbatim in the error text.
mm::Expected<std::string> render_minimax_m2_chat(const nlohmann::ordered_json& messages,
                                                 const nlohmann::ordered_json& tools,
                                                 const ChatTemplateOptions& options = {});

}  // namespace mm::text
