// The text front end of mmrun (design.md section 6): `mmrun generate PLAN --prompt TEXT [--chat]`
// and the interactive `mmrun chat PLAN`.
//
// Text comes from the model directory: tokenizer.json (the plan's tokenizer_file) and the
// MiniMax-M2 chat template, rendered by mm_chat (the directory's chat template file, recorded in
// the plan, must be a MiniMax-M2 template; the C++ renderer reproduces it byte for byte). A raw
// completion encodes the prompt as is (no BOS: spec 5.1); --chat renders a one-turn conversation
// whose generation prompt ends in "<think>\n", so the answer starts with reasoning.
//
// Output is streamed as it is generated. In chat mode, reasoning (the text before "</think>") is
// shown dim on a colour terminal, or under a "[reasoning]" header otherwise, the answer normally
// (or under "[answer]"), and every tool call parsed from the answer is printed as one line
// "[tool_call] {OpenAI tool_call JSON}".
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/chat/reasoning_parser.h"
#include "runtime/chat/tool_call_parser.h"
#include "runtime/tooling/generate.h"

namespace mm::rt {

// Prints generated text as it arrives: verbatim (raw completion), or split into reasoning, answer
// and tool calls (chat). colour: ANSI dim for reasoning instead of section headers.
class ReplyPrinter {
 public:
  ReplyPrinter(std::ostream& out, bool chat, bool colour, const nlohmann::ordered_json& tools,
               text::ToolCallIdGenerator& ids);
  void feed(std::string_view text);
  // End of the reply: releases text the parsers held back, resets the colour, ends the line.
  void finish();
  // The reply as a chat history message: {role: assistant, content, reasoning_content
  // [, tool_calls]}, so that the template re-renders it as it was generated.
  nlohmann::ordered_json assistant_message() const;
  const std::string& reasoning() const { return reasoning_text_; }
  const std::string& answer() const { return answer_text_; }

 private:
  enum class Section { None, Reasoning, Answer };
  void enter(Section s);
  void put(std::string_view text);
  void show(const text::ReasoningDelta& d);
  void show_answer(const text::ToolStreamDelta& d);

  std::ostream& out_;
  bool chat_, colour_;
  text::ReasoningStreamParser reasoning_;
  text::ToolCallStreamParser tools_;
  Section section_ = Section::None;
  std::string reasoning_text_, answer_text_;
  size_t calls_shown_ = 0;
  bool at_line_start_ = true;
  bool answer_shown_ = false;  // leading newlines of the answer are not printed
  bool finished_ = false;
};

// `mmrun generate ... --prompt TEXT [--chat]`. Returns the exit code (0, 1 bad input, 2 usage,
// 3 internal). Text goes to `out` as it is generated (then, with print_ids, the ids as a JSON
// array line); messages and timings to `err`.
int text_generate_command(const GenerateOptions& options, std::ostream& out, std::ostream& err);

// `mmrun chat PLAN`: reads messages from `in_fd` (one line, or several joined while a line ends
// with a backslash), answers each with the whole conversation as context, until /exit, end of
// input, or two Ctrl-C at the prompt. /reset clears the conversation. Ctrl-C while an answer is
// generated stops that answer (what was generated is kept in the history) and the session goes on.
int chat_command(const GenerateOptions& options, int in_fd, std::ostream& out, std::ostream& err);

}  // namespace mm::rt
