// TextEngine (runtime/tooling/text_session.h) on the host backend: the test plan of
// test/unit/runtime/test_plan.h with the tiny MiniMax vocabulary (2112 ids, random weights) and the
// tiny tokenizer fixture. Seed determinism, KV-cache reuse of an extended prompt (checked against
// a fresh engine), EOS / stop / length / cancel endings.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "runtime/tooling/text_session.h"
#include "test/unit/runtime/test_plan.h"

namespace mm::rt {
namespace {

constexpr int64_t kVocab = 2112;

ApiPlan tiny_plan() {
  test::TinyModel m;
  m.V = kVocab;
  m.max_seq_len = 64;
  auto bytes = test::build_tiny_plan(m);
  auto p = ApiPlan::load_from_memory(bytes.data(), bytes.size(), "tiny.mmp");
  EXPECT_TRUE(p.ok()) << p.error().message;
  return std::move(*p);
}

text::Tokenizer tiny_tokenizer() {
  auto t = text::Tokenizer::load(std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/minimax-tiny/tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.error().message;
  return std::move(*t);
}

std::unique_ptr<TextEngine> make_engine(std::vector<int32_t> eos = {2020}, uint64_t weight_seed = 5) {
  ApiPlan plan = tiny_plan();
  mm_session_options o{};
  o.weights = "random";
  o.device = "host";
  o.seed = weight_seed;
  o.max_seqs = 1;
  auto s = ApiSession::open(plan, o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return std::make_unique<TextEngine>(std::move(*s), tiny_tokenizer(), std::move(eos));
}

TextGenParams sampled(uint64_t seed, int64_t n) {
  TextGenParams p;
  p.sampling = mm_sampling{1.0f, 0, 1.0f, seed};
  p.max_new_tokens = n;
  p.ignore_eos = true;
  return p;
}

std::vector<int32_t> prompt_ids(const TextEngine& e) { return e.tokenizer().encode("Once upon a time", false).value(); }

TEST(TextEngine, SameSeedSameTextOtherSeedOtherText) {
  auto a = make_engine(), b = make_engine();
  const auto prompt = prompt_ids(*a);
  std::string streamed;
  auto r1 = a->generate(prompt, sampled(42, 24), [&](std::string_view t) { streamed += t; });
  auto r2 = b->generate(prompt, sampled(42, 24), nullptr);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r1->ids.size(), 24u);
  EXPECT_EQ(r1->ids, r2->ids);
  EXPECT_EQ(r1->text, r2->text);
  EXPECT_EQ(streamed, r1->text);
  EXPECT_EQ(r1->reason, FinishReason::Length);
  // The same engine again: the cache is truncated to the shared prompt (all but the last token,
  // whose logits are needed) and the sampled continuation is the same.
  auto r3 = a->generate(prompt, sampled(42, 24), nullptr);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->reused_tokens, static_cast<int64_t>(prompt.size()) - 1);
  EXPECT_EQ(r3->ids, r1->ids);
  auto r4 = b->generate(prompt, sampled(43, 24), nullptr);
  ASSERT_TRUE(r4.ok());
  EXPECT_NE(r4->ids, r1->ids);
}

TEST(TextEngine, ExtendedPromptReusesTheCacheAndMatchesAFreshRun) {
  auto e = make_engine();
  auto prompt = prompt_ids(*e);
  TextGenParams p;
  p.max_new_tokens = 6;
  p.ignore_eos = true;
  auto r1 = e->generate(prompt, p, nullptr);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->prefilled_tokens, static_cast<int64_t>(prompt.size()));
  // The cache holds the prompt and every generated token but the last.
  std::vector<int32_t> cached = prompt;
  cached.insert(cached.end(), r1->ids.begin(), r1->ids.end() - 1);
  EXPECT_EQ(e->cached_ids(), cached);

  std::vector<int32_t> longer = cached;
  longer.push_back(r1->ids.back());
  const std::vector<int32_t> more = e->tokenizer().encode(" and then", false).value();
  longer.insert(longer.end(), more.begin(), more.end());
  p.keep_logits = true;
  auto r2 = e->generate(longer, p, nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->reused_tokens, static_cast<int64_t>(cached.size()));
  EXPECT_EQ(r2->prefilled_tokens, static_cast<int64_t>(longer.size() - cached.size()));

