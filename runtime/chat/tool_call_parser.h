// MiniMax-M2 tool-call parsing (minimax-m2-spec.md section 6.1, vLLM `--tool-call-parser minimax_m2`).
//
// The model writes, after its reasoning and optional visible text:
//   <minimax:tool_call>
//   <invoke name="search_web">
//   <parameter name="query">MiniMax</parameter>
//   <parameter name="limit">5</parameter>
//   </invoke>
//   </minimax:tool_call>
// Parameter values are converted with the tool's JSON schema (`tools` = the request's OpenAI tools
// list): literal null/none/nil -> null; then by declared type, in the order integer, number (integral
// values become integers), boolean (true/1/yes/on, false/0/no/off), object/array (JSON), string;
// a value no declared type accepts is JSON-parsed if possible, else kept as a string. Arguments are
// serialized like json.dumps(ensure_ascii=False). Run this on the content part only (after the
// reasoning split).
//
// Differences from vLLM on malformed output, chosen so that a client always gets valid JSON:
// "inf"/"nan" for a number parameter fail the number conversion (vLLM raises and drops all calls),
// integers beyond 64 bits fall back to a float, the streaming parser closes a call whose
// </invoke> never came (end of stream, or </minimax:tool_call> first) with "}" instead of leaving
// the client's argument JSON open, and a parameter repeated within one invoke keeps its first value
// (vLLM's dict keeps the last; a stream cannot take back the first, and a second key would be
// invalid JSON for strict clients). String values that are not valid UTF-8 get U+FFFD (dumps()).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mm::text {

// Ids of the form "call_" + 24 lowercase hex digits (vLLM: uuid4().hex[:24]). Seedable for tests.
class ToolCallIdGenerator {
 public:
  ToolCallIdGenerator();  // seeded from std::random_device
  explicit ToolCallIdGenerator(uint64_t seed) : rng_(seed) {}
  std::string next();

 private:
  std::mt19937_64 rng_;
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON object text
};

struct ToolCallParse {
  // Text before the first <minimax:tool_call> (absent if empty) when calls were found; the whole
  // text when none were.
  std::optional<std::string> content;
  std::vector<ToolCall> tool_calls;
};

// Non-streaming parse of a complete output.
ToolCallParse parse_minimax_tool_calls(std::string_view text, const nlohmann::ordered_json& tools,
                                       ToolCallIdGenerator& ids);

// Converts one raw parameter value the way both parsers do (exposed for tests).
nlohmann::ordered_json convert_tool_parameter(std::string_view raw_value, const nlohmann::ordered_json& tools,
                                              std::string_view function_name, std::string_view param_name);

// One OpenAI `delta.tool_calls[]` entry. The first delta of a call carries id and name; argument
// fragments follow: `{"a": 1` when the first parameter completes, `, "b": 2` for each next one,
// `}` (or `{}` without parameters) on </invoke>. The fragments of a call concatenate to the same
// text the non-streaming parser returns.
struct ToolCallDelta {
  size_t index = 0;
  std::optional<std::string> id;
  std::optional<std::string> name;
  std::string arguments;
};

struct ToolStreamDelta {
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && tool_calls.empty(); }
};

// Streaming parse: feed() decoded text as it is generated, finish() at the end. Text that may be
// the start of a tag is held back until the next chunk decides. Whitespace between/after tool-call
// blocks is not sent as content. A <minimax:tool_call> block from which no call could be read is
// sent as content unchanged.
class ToolCallStreamParser {
 public:
  ToolCallStreamParser(nlohmann::ordered_json tools, ToolCallIdGenerator& ids);
  ToolStreamDelta feed(std::string_view text);
  ToolStreamDelta finish();
  // Calls closed so far, with their complete arguments.
  const std::vector<ToolCall>& tool_calls() const { return calls_; }

 private:
  enum class State { Content, Block, Header, Body, Param, SkipInvoke };
  void drain(bool at_end, ToolStreamDelta& out);
  void consume(size_t n);
  void emit_content(std::string_view text, ToolStreamDelta& out);
  void start_call(std::string name, ToolStreamDelta& out);
  void add_argument_fragment(const std::string& fragment, ToolStreamDelta& out);
  void close_call(ToolStreamDelta& out);
  void close_block(ToolStreamDelta& out);

  nlohmann::ordered_json tools_;
  ToolCallIdGenerator& ids_;
  State state_ = State::Content;
  std::string buf_;              // received, not yet consumed
  size_t scan_from_ = 0;         // where the next tag search in buf_ may start
  std::string block_raw_;        // raw text of the open block while it has produced no call
  bool block_has_call_ = false;
  bool after_call_block_ = false;  // last thing seen was a block that produced calls
  std::string held_ws_;          // whitespace after such a block, sent only if text follows
  bool call_open_ = false;
  size_t param_count_ = 0;
  std::set<std::string> param_names_;  // parameters sent for the open call
  ToolCall current_;
  std::vector<ToolCall> calls_;
};

}  // namespace mm::text
