// Scheduler (runtime/tooling/server/scheduler.h) on the host backend with the test plan of
// test/unit/runtime/test_plan.h (random weights, 4 sequence slots, 8-token prefill chunks): requests
// batched together get exactly the greedy tokens they get alone; a seeded sampled request gets the
// same tokens alone and among others; the prefix cache reuses a finished request's KV; a cancelled
// request frees its slot; the queue is bounded; draining refuses new requests.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "runtime/tooling/server/scheduler.h"
#include "test/unit/runtime/test_plan.h"

namespace mm::rt::server {
namespace {

constexpr int64_t kVocab = 2112;

const text::Tokenizer& tokenizer() {
  static text::Tokenizer t = [] {
    auto r = text::Tokenizer::load(std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/minimax-tiny/tokenizer.json");
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }();
  return t;
}

struct Engine {
  std::unique_ptr<ApiSession> session;
  Metrics metrics{"test"};
  std::unique_ptr<Scheduler> scheduler;
};

std::unique_ptr<Engine> make_engine(int32_t slots = 4, bool prefix_caching = true, int64_t max_queue = 16,
                                    int64_t batched_tokens = 2048, int32_t think_end = -1) {
  test::TinyModel m;
  m.V = kVocab;
  m.max_seq_len = 96;
  m.max_batch = 4;
  auto bytes = test::build_tiny_plan(m);
  auto plan = ApiPlan::load_from_memory(bytes.data(), bytes.size(), "tiny.mmp");
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  mm_session_options o{};
  o.weights = "random";
  o.device = "host";
  o.seed = 5;
  o.max_seqs = slots;
  auto e = std::make_unique<Engine>();
  auto s = ApiSession::open(*plan, o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  e->session = std::move(*s);
  SchedulerOptions so;
  so.max_num_seqs = slots;
  so.max_model_len = e->session->max_seq_len();
  so.max_batched_tokens = batched_tokens;
  so.max_queue = max_queue;
  so.prefix_caching = prefix_caching;
  so.eos_ids = {2020};
  so.think_end_id = think_end >= 0 ? think_end : *tokenizer().token_id("</think>");
  e->scheduler = std::make_unique<Scheduler>(*e->session, tokenizer(), so, &e->metrics);
  e->scheduler->start();
  return e;
}

GenerationRequest request(const std::string& prompt, int64_t max_tokens, float temperature = 0,
                          std::optional<uint64_t> seed = std::nullopt) {
  GenerationRequest r;
  r.prompt = tokenizer().encode(prompt, false).value();
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

struct Result {
  std::vector<int32_t> ids;
  std::string text;
  EngineEvent last;
};

Result collect(const std::shared_ptr<RequestStream>& s) {
  Result r;
  for (int i = 0; i < 2000; ++i) {
    for (auto& e : s->wait(std::chrono::milliseconds(20))) {
      r.ids.insert(r.ids.end(), e.ids.begin(), e.ids.end());
      r.text += e.text;
      if (e.finished) {
        r.last = std::move(e);
        return r;
      }
    }
  }
  ADD_FAILURE() << "no final event within 40 s";
  return r;
}

Result run(Scheduler& s, GenerationRequest r) {
  Submitted sub = s.submit(std::move(r));
  EXPECT_EQ(sub.refusal, Refusal::None);
  return collect(sub.stream);
}

const std::vector<std::string> kPrompts = {"Once upon a time", "The quick brown fox jumps over", "Hello",
                                           "A much longer prompt that spans several prefill chunks of the plan"};

TEST(Scheduler, BatchedRequestsGetTheGreedyTokensOfALoneRequest) {
  std::vector<Result> alone;
  {
    auto e = make_engine(4, /*prefix_caching=*/false);
    for (const auto& p : kPrompts) alone.push_back(run(*e->scheduler, request(p, 12)));
  }
  auto e = make_engine(4, true, 16, /*batched_tokens=*/8);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& p : kPrompts) streams.push_back(e->scheduler->submit(request(p, 12)).stream);
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    Result r = collect(streams[i]);
    EXPECT_EQ(r.ids, alone[i].ids) << kPrompts[i];
    EXPECT_EQ(r.text, alone[i].text);
    EXPECT_EQ(r.last.reason, FinishReason::Length);
    EXPECT_EQ(r.last.completion_tokens, 12);
    EXPECT_EQ(r.last.prompt_tokens, static_cast<int64_t>(tokenizer().encode(kPrompts[i], false).value().size()));
  }
  ASSERT_TRUE(e->scheduler->wait_idle(std::chrono::seconds(5)));
  const EngineGauges g = e->scheduler->gauges();
  EXPECT_EQ(g.running, 0);
  EXPECT_EQ(g.kv_blocks_used, 0);
  EXPECT_GT(g.kv_blocks_cached, 0);
  EXPECT_EQ(g.kv_blocks_free + g.kv_blocks_cached, g.kv_blocks_total);
}

TEST(Scheduler, SeededSamplingIsTheSameAloneAndAmongOthers) {
  auto e = make_engine();
  const Result a = run(*e->scheduler, request("Once upon a time", 16, 1.0f, 42));
  // The same request while three unseeded sampled ones run next to it.
  std::vector<std::shared_ptr<RequestStream>> others;
  for (int i = 0; i < 3; ++i) others.push_back(e->scheduler->submit(request(kPrompts[i + 1], 16, 1.0f)).stream);
  const Result b = run(*e->scheduler, request("Once upon a time", 16, 1.0f, 42));
  for (auto& s : others) collect(s);
  EXPECT_EQ(a.ids, b.ids);
  const Result c = run(*e->scheduler, request("Once upon a time", 16, 1.0f, 43));
  EXPECT_NE(a.ids, c.ids);
}

TEST(Scheduler, PrefixCacheReusesAFinishedRequest) {
  auto e = make_engine();
  GenerationRequest first = request("The quick brown fox jumps over", 6);
  const std::vector<int32_t> prompt = first.prompt;
  const Result r1 = run(*e->scheduler, first);
  EXPECT_EQ(r1.last.cached_tokens, 0);
  // The same prompt again: all but its last token come from the cache.
  const Result r2 = run(*e->scheduler, request("The quick brown fox jumps over", 6));
  EXPECT_EQ(r2.last.cached_tokens, static_cast<int64_t>(prompt.size()) - 1);
  EXPECT_EQ(r2.ids, r1.ids);
  // The next turn: prompt + answer + more; the answer's KV (all but its last token) is reused too.
  GenerationRequest next = request("", 6);
  next.prompt = prompt;
  next.prompt.insert(next.prompt.end(), r2.ids.begin(), r2.ids.end());
  // Held in a local: a range-for over encode(...).value() reads the vector of a destroyed temporary
  // (the loop extends the lifetime of value()'s reference only; ASan: stack-use-after-scope).
  const auto more = tokenizer().encode(" and then", false);
  for (int32_t id : more.value()) next.prompt.push_back(id);
  const Result r3 = run(*e->scheduler, next);
  EXPECT_EQ(r3.last.cached_tokens, static_cast<int64_t>(prompt.size() + r2.ids.size()) - 1);
  // Against a server without prefix caching: the same tokens.
  auto fresh = make_engine(4, false);
  const Result r4 = run(*fresh->scheduler, next);
  EXPECT_EQ(r4.last.cached_tokens, 0);
  EXPECT_EQ(r3.ids, r4.ids);
}

TEST(Scheduler, CancelledRequestFreesItsSlot) {
  auto e = make_engine(1);
  Submitted sub = e->scheduler->submit(request("Once upon a time", 80));
  ASSERT_TRUE(sub.stream);
  // Wait for the first token, then go away.
  bool started = false;
  std::vector<EngineEvent> seen;
  for (int i = 0; i < 500 && !started; ++i)
    for (auto& ev : sub.stream->wait(std::chrono::milliseconds(10))) started = started || !ev.ids.empty();
  ASSERT_TRUE(started);
  sub.stream->cancel();
  const Result r = collect(sub.stream);
  EXPECT_EQ(r.last.reason, FinishReason::Cancelled);
  EXPECT_LT(r.last.completion_tokens, 80);
  ASSERT_TRUE(e->scheduler->wait_idle(std::chrono::seconds(5)));
  EXPECT_EQ(e->scheduler->gauges().kv_blocks_used, 0);
  // The one slot serves the next request.
  const Result next = run(*e->scheduler, request("Hello", 4));
  EXPECT_EQ(next.last.reason, FinishReason::Length);
}

TEST(Scheduler, QueueIsBounded) {
  auto e = make_engine(1, true, /*max_queue=*/1);
  Submitted a = e->scheduler->submit(request("Once upon a time", 60));
  Submitted b = e->scheduler->submit(request("Hello", 60));
  Submitted c = e->scheduler->submit(request("Hello again", 4));
  EXPECT_EQ(a.refusal, Refusal::None);
  EXPECT_EQ(b.refusal, Refusal::None);
  EXPECT_EQ(c.refusal, Refusal::QueueFull);
  EXPECT_FALSE(c.stream);
  // A queued request whose client left never runs.
  b.stream->cancel();
  EXPECT_EQ(collect(b.stream).last.reason, FinishReason::Cancelled);
  EXPECT_EQ(collect(a.stream).last.reason, FinishReason::Length);
}

TEST(Scheduler, DrainFinishesAcceptedRequestsAndRefusesNewOnes) {
  auto e = make_engine();
  Submitted a = e->scheduler->submit(request("Once upon a time", 20));
  e->scheduler->begin_drain();
  EXPECT_EQ(e->scheduler->submit(request("Hello", 4)).refusal, Refusal::Draining);
  EXPECT_TRUE(e->scheduler->draining());
  EXPECT_EQ(collect(a.stream).last.completion_tokens, 20);
  EXPECT_TRUE(e->scheduler->wait_idle(std::chrono::seconds(5)));
}

TEST(Scheduler, StopStringsAndTheEndOfTheContext) {
  auto e = make_engine();
  const Result full = run(*e->scheduler, request("Once upon a time", 16));
  ASSERT_GE(full.text.size(), 6u);
  size_t from = 2;
  while (from < full.text.size() && (static_cast<unsigned char>(full.text[from]) & 0xC0) == 0x80) ++from;
  size_t to = from + 3;
  while (to < full.text.size() && (static_cast<unsigned char>(full.text[to]) & 0xC0) == 0x80) ++to;
  const std::string stop = full.text.substr(from, to - from);
  GenerationRequest r = request("Once upon a time", 16);
  r.stop = {stop};
  const Result s = run(*e->scheduler, r);
  EXPECT_EQ(s.last.reason, FinishReason::Stop);
  EXPECT_EQ(s.text, full.text.substr(0, full.text.find(stop)));
  // max_tokens up to the end of the context: the answer ends at max_model_len.
  GenerationRequest longest = request("Hello", 1000);
  longest.max_tokens = 96 - static_cast<int64_t>(longest.prompt.size());
  const Result l = run(*e->scheduler, longest);
  EXPECT_EQ(l.last.reason, FinishReason::Length);
  EXPECT_EQ(l.last.completion_tokens, longest.max_tokens);
}

TEST(Scheduler, ForcedToolCallOpeningAfterTheReasoning) {
  auto e = make_engine();
  // The prompt closed the reasoning: the forced text starts the answer and counts as answer tokens.
  GenerationRequest r = request("Call the tool.</think>\n\n", 30);
  r.forced = tokenizer().encode("<minimax:tool_call>\n<invoke name=\"get_weather\">\n", true).value();
  const int64_t forced = static_cast<int64_t>(r.forced.size());
  const Result a = run(*e->scheduler, r);
  EXPECT_EQ(a.text.rfind("<minimax:tool_call>\n<invoke name=\"get_weather\">\n", 0), 0u) << a.text;
  EXPECT_EQ(a.last.completion_tokens, 30);
  EXPECT_EQ(std::vector<int32_t>(a.ids.begin(), a.ids.begin() + forced), r.forced);
  // Reasoning still open: the opening is forced right after the token that ends it. The random
  // model never writes "</think>", so the test makes its third greedy token the end of reasoning.
  r.reasoning_open = true;
  const Result base = run(*e->scheduler, r);
  EXPECT_EQ(base.text.find("<invoke name=\"get_weather\">"), std::string::npos);
  ASSERT_EQ(base.ids.size(), 30u);
  auto e2 = make_engine(4, true, 16, 2048, /*think_end=*/base.ids[2]);
  const Result c = run(*e2->scheduler, r);
  ASSERT_GE(c.ids.size(), static_cast<size_t>(3 + forced));
  EXPECT_EQ(std::vector<int32_t>(c.ids.begin(), c.ids.begin() + 3), std::vector<int32_t>(base.ids.begin(), base.ids.begin() + 3));
  EXPECT_EQ(std::vector<int32_t>(c.ids.begin() + 3, c.ids.begin() + 3 + forced), r.forced);
  EXPECT_NE(c.text.find("<minimax:tool_call>\n<invoke name=\"get_weather\">\n"), std::string::npos) << c.text;
  EXPECT_EQ(c.last.completion_tokens, 30);
}

}  // namespace
}  // namespace mm::rt::server
