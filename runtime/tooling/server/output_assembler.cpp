#include "runtime/tooling/server/output_assembler.h"

namespace mm::rt::server {

OutputAssembler::OutputAssembler(ReasoningMode mode, bool reasoning_open, bool parse_tools,
                                 nlohmann::ordered_json tools, uint64_t id_seed)
    : mode_(mode),
      reasoning_open_(reasoning_open && mode != ReasoningMode::None),
      parse_tools_(parse_tools),
      ids_(id_seed),
      tool_parser_(std::move(tools), ids_) {}

const std::vector<text::ToolCall>& OutputAssembler::tool_calls() const { return tool_parser_.tool_calls(); }

void OutputAssembler::after_reasoning(std::string_view text, OutputDelta& out) {
  if (text.empty()) return;
  if (!parse_tools_) {
    out.content.append(text);
    return;
  }
  text::ToolStreamDelta d = tool_parser_.feed(text);
  out.content += d.content;
  for (auto& c : d.tool_calls) out.tool_calls.push_back(std::move(c));
}

void OutputAssembler::add(OutputDelta& out) {
  reasoning_ += out.reasoning;
  content_ += out.content;
}

OutputDelta OutputAssembler::feed(std::string_view text) {
  OutputDelta out;
  if (text.empty()) return out;
  if (!reasoning_open_) {
    after_reasoning(text, out);
    add(out);
    return out;
  }
  const bool was_done = reasoning_parser_.reasoning_done();
  text::ReasoningDelta d = reasoning_parser_.feed(text);
  if (mode_ == ReasoningMode::Split) {
    out.reasoning = std::move(d.reasoning);
  } else {
    // append_think: the reasoning stays in the content, between the tags the model saw.
    if (!think_restored_ && (!d.reasoning.empty() || reasoning_parser_.reasoning_done())) {
      out.content = "<think>";
      think_restored_ = true;
    }
    out.content += d.reasoning;
    if (!was_done && reasoning_parser_.reasoning_done()) {
      out.content += "</think>";
    }
  }
  after_reasoning(d.content, out);
  add(out);
  return out;
}

OutputDelta OutputAssembler::finish() {
  OutputDelta out;
  if (reasoning_open_) {
    text::ReasoningDelta d = reasoning_parser_.finish();
    if (mode_ == ReasoningMode::Split) {
      out.reasoning = std::move(d.reasoning);
    } else {
      if (!think_restored_) {
        out.content = "<think>";
        think_restored_ = true;
      }
      out.content += d.reasoning;
    }
    after_reasoning(d.content, out);
  }
  if (parse_tools_) {
    text::ToolStreamDelta d = tool_parser_.finish();
    out.content += d.content;
    for (auto& c : d.tool_calls) out.tool_calls.push_back(std::move(c));
  }
  add(out);
  return out;
}

}  // namespace mm::rt::server
