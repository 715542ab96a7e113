// MiniMax-M2 tool-call parsing (runtime/chat/tool_call_parser.h) of model output: input parts are
// the tools JSON and the text, whose first byte picks how the streaming parser's input is cut.
// Promises checked on any text: streamed calls have dense indices, id and name first; every call's
// arguments are a JSON object. On well-formed output (every block, invoke and parameter closed,
// names non-empty: the grammar below) the streamed argument fragments also concatenate to the
// non-streaming arguments and the content agrees; on truncated or malformed output the two parsers
// differ by design (tool_call_parser.h: the stream must close a call it has already announced).
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/chat/tool_call_parser.h"
#include "support/json_util.h"
#include "test/fuzz/fuzz_util.h"

using mm::text::ToolCallDelta;
using mm::text::ToolStreamDelta;

namespace {

// text := free (block ws*)* free;  block := "<minimax:tool_call>" ws* (invoke ws*)* "</minimax:tool_call>";
// invoke := "<invoke name=\"" name "\">" ws* (param ws*)* "</invoke>";
// param := "<parameter name=\"" name "\">" value "</parameter>"; free and value hold no '<',
// names no '"', '<' or '>'.
class WellFormed {
 public:
  explicit WellFormed(std::string_view t) : t_(t) {}
  bool check() {
    free_text();
    while (eat("<minimax:tool_call>")) {
      ws();
      while (at("<invoke")) {
        if (!invoke()) return false;
        ws();
      }
      if (!eat("</minimax:tool_call>")) return false;
      free_text();
    }
    return i_ == t_.size();
  }

 private:
  bool at(std::string_view s) const { return t_.substr(i_, s.size()) == s; }
  bool eat(std::string_view s) {
    if (!at(s)) return false;
    i_ += s.size();
    return true;
  }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r')) ++i_;
  }
  void free_text() {
    while (i_ < t_.size() && t_[i_] != '<') ++i_;
  }
  bool name() {
    const size_t start = i_;
    while (i_ < t_.size() && t_[i_] != '"' && t_[i_] != '<' && t_[i_] != '>') ++i_;
    return i_ > start && eat("\">");
  }
  bool invoke() {
    if (!eat("<invoke name=\"") || !name()) return false;
    ws();
    while (eat("<parameter name=\"")) {
      if (!name()) return false;
      while (i_ < t_.size() && t_[i_] != '<') ++i_;
      if (!eat("</parameter>")) return false;
      ws();
    }
    return eat("</invoke>");
  }
  std::string_view t_;
  size_t i_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mm::fuzz::split_input(data, size, 2);
  nlohmann::ordered_json tools;
  if (!parts[0].empty()) {
    auto t = mm::parse_ordered_json_strict(parts[0], "tools");
    if (t) tools = std::move(*t);
  }
  if (parts[1].empty()) return 0;
  const uint8_t cut_seed = static_cast<uint8_t>(parts[1][0]);
  const std::string_view text = parts[1].substr(1);

  mm::text::ToolCallIdGenerator ids_a(1), ids_b(1);
  const mm::text::ToolCallParse want = mm::text::parse_minimax_tool_calls(text, tools, ids_a);
  for (const auto& call : want.tool_calls) {
    // Arguments nest as deep as the model wrote them: past the strict parser's depth limit only
    // that limit may refuse them.
    auto args = mm::parse_ordered_json_strict(call.arguments, "arguments");
    if (args) FUZZ_CHECK(args->is_object());
    else FUZZ_CHECK(args.error().message.find("nesting deeper") != std::string::npos);
  }

  mm::text::ToolCallStreamParser stream(tools, ids_b);
  std::string content;
  std::vector<std::string> names, arguments;
  auto collect = [&](const ToolStreamDelta& d) {
    content += d.content;
    for (const ToolCallDelta& c : d.tool_calls) {
      if (c.index >= arguments.size()) {
        FUZZ_CHECK(c.index == arguments.size());
        FUZZ_CHECK(c.id.has_value() && c.name.has_value());
        names.push_back(*c.name);
        arguments.emplace_back();
      } else {
        FUZZ_CHECK(!c.name.has_value());
      }
      arguments[c.index] += c.arguments;
    }
  };
  size_t prev = 0;
  for (size_t cut : mm::fuzz::cuts_for(text.size(), cut_seed)) {
    collect(stream.feed(text.substr(prev, cut - prev)));
    prev = cut;
  }
  collect(stream.feed(text.substr(prev)));
  collect(stream.finish());
  for (const std::string& args : arguments) {
    auto parsed = mm::parse_ordered_json_strict(args, "streamed arguments");
    if (parsed) FUZZ_CHECK(parsed->is_object());
    else FUZZ_CHECK(parsed.error().message.find("nesting deeper") != std::string::npos);
  }
  if (!WellFormed(text).check()) return 0;
  FUZZ_CHECK(arguments.size() == want.tool_calls.size());
  for (size_t i = 0; i < arguments.size(); ++i) {
    FUZZ_CHECK(names[i] == want.tool_calls[i].name);
    FUZZ_CHECK(arguments[i] == want.tool_calls[i].arguments);
  }
  // Without calls both give the whole text; with calls the non-streaming content is the text before
  // the first block (vLLM's), the streamed one goes on with any text after the blocks.
  const std::string before = want.content.value_or("");
  if (want.tool_calls.empty()) FUZZ_CHECK(content == before);
  else FUZZ_CHECK(content.compare(0, before.size(), before) == 0);
  return 0;
}
