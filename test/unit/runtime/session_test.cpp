// Host executor + session on the tiny test plan (random weights): consistency of chunked
// prefill and decode, batching, fp8 KV, bad inputs, host KV pools that grow with use.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/src/host_executor.h"
#include "runtime/src/open_session.h"
#include "runtime/src/session.h"
#include "test/unit/runtime/test_plan.h"

namespace mm::rt {
namespace {

using test::TinyModel;

std::shared_ptr<const Plan> make_plan(const TinyModel& m) {
  auto bytes = test::build_tiny_plan(m);
  auto p = load_plan_from_memory(bytes.data(), bytes.size(), "tiny.mmp");
  EXPECT_TRUE(p.ok()) << p.error().message;
  return *p;
}

std::unique_ptr<Session> make_session(std::shared_ptr<const Plan> plan, int64_t max_seqs = 2, uint64_t seed = 1) {
  auto w = random_host_weights(*plan, seed);
  EXPECT_TRUE(w.ok());
  const int64_t max_seq_len = plan->def().limits()->max_seq_len();
  auto ex = HostExecutor::create(plan, std::move(*w), max_seqs * plan->max_blocks_per_seq());
  EXPECT_TRUE(ex.ok());
  auto s = Session::create(plan, std::move(*ex), max_seq_len, max_seqs);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return std::move(*s);
}

std::vector<int32_t> prompt(int n, int V) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((i * 37 + 5) % V);
  return p;
}

TEST(Session, ChunkedPrefillEqualsTokenByTokenDecode) {
  auto plan = make_plan(TinyModel{});
  auto toks = prompt(13, 96);  // two prefill chunks of 8 and 5
  auto a = make_session(plan), b = make_session(plan);
  std::vector<float> la, lb;
  int32_t next_a = -1;
  ASSERT_TRUE(a->prefill(0, toks, Sampling{}, 0, &la, &next_a).ok());
  int32_t n0 = -1;
  ASSERT_TRUE(b->prefill(0, {toks.data(), 1}, Sampling{}, 0, nullptr, &n0).ok());
  std::vector<int32_t> next_b;
  const int32_t slot = 0;
  const Sampling s{};
  for (size_t i = 1; i < toks.size(); ++i)
    ASSERT_TRUE(b->decode({&slot, 1}, {&toks[i], 1}, {&s, 1}, 0, &lb, &next_b).ok());
  ASSERT_EQ(la.size(), 96u);
  ASSERT_EQ(lb.size(), 96u);
  // The reference sums in the same order for any M, grouped or not, fused router or not: the
  // two paths agree bitwise.
  EXPECT_EQ(0, std::memcmp(la.data(), lb.data(), la.size() * 4));
  EXPECT_EQ(next_a, next_b[0]);
  float mx = -INFINITY;
  int arg = 0;
  for (int v = 0; v < 96; ++v)
    if (la[v] > mx) mx = la[v], arg = v;
  EXPECT_EQ(next_a, arg);  // greedy
  EXPECT_TRUE(std::isfinite(mx));
  EXPECT_EQ(a->length(0), 13);
}

TEST(Session, BatchedDecodeEqualsSeparateDecodes) {
  auto plan = make_plan(TinyModel{});
  auto s = make_session(plan), t = make_session(plan);
  auto p0 = prompt(5, 96), p1 = prompt(9, 96);
  ASSERT_TRUE(s->prefill(0, p0, Sampling{}, 0, nullptr, nullptr).ok());
  ASSERT_TRUE(s->prefill(1, p1, Sampling{}, 0, nullptr, nullptr).ok());
  ASSERT_TRUE(t->prefill(0, p0, Sampling{}, 0, nullptr, nullptr).ok());
  ASSERT_TRUE(t->prefill(1, p1, Sampling{}, 0, nullptr, nullptr).ok());
  const std::vector<int32_t> slots = {1, 0}, toks = {3, 4};
  const std::vector<Sampling> samp(2);
  std::vector<float> lb, l0, l1;
  std::vector<int32_t> nb, n;
  ASSERT_TRUE(s->decode(slots, toks, samp, 1, &lb, &nb).ok());
  ASSERT_TRUE(t->decode({&slots[0], 1}, {&toks[0], 1}, {&samp[0], 1}, 1, &l1, &n).ok());
  ASSERT_TRUE(t->decode({&slots[1], 1}, {&toks[1], 1}, {&samp[1], 1}, 1, &l0, &n).ok());
  EXPECT_EQ(0, std::memcmp(lb.data(), l1.data(), 96 * 4));
  EXPECT_EQ(0, std::memcmp(lb.data() + 96, l0.data(), 96 * 4));
  // Releasing a sequence frees its blocks; the slot starts over.
  ASSERT_TRUE(s->release(1).ok());
  EXPECT_EQ(s->length(1), 0);
  EXPECT_FALSE(s->release(7).ok());
}

TEST(Session, Fp8KvCacheStaysCloseToBf16) {
  TinyModel m;
  auto pb = make_plan(m);
  m.fp8_kv = true;
  auto pf = make_plan(m);
  auto sb = make_session(pb), sf = make_session(pf);
  auto toks = prompt(11, 96);
  std::vector<float> lb, lf;
  ASSERT_TRUE(sb->prefill(0, toks, Sampling{}, 0, &lb, nullptr).ok());
  ASSERT_TRUE(sf->prefill(0, toks, Sampling{}, 0, &lf, nullptr).ok());
  double dot = 0, nb = 0, nf = 0;
  for (int v = 0; v < 96; ++v) dot += lb[v] * lf[v], nb += lb[v] * lb[v], nf += lf[v] * lf[v];
  // fp8 e4m3 keeps 3 mantissa bits per key/value; through two random layers (where a changed
  // expert choice moves a whole FFN output) the logits move but stay aligned. A broken fp8 path
  // (scales ignored, wrong rows) gives unrelated logits, cosine near 0. The kernel-level accuracy
  // is tested in reference_test (Attention.Fp8CacheMatchesBf16).
  EXPECT_GT(dot / std::sqrt(nb * nf), 0.8);
  EXPECT_NE(0, std::memcmp(lb.data(), lf.data(), 96 * 4));  // the fp8 path really ran
}

TEST(Session, RefusesBadRequests) {
  auto plan = make_plan(TinyModel{});
  auto s = make_session(plan);
  std::vector<int32_t> bad = {1, 96};
  Status st = s->prefill(0, bad, Sampling{}, 0, nullptr, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("token id 96 at index 1 is outside the vocabulary [0, 96)"), std::string::npos);
  auto long_prompt = prompt(65, 96);
  st = s->prefill(0, long_prompt, Sampling{}, 0, nullptr, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("more than --max-seq-len 64"), std::string::npos);
  st = s->prefill(5, prompt(2, 96), Sampling{}, 0, nullptr, nullptr);
  EXPECT_FALSE(st.ok());
}

long max_rss_kib() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

TEST(HostileKvCache, HostKvFollowsTheContextNotThePlanLimit) {
  // A plan of 2^20 tokens, 512 bytes of KV per token: the host backend used to allocate and zero
  // 512 MiB for one short prompt. The pools now grow block by block.
  TinyModel m;
  m.max_seq_len = int64_t{1} << 20;
  auto bytes = test::build_tiny_plan(m);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "long.mmp");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const long rss0 = max_rss_kib();
  SessionOptions so;
  so.weights = "random";
  so.device = "host";
  so.max_seq_len = 0;  // the plan's limit, as mmrun chat asks
  auto opened = open_session(*plan, so);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Session& s = *opened->session;
  EXPECT_EQ(s.max_seq_len(), int64_t{1} << 20);
  std::vector<int32_t> prompt(40, 7);
  int32_t next = -1;
  ASSERT_TRUE(s.prefill(0, prompt, Sampling{}, 0, nullptr, &next).ok());
  for (int i = 0; i < 5; ++i) {
    std::vector<int32_t> nexts;
    const int32_t slot = 0;
    ASSERT_TRUE(s.decode({&slot, 1}, {&next, 1}, std::vector<Sampling>(1), i + 1, nullptr, &nexts).ok());
    next = nexts[0];
  }
  auto* host = dynamic_cast<HostExecutor*>(&s.executor());
  ASSERT_NE(host, nullptr);
  // 45 tokens = 12 blocks of 4; 2 layers x (k + v) pools of 2 KV heads x 32 dims x bf16.
  EXPECT_EQ(host->kv_blocks_committed(), 12);
  EXPECT_LE(host->kv_bytes_committed(), uint64_t{4} * 4 * 4096);  // each pool rounds up to a page
  EXPECT_LT(max_rss_kib() - rss0, 64 * 1024) << "resident memory grew by more than 64 MiB";
  // Releasing and reusing blocks does not grow the pools further.
  ASSERT_TRUE(s.release(0).ok());
  ASSERT_TRUE(s.prefill(0, prompt, Sampling{}, 0, nullptr, &next).ok());
  EXPECT_EQ(host->kv_blocks_committed(), 12);
}

}  // namespace
}  // namespace mm::rt
