// How mmrun shows a reply (runtime/tooling/chat_loop.h ReplyPrinter): reasoning apart from the
// answer (headers without colour, ANSI dim with it), tool calls as JSON lines, the history
// message, and raw completions passed through verbatim, whatever the chunking.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "runtime/tooling/chat_loop.h"

namespace mm::rt {
namespace {

using nlohmann::ordered_json;

// Feeds `text` in chunks of `n` bytes.
std::string print(const std::string& text, size_t n, bool chat, bool colour, ordered_json* message = nullptr,
                  const ordered_json& tools = nullptr) {
  std::ostringstream out;
  text::ToolCallIdGenerator ids(7);
  ReplyPrinter p(out, chat, colour, tools, ids);
  for (size_t i = 0; i < text.size(); i += n) p.feed(std::string_view(text).substr(i, n));
  p.finish();
  if (message) *message = p.assistant_message();
  return out.str();
}

TEST(ReplyPrinter, RawCompletionIsVerbatim) {
  for (size_t n : {1u, 3u, 100u}) EXPECT_EQ(print("a </think> b\n", n, false, false), "a </think> b\n");
  EXPECT_EQ(print("no newline", 4, false, true), "no newline\n");
}

TEST(ReplyPrinter, ReasoningAndAnswerUnderHeaders) {
  const std::string gen = "Let me think.\n</think>\n\nThe answer is 4.";
  for (size_t n : {1u, 2u, 5u, 1000u}) {
    ordered_json m;
    EXPECT_EQ(print(gen, n, true, false, &m), "[reasoning]\nLet me think.\n[answer]\nThe answer is 4.\n") << n;
    EXPECT_EQ(m["role"], "assistant");
    EXPECT_EQ(m["reasoning_content"], "Let me think.\n");
    EXPECT_EQ(m["content"], "\n\nThe answer is 4.");
    EXPECT_FALSE(m.contains("tool_calls"));
  }
}

TEST(ReplyPrinter, ReasoningIsDimOnAColourTerminal) {
  EXPECT_EQ(print("hmm</think>\n\nyes", 3, true, true), "\x1b[2mhmm\x1b[0m\nyes\n");
  // Generation cut inside the reasoning: the colour is reset anyway.
  EXPECT_EQ(print("still thinking", 3, true, true), "\x1b[2mstill thinking\x1b[0m\n");
}

TEST(ReplyPrinter, OnlyReasoningWhenThereIsNoEndTag) {
  ordered_json m;
  EXPECT_EQ(print("abc", 1, true, false, &m), "[reasoning]\nabc\n");
  EXPECT_EQ(m["content"], "");
  EXPECT_EQ(m["reasoning_content"], "abc");
}

TEST(ReplyPrinter, ToolCallsArePrintedAsJson) {
  const ordered_json tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}])");
  const std::string gen =
      "I should call the tool.</think>\n\nChecking.\n<minimax:tool_call>\n<invoke name=\"get_weather\">\n"
      "<parameter name=\"city\">Paris</parameter>\n<parameter name=\"days\">3</parameter>\n</invoke>\n"
      "</minimax:tool_call>";
  for (size_t n : {1u, 7u, 1000u}) {
    ordered_json m;
    const std::string out = print(gen, n, true, false, &m, tools);
    const std::string expected_call =
        "[tool_call] {\"id\":\"call_" ;
    EXPECT_EQ(out.rfind("[reasoning]\nI should call the tool.\n[answer]\nChecking.\n", 0), 0u) << out;
    const size_t at = out.find(expected_call);
    ASSERT_NE(at, std::string::npos) << out;
    const ordered_json call = ordered_json::parse(out.substr(at + 12));
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["function"]["name"], "get_weather");
    EXPECT_EQ(call["function"]["arguments"], "{\"city\": \"Paris\", \"days\": 3}");
    EXPECT_EQ(call["id"].get<std::string>().size(), 29u);
    ASSERT_TRUE(m.contains("tool_calls"));
    EXPECT_EQ(m["tool_calls"].size(), 1u);
    EXPECT_EQ(m["tool_calls"][0], call);
    EXPECT_EQ(m["content"], "\n\nChecking.\n");
  }
}

}  // namespace
}  // namespace mm::rt
