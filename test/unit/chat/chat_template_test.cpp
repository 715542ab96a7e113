// Byte-for-byte comparison of render_minimax_m2_chat with the reference template rendered by
// transformers (test/inputs/chat/make_goldens.py -> chat_goldens.json), plus the rejections that
// are ours rather than the template's.
#include "runtime/chat/chat_template.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace mm::text {
namespace {

using json = nlohmann::ordered_json;

json load_goldens() {
  std::ifstream in(std::string(MM_SOURCE_DIR) + "/test/inputs/chat/chat_goldens.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

ChatTemplateOptions options_of(const json& o) {
  ChatTemplateOptions options;
  options.add_generation_prompt = o.value("add_generation_prompt", true);
  options.parse_string_arguments = o.value("parse_string_arguments", true);
  if (o.contains("model_identity")) options.model_identity = o["model_identity"].get<std::string>();
  return options;
}

// Where two renderings first differ, with some context, so a failure is readable.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  want: ..." + want.substr(from, 100) +
         "\n  got:  ..." + got.substr(from, 100);
}

TEST(ChatTemplate, MatchesJinjaGoldens) {
  json goldens = load_goldens();
  ASSERT_TRUE(goldens.is_array()) << "cannot read test/inputs/chat/chat_goldens.json";
  ASSERT_GE(goldens.size(), 20u);
  size_t checked = 0;
  for (const json& c : goldens) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    auto rendered = render_minimax_m2_chat(c["messages"], c["tools"], options_of(c["options"]));
    if (c.contains("error")) {
      ASSERT_FALSE(rendered.ok()) << "expected the template's error";
      EXPECT_NE(rendered.error().message.find(c["error"].get<std::string>()), std::string::npos)
          << rendered.error().message;
    } else {
      ASSERT_TRUE(rendered.ok()) << rendered.error().message;
      const std::string want = c["expected"].get<std::string>();
      EXPECT_TRUE(*rendered == want) << first_difference(want, *rendered);
    }
    ++checked;
  }
  EXPECT_EQ(checked, goldens.size());
}

TEST(ChatTemplate, GenerationPromptStartsReasoning) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"hi"}])"), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "]~!b[]~b]system\nYou are a helpful assistant.[e~[\n]~b]user\nhi[e~[\n]~b]ai\n<think>\n");
}

TEST(ChatTemplate, RejectsUnknownRole) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"a"},{"role":"developer","content":"b"}])"),
                                  nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[1].role: unknown role 'developer'"), std::string::npos)
      << r.error().message;
}

TEST(ChatTemplate, RejectsMissingRole) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"content":"a"}])"), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[0].role"), std::string::npos) << r.error().message;
}

TEST(ChatTemplate, RejectsEmptyAndNonArrayConversations) {
  EXPECT_FALSE(render_minimax_m2_chat(json::array(), nullptr).ok());
  auto r = render_minimax_m2_chat(json::parse(R"({"role":"user"})"), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected an array"), std::string::npos);
  auto s = render_minimax_m2_chat(json::parse(R"(["hello"])"), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("messages[0]: expected an object"), std::string::npos);
}

TEST(ChatTemplate, RejectsArgumentsThatAreNotJson) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"a"},
      {"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{oops"}}]}])"),
                                  nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[1].tool_calls[0].function.arguments: not valid JSON"),
            std::string::npos)
      << r.error().message;
}

TEST(ChatTemplate, RejectsToolCallWithoutName) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"a"},
      {"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"arguments":{}}}]}])"),
                                  nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[1].tool_calls[0].function.name"), std::string::npos)
      << r.error().message;
}

TEST(ChatTemplate, RejectsToolWithoutFunction) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"a"}])"),
                                  json::parse(R"([{"type":"function","name":"f"}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tools[0]"), std::string::npos) << r.error().message;
}

TEST(ChatTemplate, RejectsContentThatWouldPrintAsPythonRepr) {
  auto r = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":{"text":"a"}}])"), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[0].content"), std::string::npos) << r.error().message;
  auto t = render_minimax_m2_chat(json::parse(R"([{"role":"user","content":"a"},
      {"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{}}}]},
      {"role":"tool","content":42}])"),
                                  nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("messages[2].content"), std::string::npos) << t.error().message;
}

TEST(ChatTemplate, NullContentRendersNothing) {
  // apply_chat_template drops null-valued keys, so `content: null` is not printed as "None".
  ChatTemplateOptions options;
  options.add_generation_prompt = false;
  auto r = render_minimax_m2_chat(
      json::parse(R"([{"role":"user","content":"a"},{"role":"assistant","content":null}])"), nullptr, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "]~!b[]~b]system\nYou are a helpful assistant.[e~[\n]~b]user\na[e~[\n]~b]ai\n[e~[\n");
}

}  // namespace
}  // namespace mm::text
