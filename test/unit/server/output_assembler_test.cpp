// OutputAssembler (runtime/tooling/server/output_assembler.h) on recorded model answers
// (test/inputs/serve/outputs, expected.json): every answer cut at every byte boundary, and fed one
// byte at a time, gives deltas that add up to the expected reasoning, content and tool calls, in
// each reasoning mode; a tool call's id and name come once, in its first delta.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tooling/server/output_assembler.h"

namespace mm::rt::server {
namespace {

using json = nlohmann::ordered_json;

std::string read(const std::string& rel) {
  std::ifstream f(std::string(MM_SOURCE_DIR) + "/test/inputs/serve/" + rel, std::ios::binary);
  EXPECT_TRUE(f.good()) << rel;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Call {
  std::string id, name, arguments;
};

struct Answer {
  std::string reasoning, content;
  std::vector<Call> calls;
};

// Feeds `pieces`, then finish(); adds the deltas up, checking how tool-call deltas are built.
Answer assemble(ReasoningMode mode, bool open, const json& tools, const std::vector<std::string>& pieces) {
  OutputAssembler a(mode, open, true, tools, 11);
  Answer r;
  auto add = [&](const OutputDelta& d) {
    r.reasoning += d.reasoning;
    r.content += d.content;
    for (const auto& c : d.tool_calls) {
      if (c.index == r.calls.size()) {
        EXPECT_TRUE(c.id.has_value() && c.name.has_value()) << "the first delta of a call carries its id and name";
        r.calls.push_back(Call{c.id.value_or(""), c.name.value_or(""), c.arguments});
      } else {
        EXPECT_LT(c.index, r.calls.size());
        EXPECT_FALSE(c.id.has_value() || c.name.has_value()) << "id and name are sent once";
        if (c.index < r.calls.size()) r.calls[c.index].arguments += c.arguments;
      }
    }
  };
  for (const auto& p : pieces) add(a.feed(p));
  add(a.finish());
  EXPECT_EQ(a.reasoning(), r.reasoning);
  EXPECT_EQ(a.content(), r.content);
  EXPECT_EQ(a.tool_calls().size(), r.calls.size());
  for (size_t i = 0; i < std::min(a.tool_calls().size(), r.calls.size()); ++i) {
    EXPECT_EQ(a.tool_calls()[i].id, r.calls[i].id);
    EXPECT_EQ(a.tool_calls()[i].arguments, r.calls[i].arguments);
  }
  return r;
}

// The answer each mode must give for a recorded output, from the minimax_m2 split of expected.json.
Answer expected_for(ReasoningMode mode, bool open, const std::string& text, const json& e) {
  Answer r;
  for (const auto& c : e["tool_calls"]) r.calls.push_back(Call{"", c["name"], c["arguments"]});
  const std::string split_content = e["content"].is_null() ? "" : e["content"].get<std::string>();
  if (mode == ReasoningMode::Split && open) {
    r.reasoning = e["reasoning"];
    r.content = split_content;
  } else if (mode == ReasoningMode::AppendThink && open) {
    r.content = "<think>" + e["reasoning"].get<std::string>();
    if (text.find("</think>") != std::string::npos) r.content += "</think>" + split_content;
  } else {
    // No reasoning split: tool calls are read over the whole text; the content is what precedes the
    // first block, or everything when no call could be read.
    r.content = r.calls.empty() ? text : text.substr(0, text.find("<minimax:tool_call>"));
  }
  return r;
}

void expect_same(const Answer& got, const Answer& want, const std::string& what) {
  EXPECT_EQ(got.reasoning, want.reasoning) << what;
  EXPECT_EQ(got.content, want.content) << what;
  ASSERT_EQ(got.calls.size(), want.calls.size()) << what;
  for (size_t i = 0; i < got.calls.size(); ++i) {
    EXPECT_EQ(got.calls[i].name, want.calls[i].name) << what;
    EXPECT_EQ(got.calls[i].arguments, want.calls[i].arguments) << what;
    EXPECT_EQ(got.calls[i].id.rfind("call_", 0), 0u) << what;
    EXPECT_EQ(got.calls[i].id.size(), 29u) << what;
  }
}

struct Mode {
  ReasoningMode mode;
  bool open;
  const char* name;
};

const Mode kModes[] = {{ReasoningMode::Split, true, "minimax_m2"},
                       {ReasoningMode::AppendThink, true, "minimax_m2_append_think"},
                       {ReasoningMode::None, true, "none"},
                       {ReasoningMode::Split, false, "minimax_m2, reasoning closed by the prompt"}};

TEST(OutputAssembler, RecordedOutputsAtEveryByteBoundary) {
  const json tools = json::parse(read("tools.json"));
  const json expected = json::parse(read("expected.json"));
  ASSERT_EQ(expected.size(), 5u);
  for (const auto& [file, e] : expected.items()) {
    const std::string text = read("outputs/" + file);
    ASSERT_FALSE(text.empty()) << file;
    for (const Mode& m : kModes) {
      const Answer want = expected_for(m.mode, m.open, text, e);
      const Answer whole = assemble(m.mode, m.open, tools, {text});
      expect_same(whole, want, file + " whole, " + m.name);
      for (size_t cut = 0; cut <= text.size(); ++cut) {
        const Answer two = assemble(m.mode, m.open, tools, {text.substr(0, cut), text.substr(cut)});
        expect_same(two, want, file + " cut at byte " + std::to_string(cut) + ", " + m.name);
        // Same ids as the whole feed: the generator is seeded, and calls come in order.
        for (size_t i = 0; i < std::min(two.calls.size(), whole.calls.size()); ++i)
          EXPECT_EQ(two.calls[i].id, whole.calls[i].id);
      }
      std::vector<std::string> bytes;
      for (char c : text) bytes.emplace_back(1, c);
      expect_same(assemble(m.mode, m.open, tools, bytes), want, file + " byte by byte, " + m.name);
    }
  }
}

TEST(OutputAssembler, ToolsNotParsedWhenToolChoiceIsNone) {
  const std::string text = read("outputs/tool_call.txt");
  OutputAssembler a(ReasoningMode::Split, true, false, json::parse(read("tools.json")), 1);
  a.feed(text);
  a.finish();
  EXPECT_TRUE(a.tool_calls().empty());
  EXPECT_EQ(a.content(), text.substr(text.find("</think>") + 8));
}

TEST(OutputAssembler, AppendThinkOfAnEmptyAnswerIsTheOpeningTag) {
  OutputAssembler a(ReasoningMode::AppendThink, true, false, json(nullptr), 1);
  OutputDelta d = a.finish();
  EXPECT_EQ(d.content, "<think>");
}

}  // namespace
}  // namespace mm::rt::server