  auto fresh = make_engine();
  auto r3 = fresh->generate(longer, p, nullptr);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->reused_tokens, 0);
  EXPECT_EQ(r2->ids, r3->ids);
  ASSERT_EQ(r2->logits.size(), r3->logits.size());
  ASSERT_EQ(r2->logits.size(), r2->ids.size() * static_cast<size_t>(kVocab));
  for (size_t i = 0; i < r2->logits.size(); ++i) ASSERT_NEAR(r2->logits[i], r3->logits[i], 1e-3f) << i;

  // A prompt that diverges inside the cache keeps the shared prefix (the cache is truncated
  // there) and gives the same result as a fresh engine.
  std::vector<int32_t> other = prompt;
  other.back() = (other.back() + 1) % 1000;
  auto r4 = e->generate(other, p, nullptr);
  auto r5 = make_engine()->generate(other, p, nullptr);
  ASSERT_TRUE(r4.ok());
  ASSERT_TRUE(r5.ok());
  EXPECT_EQ(r4->reused_tokens, static_cast<int64_t>(other.size()) - 1);
  EXPECT_EQ(r4->ids, r5->ids);
  ASSERT_EQ(r4->logits.size(), r5->logits.size());
  for (size_t i = 0; i < r4->logits.size(); ++i) ASSERT_NEAR(r4->logits[i], r5->logits[i], 1e-3f) << i;
  // Reset forgets everything.
  ASSERT_TRUE(e->reset().ok());
  EXPECT_TRUE(e->cached_ids().empty());
  EXPECT_EQ(e->session().length(0), 0);
}

TEST(TextEngine, StopsOnEos) {
  // Make the first greedy token an EOS id: it ends generation at once and prints nothing.
  auto probe = make_engine();
  const auto prompt = prompt_ids(*probe);
  TextGenParams p;
  p.max_new_tokens = 8;
  auto first = probe->generate(prompt, p, nullptr);
  ASSERT_TRUE(first.ok());
  const int32_t t0 = first->ids[0];

  auto e = make_engine({t0});
  std::string shown;
  auto r = e->generate(prompt, p, [&](std::string_view t) { shown += t; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reason, FinishReason::Eos);
  EXPECT_EQ(r->ids, std::vector<int32_t>{t0});
  EXPECT_EQ(shown, "");
  // --ignore-eos: the same token is text like any other.
  p.ignore_eos = true;
  auto r2 = make_engine({t0})->generate(prompt, p, nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->reason, FinishReason::Length);
  EXPECT_EQ(r2->ids.size(), 8u);
}

TEST(TextEngine, StopStringEndsGenerationWithoutPrintingIt) {
  auto probe = make_engine();
  const auto prompt = prompt_ids(*probe);
  TextGenParams p;
  p.max_new_tokens = 16;
  p.ignore_eos = true;
  auto full = probe->generate(prompt, p, nullptr);
  ASSERT_TRUE(full.ok());
  ASSERT_GE(full->text.size(), 6u);
  // A stop string made of the middle of the greedy output (it spans tokens in general), cut at
  // character boundaries.
  auto boundary = [&](size_t i) {
    while (i < full->text.size() && (static_cast<unsigned char>(full->text[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  const size_t from = boundary(2), to = boundary(from + 4);
  ASSERT_LT(from, to);
  const std::string stop = full->text.substr(from, to - from);
  const size_t at = full->text.find(stop);
  p.stop = {stop};
  auto r = make_engine()->generate(prompt, p, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reason, FinishReason::Stop);
  EXPECT_EQ(r->text, full->text.substr(0, at));
  ASSERT_LE(r->ids.size(), full->ids.size());
  EXPECT_TRUE(std::equal(r->ids.begin(), r->ids.end(), full->ids.begin()));
}

TEST(TextEngine, CancelStopsBetweenTokens) {
  auto e = make_engine();
  std::atomic<bool> cancel{false};
  int pieces = 0;
  auto r = e->generate(prompt_ids(*e), sampled(1, 40), [&](std::string_view) {
    if (++pieces == 3) cancel.store(true);
  }, &cancel);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reason, FinishReason::Cancelled);
  EXPECT_LT(r->ids.size(), 40u);
}

TEST(TextEngine, ContextFullAndTooLongPrompt) {
  auto e = make_engine();
  auto r = e->generate(prompt_ids(*e), sampled(1, 1000), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->context_full);
  EXPECT_EQ(r->reason, FinishReason::Length);
  EXPECT_EQ(e->session().length(0), 64);
  std::vector<int32_t> huge(65, 100);
  auto bad = e->generate(huge, sampled(1, 4), nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("65 tokens"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("64"), std::string::npos);
}

}  // namespace
}  // namespace mm::rt
