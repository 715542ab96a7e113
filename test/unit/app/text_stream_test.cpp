// Stop strings across token boundaries, end-of-sequence handling and UTF-8-safe streaming of
// generated ids (runtime/tooling/text_stream.h), with the tiny MiniMax tokenizer fixture.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/tooling/text_stream.h"

namespace mm::rt {
namespace {

std::string feed_all(StopMatcher& m, const std::vector<std::string>& pieces, std::vector<std::string>* shown = nullptr) {
  std::string out;
  for (const auto& p : pieces) {
    std::string s = m.push(p);
    if (shown) shown->push_back(s);
    out += s;
  }
  return out;
}

TEST(StopMatcher, MatchAcrossPiecesIsNotPrinted) {
  StopMatcher m({"STOP"});
  std::vector<std::string> shown;
  const std::string out = feed_all(m, {"hello S", "T", "OP and more"}, &shown);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "STOP");
  EXPECT_EQ(out, "hello ");
  // The partial "S" was held back, never shown before the match was known.
  ASSERT_EQ(shown.size(), 3u);
  EXPECT_EQ(shown[0], "hello ");
  EXPECT_EQ(shown[1], "");
  EXPECT_EQ(shown[2], "");
  EXPECT_EQ(m.push("later"), "");
}

TEST(StopMatcher, PartialMatchThatFailsIsReleased) {
  StopMatcher m({"STOP"});
  std::vector<std::string> shown;
  const std::string out = feed_all(m, {"a ST", "ORE b"}, &shown);
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(shown[0], "a ");  // "ST" held back
  EXPECT_EQ(shown[1], "STORE b");
  EXPECT_EQ(out + m.flush(), "a STORE b");
}

TEST(StopMatcher, HeldTextIsReleasedAtTheEnd) {
  StopMatcher m({"</end>"});
  EXPECT_EQ(m.push("x </e"), "x ");
  EXPECT_EQ(m.flush(), "</e");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(m.push("hello world"), "hel");
  EXPECT_EQ(m.matched(), "lo w");
}

TEST(StopMatcher, OverlappingPrefixesHoldTheLongestCandidate) {
  // "aab": after "xaa" both "a" and "aa" could start the stop string; everything from the first
  // possible start is held.
  StopMatcher m({"aab"});
  EXPECT_EQ(m.push("xaa"), "x");
  EXPECT_EQ(m.push("ab"), "a");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, SingleCharacterPiecesAndMultiByteStop) {
  StopMatcher m({"é!"});
  std::string out;
  for (std::string p : {"c", "a", "f", "\xc3\xa9", "!", "x"}) out += m.push(p);
  EXPECT_EQ(out, "caf");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  StopMatcher empty({""});
  EXPECT_EQ(empty.push("abc"), "abc");
  EXPECT_FALSE(empty.stopped());
}

TEST(StopMatcher, StopAtTheVeryStart) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.push("\n"), "");
  EXPECT_EQ(m.push("\nrest"), "");
  EXPECT_TRUE(m.stopped());
}

class TokenTextStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = text::Tokenizer::load(std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/minimax-tiny/tokenizer.json");
    ASSERT_TRUE(t.ok()) << t.error().message;
    tok_ = std::make_unique<text::Tokenizer>(std::move(*t));
  }
  int32_t id(const char* token) {
    auto i = tok_->token_id(token);
    EXPECT_TRUE(i.has_value()) << token;
    return i.value_or(-1);
  }
  std::unique_ptr<text::Tokenizer> tok_;
};

TEST_F(TokenTextStreamTest, EosStopsAndIsNotShown) {
  const int32_t eos = id("[e~[");
  EXPECT_EQ(eos, 2020);
  auto ids = tok_->encode("Hello world", false).value();
  ASSERT_FALSE(ids.empty());
  TokenTextStream s(*tok_, {eos}, {}, false);
  std::string out;
  for (int32_t i : ids) out += s.push(i);
  EXPECT_FALSE(s.done());
  out += s.push(eos);
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.reason(), FinishReason::Eos);
  EXPECT_EQ(out, "Hello world");
  EXPECT_EQ(s.push(ids[0]), "");  // ignored after the end
  EXPECT_EQ(s.text(), "Hello world");
}

TEST_F(TokenTextStreamTest, IgnoreEosKeepsGoingAndShowsTheToken) {
  const int32_t eos = id("[e~[");
  TokenTextStream s(*tok_, {eos}, {}, true);
  std::string out = s.push(eos);
  const std::vector<int32_t> ok_ids = tok_->encode("ok", false).value();
  for (int32_t i : ok_ids) out += s.push(i);
  EXPECT_FALSE(s.done());
  out += s.finish();
  EXPECT_EQ(out, "[e~[ok");
}

TEST_F(TokenTextStreamTest, StopStringAcrossTokens) {
  // "Hello world" is several tokens; the stop string spans a token boundary.
  auto ids = tok_->encode("Hello world, bye", false).value();
  ASSERT_GT(ids.size(), 3u);
  TokenTextStream s(*tok_, {2020}, {"lo wor"}, false);
  std::string out;
  size_t used = 0;
  for (int32_t i : ids) {
    out += s.push(i);
    ++used;
    if (s.done()) break;
  }
  EXPECT_EQ(s.reason(), FinishReason::Stop);
  EXPECT_EQ(out, "Hel");
  EXPECT_LT(used, ids.size());
}

TEST_F(TokenTextStreamTest, MultiByteCharacterSplitAcrossTokensIsNeverBroken) {
  // "é" = C3 A9: byte-level tokens "Ã" (0xC3) and "©" (0xA9) each carry one byte.
  const int32_t c3 = id("\xc3\x83"), a9 = id("\xc2\xa9");
  TokenTextStream s(*tok_, {2020}, {}, false);
  EXPECT_EQ(s.push(id("c")), "c");
  EXPECT_EQ(s.push(c3), "");  // incomplete: held
  EXPECT_EQ(s.push(a9), "\xc3\xa9");
  // An incomplete sequence at the end becomes U+FFFD, like Tokenizer::decode.
  EXPECT_EQ(s.push(c3), "");
  EXPECT_EQ(s.finish(), "\xef\xbf\xbd");
  EXPECT_EQ(s.reason(), FinishReason::None);
}

TEST_F(TokenTextStreamTest, EosFlushesHeldBytesAndAStopCanStillMatch) {
  TokenTextStream s(*tok_, {2020}, {"ab"}, false);
  EXPECT_EQ(s.push(id("x")), "x");
  EXPECT_EQ(s.push(id("a")), "");  // held: may start "ab"
  EXPECT_EQ(s.push(2020), "a");   // EOS: the held text did not become a stop string
  EXPECT_EQ(s.reason(), FinishReason::Eos);
}

TEST_F(TokenTextStreamTest, EosIdsMergePlanAndTokenizer) {
  EXPECT_EQ(eos_ids_of({2020}, tok_.get()), (std::vector<int32_t>{2020}));
  EXPECT_EQ(eos_ids_of({7, -1}, tok_.get()), (std::vector<int32_t>{7, 2020}));
  EXPECT_EQ(eos_ids_of({7}, nullptr), (std::vector<int32_t>{7}));
}

}  // namespace
}  // namespace mm::rt
