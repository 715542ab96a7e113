#include "runtime/chat/reasoning_parser.h"

#include <vector>

#include <gtest/gtest.h>

namespace mm::text {
namespace {

TEST(ReasoningSplit, SplitsAtFirstThinkEnd) {
  ReasoningSplit s = split_reasoning("Let me think.\n</think>\n\nThe answer is 4. </think> stays");
  EXPECT_EQ(s.reasoning, "Let me think.\n");
  ASSERT_TRUE(s.content.has_value());
  EXPECT_EQ(*s.content, "\n\nThe answer is 4. </think> stays");
}

TEST(ReasoningSplit, NoThinkEndMeansAllReasoning) {
  ReasoningSplit s = split_reasoning("still thinking <thi");
  EXPECT_EQ(s.reasoning, "still thinking <thi");
  EXPECT_FALSE(s.content.has_value());
}

TEST(ReasoningSplit, DropsLeadingThinkAndEmptyContent) {
  ReasoningSplit s = split_reasoning("<think>r</think>");
  EXPECT_EQ(s.reasoning, "r");
  EXPECT_FALSE(s.content.has_value());
  // Only a leading <think> is dropped.
  EXPECT_EQ(split_reasoning("a<think>b</think>c").reasoning, "a<think>b");
}

// Streams `text` in chunks cut at `cuts` and checks the result equals the non-streaming split.
void expect_stream_matches(const std::string& text, const std::vector<size_t>& cuts) {
  ReasoningStreamParser p;
  std::string reasoning, content;
  size_t prev = 0;
  for (size_t cut : cuts) {
    ReasoningDelta d = p.feed(std::string_view(text).substr(prev, cut - prev));
    reasoning += d.reasoning;
    content += d.content;
    prev = cut;
  }
  ReasoningDelta d = p.feed(std::string_view(text).substr(prev));
  reasoning += d.reasoning;
  content += d.content;
  d = p.finish();
  reasoning += d.reasoning;
  content += d.content;
  ReasoningSplit want = split_reasoning(text);
  EXPECT_EQ(reasoning, want.reasoning) << text;
  EXPECT_EQ(content, want.content.value_or("")) << text;
}

TEST(ReasoningStream, EveryTwoWayCutMatchesNonStreaming) {
  for (std::string text : {"<think>abc</think>\n\nanswer", "abc</think>answer", "no end tag <", "</think>",
                           "<thin", "x</thin", "<think></think></think>", "a</think>b</think>c", ""}) {
    for (size_t i = 0; i <= text.size(); ++i)
      for (size_t j = i; j <= text.size(); ++j) expect_stream_matches(text, {i, j});
  }
}

TEST(ReasoningStream, HoldsBackPartialTag) {
  ReasoningStreamParser p;
  ReasoningDelta d = p.feed("reasoning </thi");
  EXPECT_EQ(d.reasoning, "reasoning ");
  EXPECT_TRUE(d.content.empty());
  EXPECT_FALSE(p.reasoning_done());
  d = p.feed("nk>answer");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "answer");
  EXPECT_TRUE(p.reasoning_done());
}

TEST(ReasoningStream, PartialTagThatIsNotATagIsReleased) {
  ReasoningStreamParser p;
  EXPECT_EQ(p.feed("a </th").reasoning, "a ");
  EXPECT_EQ(p.feed("ought").reasoning, "</thought");
  ReasoningStreamParser q;
  EXPECT_EQ(q.feed("x</").reasoning, "x");
  ReasoningDelta d = q.finish();
  EXPECT_EQ(d.reasoning, "</");
}

TEST(AppendThink, PrefixesOnce) {
  EXPECT_EQ(append_think("r</think>a"), "<think>r</think>a");
  AppendThinkStream s;
  EXPECT_EQ(s.feed("r"), "<think>r");
  EXPECT_EQ(s.feed("</think>a"), "</think>a");
}

TEST(IsReasoningEnd, MostRecentTagDecides) {
  const int32_t kStart = 200050, kEnd = 200051;
  std::vector<int32_t> none = {1, 2, 3};
  std::vector<int32_t> ended = {kStart, 5, kEnd, 7};
  std::vector<int32_t> reopened = {kEnd, 5, kStart, 7};
  EXPECT_FALSE(is_reasoning_end(none, kStart, kEnd));
  EXPECT_TRUE(is_reasoning_end(ended, kStart, kEnd));
  EXPECT_FALSE(is_reasoning_end(reopened, kStart, kEnd));
  EXPECT_FALSE(is_reasoning_end({}, kStart, kEnd));
}

TEST(PartialTagSuffix, LongestProperPrefix) {
  EXPECT_EQ(partial_tag_suffix("abc<mini", "<minimax:tool_call>"), 5u);
  EXPECT_EQ(partial_tag_suffix("abc", "<minimax:tool_call>"), 0u);
  EXPECT_EQ(partial_tag_suffix("<think>", "<think>"), 0u);  // a whole tag is not held, it is found
  EXPECT_EQ(partial_tag_suffix("", "<think>"), 0u);
}

}  // namespace
}  // namespace mm::text
