// The cuda backend (runtime/src/cuda_executor.h) against the host backend (the C++ references) on
// a plan compiled by mmc. Environment:
//   MM_TEST_PLAN      a .mmp with cubins (or PTX) for this GPU (bf16 KV cache, typically)
//   MM_TEST_PLAN_FP8  optional: the same model compiled with an fp8 KV cache
//   MM_TEST_WEIGHTS   the checkpoint directory the plans were compiled from, or "random"
//                     (default): random host weights uploaded as they are to both backends
// Every GPU test skips with "skipped: no CUDA device" without one, and with a message naming the
// variable when a plan is not given. run_cuda_executor_test.sh sets everything up.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "runtime/src/cuda_executor.h"
#include "runtime/src/open_session.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/session.h"
#include "runtime/src/weights.h"

namespace mm::rt {
namespace {

#define MM_REQUIRE_CUDA() \
  do { if (!cuda_device_present()) GTEST_SKIP() << "skipped: no CUDA device"; } while (0)

std::string env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

constexpr uint64_t kSeed = 7;

std::shared_ptr<const Plan> load_or_fail(const std::string& path) {
  auto p = load_plan(path);
  EXPECT_TRUE(p.ok()) << p.error().message;
  return p.ok() ? *p : nullptr;
}

// The plan of MM_TEST_PLAN with the weights of MM_TEST_WEIGHTS (default "random"), for the tests
// below that run one plan: MM_PLAN_CASE(c) skips the test without a GPU or a plan, fails it when
// the plan does not load, and gives `c`.
struct PlanCase {
  std::shared_ptr<const Plan> plan;
  std::string weights;
  int64_t V = 0;
  int64_t max_batch = 0;
  int64_t max_seq_len(int64_t cap) const { return std::min<int64_t>(plan->def().limits()->max_seq_len(), cap); }
};
PlanCase plan_case(const std::string& path) {
  PlanCase c;
  c.plan = load_or_fail(path);
  c.weights = env("MM_TEST_WEIGHTS", "random");
  if (c.plan) {
    c.V = c.plan->def().model()->vocab_size();
    c.max_batch = c.plan->def().limits()->max_batch();
  }
  return c;
}
#define MM_PLAN_CASE(c)                                                         \
  MM_REQUIRE_CUDA();                                                            \
  if (env("MM_TEST_PLAN").empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set"; \
  const PlanCase c = plan_case(env("MM_TEST_PLAN"));                            \
  ASSERT_TRUE(c.plan)

Expected<HostWeights> host_weights(const Plan& plan, const std::string& weights) {
  return weights == "random" ? random_host_weights(plan, kSeed) : load_host_weights(plan, weights);
}

int64_t blocks_for(const Plan& plan, int64_t max_seq_len, int64_t seqs) {
  const int64_t b = plan.def().limits()->kv_block_size();
  return seqs * ((max_seq_len + b - 1) / b);
}

std::unique_ptr<Session> host_session(std::shared_ptr<const Plan> plan, const std::string& weights, int64_t msl, int64_t seqs) {
  auto hw = host_weights(*plan, weights);
  EXPECT_TRUE(hw.ok()) << hw.error().message;
  if (!hw.ok()) return nullptr;
  auto ex = HostExecutor::create(plan, std::move(*hw), blocks_for(*plan, msl, seqs));
  EXPECT_TRUE(ex.ok()) << ex.error().message;
  if (!ex.ok()) return nullptr;
  auto s = Session::create(plan, std::move(*ex), msl, seqs);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

// The cuda session on the same weights: a checkpoint directory goes through the cuda backend's
// own streaming loader; "random" uploads the host's random weights byte for byte.
std::unique_ptr<Session> cuda_session(std::shared_ptr<const Plan> plan, const std::string& weights, int64_t msl,
                                      int64_t seqs, bool graphs, CudaExecutor** raw = nullptr) {
  CudaOptions o;
  o.max_seq_len = msl;
  o.max_seqs = seqs;
  o.cuda_graphs = graphs;
  Expected<HostWeights> hw = HostWeights{};
  if (weights == "random") {
    hw = random_host_weights(*plan, kSeed);
    EXPECT_TRUE(hw.ok());
    o.host_weights = &*hw;
  } else {
    o.weights = weights;
  }
  auto ex = CudaExecutor::create(plan, o);
  EXPECT_TRUE(ex.ok()) << ex.error().message;
  if (!ex.ok()) return nullptr;
  if (raw) *raw = ex->get();
  std::printf("[cuda] %s\n", (*ex)->summary().c_str());
  auto s = Session::create(plan, std::move(*ex), msl, seqs);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

struct Diff {
  double rel_l2 = 0, max_abs = 0;
  int arg_host = 0, arg_cuda = 0;
  double gap = 0;        // host logit of host's argmax minus host logit of cuda's argmax
  bool finite = true;
};

Diff compare(const float* h, const float* c, int64_t V) {
  Diff d;
  double num = 0, den = 0;
  for (int64_t v = 0; v < V; ++v) {
    if (!std::isfinite(c[v])) d.finite = false;
    const double e = static_cast<double>(c[v]) - h[v];
    num += e * e;
    den += static_cast<double>(h[v]) * h[v];
    d.max_abs = std::max(d.max_abs, std::fabs(e));
  }
  d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  d.arg_host = static_cast<int>(std::max_element(h, h + V) - h);
  d.arg_cuda = static_cast<int>(std::max_element(c, c + V) - c);
  d.gap = static_cast<double>(h[d.arg_host]) - h[d.arg_cuda];
  return d;
}

// Argmax agreement, or a flip the measured noise explains: the host's own logits put the cuda
// choice within twice this row's largest logit error of the top (a near-tie).
bool agrees(const Diff& d) { return d.arg_host == d.arg_cuda || d.gap <= 2 * d.max_abs; }

// Tolerance: both backends round activations to bf16 between kernels with fp32 accumulation,
// but in different summation orders (tiles, split-K vs serial loops), so intermediate
// activations differ by about one bf16 ulp (2^-8 relative) and the logits of a 2-layer model
// end up ~1 % apart. 5 % relative L2 leaves room for that; one step in nine may exceed it,
// because a router near-tie flipped by that noise swaps an expert for one token, which moves
// that token's logits wholesale (a real, explained difference, not an executor bug).
// Prefill attention on tensor cores (ATTENTION VARIANT 3) also rounds the softmax probabilities
// to bf16 for the P·V mma, as FlashAttention-2 and vLLM do: about 2^-9 relative per attention
// output more, which measured 5.4-6.8 % on the tiny bf16-KV plan's prefilled steps (H200). 8 %
// keeps that room; a wrong kernel or binding moves the logits by O(1).
constexpr double kRelTol = 0.08;

void teacher_forced(const std::string& plan_path, plan::DType want_kv) {
  auto plan = load_or_fail(plan_path);
  ASSERT_TRUE(plan);
  if ((*plan).def().limits()->kv_dtype() != want_kv)
    std::printf("note: %s has KV dtype %s\n", plan_path.c_str(), plan_dtype_name(plan->def().limits()->kv_dtype()));
  const std::string weights = env("MM_TEST_WEIGHTS", "random");
  const int64_t V = plan->def().model()->vocab_size();
  const int64_t prompt_len = 20, steps = 8;
  const int64_t msl = std::min<int64_t>(plan->def().limits()->max_seq_len(), 32);
  ASSERT_GE(msl, prompt_len + steps);
  auto host = host_session(plan, weights, msl, 1);
  auto cuda = cuda_session(plan, weights, msl, 1, true);
  ASSERT_TRUE(host && cuda);
  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < prompt_len; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % V));
  std::vector<float> lh, lc;
  int32_t nh = -1, nc = -1;
  Status st = host->prefill(0, prompt, Sampling{}, 0, &lh, &nh);
  ASSERT_TRUE(st.ok()) << st.error().message;
  st = cuda->prefill(0, prompt, Sampling{}, 0, &lc, &nc);
  ASSERT_TRUE(st.ok()) << st.error().message;
  int exact = 0, over_tol = 0;
  double worst = 0;
  for (int64_t step = 0; step <= steps; ++step) {
    const Diff d = compare(lh.data(), lc.data(), V);
    std::printf("step %lld: rel_l2 %.4f max_abs %.4f argmax host %d cuda %d (gap %.4f)\n", static_cast<long long>(step),
                d.rel_l2, d.max_abs, d.arg_host, d.arg_cuda, d.gap);
    EXPECT_TRUE(d.finite) << "non-finite cuda logits at step " << step;
    EXPECT_TRUE(agrees(d)) << "step " << step << ": argmax " << d.arg_cuda << " vs host " << d.arg_host
                           << " with a host margin of " << d.gap << " (noise " << d.max_abs << ")";
    // Greedy SAMPLE on the device picks the argmax of the logits it returned (ties: lower id).
    EXPECT_EQ(nc, d.arg_cuda) << "step " << step;
    exact += d.arg_host == d.arg_cuda;
    over_tol += d.rel_l2 > kRelTol;
    worst = std::max(worst, d.rel_l2);
    if (step == steps) break;
    // Teacher-forced: both backends are fed the host's greedy token.
    const int32_t slot = 0, tok = nh;
    const Sampling greedy{};
    std::vector<int32_t> next;
    st = host->decode({&slot, 1}, {&tok, 1}, {&greedy, 1}, step + 1, &lh, &next);
    ASSERT_TRUE(st.ok()) << st.error().message;
    nh = next[0];
    st = cuda->decode({&slot, 1}, {&tok, 1}, {&greedy, 1}, step + 1, &lc, &next);
    ASSERT_TRUE(st.ok()) << st.error().message;
    nc = next[0];
  }
  std::printf("exact argmax agreement %d/%lld, worst rel_l2 %.4f\n", exact, static_cast<long long>(steps + 1), worst);
  EXPECT_LE(over_tol, 1) << "more than one step beyond " << kRelTol << " relative L2 (worst " << worst << ")";
}

TEST(CudaExecutor, MatchesTheHostBackendTeacherForced) {
  MM_REQUIRE_CUDA();
  const std::string plan = env("MM_TEST_PLAN");
  if (plan.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set (a .mmp compiled for this GPU)";
  teacher_forced(plan, plan::DType::BF16);
}

TEST(CudaExecutor, MatchesTheHostBackendWithAnFp8KvCache) {
  MM_REQUIRE_CUDA();
  const std::string plan = env("MM_TEST_PLAN_FP8");
  if (plan.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN_FP8 not set (a .mmp with --kv-dtype fp8)";
  teacher_forced(plan, plan::DType::FP8_E4M3);
}

// Prefill over several chunks and at depth: a prompt longer than the plan's prefill chunk (the
// scripts compile the test plans with --max-prefill-tokens 64, so 150 tokens run as 64 + 64 + 22,
// each chunk attending to the cache the earlier ones wrote), then 90 more tokens appended to the
// same sequence (a chunk boundary inside, starting at depth 150), then teacher-forced decode. The
// last token's logits of each prefill call and of each step are compared with the host backend.
void prefill_over_chunks(const std::string& plan_path) {
  auto plan = load_or_fail(plan_path);
  ASSERT_TRUE(plan);
  const std::string weights = env("MM_TEST_WEIGHTS", "random");
  const int64_t V = plan->def().model()->vocab_size();
  const int64_t chunk = plan->def().limits()->max_prefill_tokens();
  const int64_t first = 150, second = 90, steps = 4;
  const int64_t msl = plan->def().limits()->max_seq_len();
  if (msl < first + second + steps) GTEST_SKIP() << "skipped: the plan's max_seq_len " << msl << " is too short";
  if (chunk >= first) std::printf("note: prefill chunk %lld >= %lld: one chunk only\n", static_cast<long long>(chunk),
                                  static_cast<long long>(first));
  auto host = host_session(plan, weights, msl, 1);
  auto cuda = cuda_session(plan, weights, msl, 1, true);
  ASSERT_TRUE(host && cuda);
  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < first + second; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % V));
  const std::span<const int32_t> a(prompt.data(), first), b(prompt.data() + first, second);
  std::vector<float> lh, lc;
  int32_t nh = -1, nc = -1;
  int over_tol = 0;
  double worst = 0;
  auto check = [&](const char* what) {
    const Diff d = compare(lh.data(), lc.data(), V);
    std::printf("%s: rel_l2 %.4f max_abs %.4f argmax host %d cuda %d (gap %.4f)\n", what, d.rel_l2, d.max_abs,
                d.arg_host, d.arg_cuda, d.gap);
    EXPECT_TRUE(d.finite) << what << ": non-finite cuda logits";
    EXPECT_TRUE(agrees(d)) << what << ": argmax " << d.arg_cuda << " vs host " << d.arg_host;
    EXPECT_EQ(nc, d.arg_cuda) << what;
    over_tol += d.rel_l2 > kRelTol;
    worst = std::max(worst, d.rel_l2);
  };
  for (auto [part, what] : {std::pair{a, "prompt over chunks"}, std::pair{b, "continued at depth"}}) {
    Status st = host->prefill(0, part, Sampling{}, 0, &lh, &nh);
    ASSERT_TRUE(st.ok()) << st.error().message;
    st = cuda->prefill(0, part, Sampling{}, 0, &lc, &nc);
    ASSERT_TRUE(st.ok()) << st.error().message;
    check(what);
  }
  for (int64_t step = 0; step < steps; ++step) {
    const int32_t slot = 0, tok = nh;
    const Sampling greedy{};
    std::vector<int32_t> next;
    Status st = host->decode({&slot, 1}, {&tok, 1}, {&greedy, 1}, step + 1, &lh, &next);
    ASSERT_TRUE(st.ok()) << st.error().message;
    nh = next[0];
    st = cuda->decode({&slot, 1}, {&tok, 1}, {&greedy, 1}, step + 1, &lc, &next);
    ASSERT_TRUE(st.ok()) << st.error().message;
    nc = next[0];
    check("decode after the long prompt");
  }
  // As in teacher_forced: one comparison in nine may exceed the tolerance through a router near-tie.
  EXPECT_LE(over_tol, 1) << "more than one comparison beyond " << kRelTol << " relative L2 (worst " << worst << ")";
}

TEST(CudaExecutor, PrefillOverChunksAndAtDepthMatchesTheHost) {
  MM_REQUIRE_CUDA();
  const std::string plan = env("MM_TEST_PLAN");
  if (plan.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set";
  prefill_over_chunks(plan);
}

TEST(CudaExecutor, PrefillOverChunksWithAnFp8KvCacheMatchesTheHost) {
  MM_REQUIRE_CUDA();
  const std::string plan = env("MM_TEST_PLAN_FP8");
  if (plan.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN_FP8 not set";
  prefill_over_chunks(plan);
}

// Graphs replay exactly what eager launches compute: a padded batch (3 sequences in the bucket
// of 4, the dummy row writing only its scratch block) and sampling at temperature > 0, where
// the graph's baked STEP = 0 is compensated through the seeds.
TEST(CudaExecutor, DecodeGraphsMatchEagerLaunches) {
  MM_PLAN_CASE(c);
  const auto& plan = c.plan;
  const std::string& weights = c.weights;
  const int64_t V = c.V;
  const int64_t seqs = std::min<int64_t>(3, c.max_batch);
  const int64_t msl = c.max_seq_len(32);
  CudaExecutor* graph_ex = nullptr;
  auto graph = cuda_session(plan, weights, msl, seqs, true, &graph_ex);
  auto eager = cuda_session(plan, weights, msl, seqs, false);
  auto host = host_session(plan, weights, msl, seqs);
  ASSERT_TRUE(graph && eager && host);
  std::vector<int32_t> slots, last(static_cast<size_t>(seqs));
  for (int32_t s = 0; s < seqs; ++s) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < 5 + 4 * s; ++i) prompt.push_back(static_cast<int32_t>((i * 131 + 17 * s + 3) % V));
    int32_t a = -1, b = -1, c = -1;
    ASSERT_TRUE(graph->prefill(s, prompt, Sampling{}, 0, nullptr, &a).ok());
    ASSERT_TRUE(eager->prefill(s, prompt, Sampling{}, 0, nullptr, &b).ok());
    ASSERT_TRUE(host->prefill(s, prompt, Sampling{}, 0, nullptr, &c).ok());
    EXPECT_EQ(a, b);
    slots.push_back(s);
    last[s] = c;
  }
  std::vector<Sampling> sampling;
  for (int32_t s = 0; s < seqs; ++s) sampling.push_back(Sampling{0.8f, 0, 0.95f, 1000u + s});
  for (int64_t step = 1; step <= 4; ++step) {
    std::vector<float> lg, le, lh;
    std::vector<int32_t> ng, ne, nh;
    ASSERT_TRUE(graph->decode(slots, last, sampling, step, &lg, &ng).ok());
    ASSERT_TRUE(eager->decode(slots, last, sampling, step, &le, &ne).ok());
    ASSERT_TRUE(host->decode(slots, last, sampling, step, &lh, &nh).ok());
    for (int64_t r = 0; r < seqs; ++r) {
      const Diff ge = compare(le.data() + r * V, lg.data() + r * V, V);
      // Same kernels, same inputs; only T differs (bucket 4 vs 3). Rows are computed
      // independently, so anything beyond float noise means padding leaked into a real row.
      EXPECT_LE(ge.rel_l2, 1e-3) << "step " << step << " row " << r;
      if (ge.max_abs == 0) {
        EXPECT_EQ(ng[r], ne[r]) << "graph and eager sampled differently from identical logits";
      }
      const Diff gh = compare(lh.data() + r * V, lg.data() + r * V, V);
      EXPECT_TRUE(agrees(gh)) << "step " << step << " row " << r << ": cuda argmax " << gh.arg_cuda << " host " << gh.arg_host;
      EXPECT_TRUE(ng[r] >= 0 && ng[r] < V);
    }
    last = nh;   // teacher-forced along the host's samples
  }
  EXPECT_GE(graph_ex->graphs_captured(), 1);
  EXPECT_TRUE(graph_ex->last_call().graph);
  const CallStats d = graph_ex->stats("decode");
  EXPECT_EQ(d.calls, 4);
  EXPECT_EQ(d.tokens, 4 * seqs);
  EXPECT_GT(d.gpu_ms, 0.0);
  std::printf("decode: %lld calls, %.3f ms GPU, %.1f tok/s\n", static_cast<long long>(d.calls), d.gpu_ms, d.tokens_per_second());
}

// A single sequence runs the bucket of exactly 1: graph and eager must be bit-identical, and
// sampling at temperature 1 must draw the same tokens at every step (the STEP compensation).
TEST(CudaExecutor, SingleSequenceGraphIsBitIdentical) {
  MM_PLAN_CASE(c);
  const auto& plan = c.plan;
  const std::string& weights = c.weights;
  const int64_t V = c.V;
  const int64_t msl = c.max_seq_len(32);
  auto graph = cuda_session(plan, weights, msl, 1, true);
  auto eager = cuda_session(plan, weights, msl, 1, false);
  ASSERT_TRUE(graph && eager);
  std::vector<int32_t> prompt = {1, 5, 9, 200 % static_cast<int32_t>(V), 7};
  int32_t tok = -1, tok2 = -1;
  ASSERT_TRUE(graph->prefill(0, prompt, Sampling{}, 0, nullptr, &tok).ok());
  ASSERT_TRUE(eager->prefill(0, prompt, Sampling{}, 0, nullptr, &tok2).ok());
  ASSERT_EQ(tok, tok2);
  const Sampling hot{1.0f, 0, 1.0f, 42};
  const int32_t slot = 0;
  for (int64_t step = 1; step <= 8; ++step) {
    std::vector<float> lg, le;
    std::vector<int32_t> ng, ne;
    ASSERT_TRUE(graph->decode({&slot, 1}, {&tok, 1}, {&hot, 1}, step, &lg, &ng).ok());
    ASSERT_TRUE(eager->decode({&slot, 1}, {&tok, 1}, {&hot, 1}, step, &le, &ne).ok());
    ASSERT_EQ(lg.size(), le.size());
    EXPECT_EQ(0, std::memcmp(lg.data(), le.data(), lg.size() * sizeof(float))) << "step " << step;
    EXPECT_EQ(ng[0], ne[0]) << "step " << step;
    tok = ng[0];
  }
}

// A session opened on one thread and used from another (mmrun serve's engine thread, a C API
// caller's worker): the CUDA context is current per thread, and the decode graph is captured and
// instantiated on the thread that first decodes. That failed with CUDA_ERROR_INVALID_CONTEXT
// before every Device call bound the context. The tokens must equal those of a session used on
// the thread that opened it.
TEST(CudaExecutor, SessionUsedFromAnotherThread) {
  MM_PLAN_CASE(c);
  const auto& plan = c.plan;
  const std::string& weights = c.weights;
  const int64_t V = c.V;
  const int64_t msl = c.max_seq_len(32);
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5 % static_cast<int32_t>(V), 9};
  auto run = [&](Session& s, std::vector<int32_t>* out) -> Status {
    int32_t tok = -1;
    if (Status st = s.prefill(0, prompt, Sampling{}, 0, nullptr, &tok); !st) return st;
    out->push_back(tok);
    const int32_t slot = 0;
    const Sampling g{};
    for (int64_t step = 1; step <= 6; ++step) {
      std::vector<int32_t> next;
      if (Status st = s.decode({&slot, 1}, {&tok, 1}, {&g, 1}, step, nullptr, &next); !st) return st;
      tok = next[0];
      out->push_back(tok);
    }
    return Status::success();
  };
  auto here = cuda_session(plan, weights, msl, 1, true);
  auto there = cuda_session(plan, weights, msl, 1, true);
  ASSERT_TRUE(here && there);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(run(*here, &a).ok());
  Status st = Status::success();
  std::thread worker([&] { st = run(*there, &b); });
  worker.join();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(a, b);
}

// Batched decode computes each sequence exactly as decoding it alone: several sequences of
// different lengths decode together (one graph bucket, the padded dummy row included), then each
// is replayed alone in a one-sequence session, and the greedy tokens must agree token for token.
// Every decode kernel computes a row (token) independently of the others in a fixed order, and
// the contexts stay under 64 keys so that attention uses one split in both (its split count
// depends on the batch size only from 64 keys on), so the logits are expected bit-identical too.
TEST(CudaExecutor, BatchedDecodeMatchesSingleSequenceDecode) {
  MM_PLAN_CASE(c);
  const auto& plan = c.plan;
  const std::string& weights = c.weights;
  const int64_t V = c.V;
  const int64_t seqs = std::min<int64_t>(5, c.max_batch);
  const int64_t msl = c.max_seq_len(48);
  const int64_t steps = 10;
  if (seqs < 2) GTEST_SKIP() << "skipped: the plan's max_batch is 1";
  auto batched = cuda_session(plan, weights, msl, seqs, true);
  auto single = cuda_session(plan, weights, msl, 1, true);
  ASSERT_TRUE(batched && single);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(seqs));
  std::vector<int32_t> slots, last(static_cast<size_t>(seqs));
  for (int32_t s = 0; s < seqs; ++s) {
    for (int i = 0; i < 3 + 5 * s; ++i) prompts[s].push_back(static_cast<int32_t>((i * 977 + 31 * s + 11) % V));
    ASSERT_TRUE(batched->prefill(s, prompts[s], Sampling{}, 0, nullptr, &last[s]).ok());
    slots.push_back(s);
  }
  std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(seqs));
  std::vector<std::vector<float>> logits(static_cast<size_t>(seqs));
  const std::vector<Sampling> greedy(static_cast<size_t>(seqs));
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<float> lg;
    std::vector<int32_t> next;
    ASSERT_TRUE(batched->decode(slots, last, greedy, step, &lg, &next).ok());
    for (int64_t r = 0; r < seqs; ++r) {
      tokens[r].push_back(next[r]);
      logits[r].insert(logits[r].end(), lg.begin() + r * V, lg.begin() + (r + 1) * V);
    }
    last = next;
  }
  for (int32_t s = 0; s < seqs; ++s) {
    ASSERT_TRUE(single->release(0).ok());
    int32_t tok = -1;
    ASSERT_TRUE(single->prefill(0, prompts[s], Sampling{}, 0, nullptr, &tok).ok());
    const int32_t slot = 0;
    const Sampling g{};
    for (int64_t step = 1; step <= steps; ++step) {
      std::vector<float> lg;
      std::vector<int32_t> next;
      ASSERT_TRUE(single->decode({&slot, 1}, {&tok, 1}, {&g, 1}, step, &lg, &next).ok());
      const Diff d = compare(lg.data(), logits[s].data() + (step - 1) * V, V);
      EXPECT_EQ(next[0], tokens[s][step - 1]) << "sequence " << s << " step " << step << " (logits rel_l2 " << d.rel_l2 << ")";
      EXPECT_EQ(d.max_abs, 0.0) << "sequence " << s << " step " << step << ": batched logits differ (rel_l2 " << d.rel_l2 << ")";
      tok = next[0];
      if (next[0] != tokens[s][step - 1]) break;
    }
  }
}

// The cuda loader's bytes on the device equal the host loader's, weight by weight: the device
// sink (pinned staging, strided row copies, upcasts through the pinned scratch) against memcpy,
// with O_DIRECT and through the page cache, several readers and small chunks that split rows.
TEST(CudaExecutor, StreamedWeightsEqualTheHostLoader) {
  MM_REQUIRE_CUDA();
  const std::string path = env("MM_TEST_PLAN");
  const std::string weights = env("MM_TEST_WEIGHTS", "random");
  if (path.empty() || weights == "random") GTEST_SKIP() << "skipped: needs MM_TEST_PLAN and a checkpoint in MM_TEST_WEIGHTS";
  auto plan = load_or_fail(path);
  ASSERT_TRUE(plan);
  auto want = load_host_weights(*plan, weights);
  ASSERT_TRUE(want.ok()) << want.error().message;
  for (IoMode io : {IoMode::AUTO, IoMode::BUFFERED}) {
    CudaOptions o;
    o.weights = weights;
    o.max_seq_len = std::min<int64_t>(plan->def().limits()->max_seq_len(), 64);
    o.load.chunk_bytes = 64 << 10;   // small chunks: many buffer switches and split rows even on a tiny model
    o.load.readers = 3;
    o.load.buffers = 4;
    o.load.io = io;
    auto ex = CudaExecutor::create(plan, o);
    ASSERT_TRUE(ex.ok()) << ex.error().message;
    for (size_t i = 0; i < want->buffers.size(); ++i) {
      if (!(*ex)->weight_device_ptr(i)) continue;
      std::vector<uint8_t> got(want->buffers[i].size());
      ASSERT_TRUE((*ex)->device().copy_to_host(got.data(), (*ex)->weight_device_ptr(i), got.size()).ok());
      EXPECT_EQ(0, std::memcmp(got.data(), want->ptr(i), got.size()))
          << plan->def().weights()->Get(i)->name()->str() << " (" << io_mode_name(io) << ")";
    }
    const WeightLoadStats& s = (*ex)->load_stats();
    std::printf("%s: loaded %.1f MiB in %.3f s (%d readers, %d of %d shards O_DIRECT), staging %.1f MiB, RSS before "
                "%.1f MiB, peak %.1f MiB\n",
                io_mode_name(io), s.file_bytes / 1048576.0, s.seconds, s.readers, s.direct_files, s.files,
                s.staging_bytes / 1048576.0, s.rss_before_kib / 1024.0, s.peak_rss_kib / 1024.0);
  }
}

// Random device weights load and run; the KV cache is sized from free memory.
TEST(CudaExecutor, RandomWeightsRunWithTheKvCacheSizedFromFreeMemory) {
  MM_REQUIRE_CUDA();
  const std::string path = env("MM_TEST_PLAN");
  if (path.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set";
  auto plan = load_or_fail(path);
  ASSERT_TRUE(plan);
  CudaOptions o;
  o.weights = "random";
  o.seed = 3;
  o.gpu_memory_utilization = 0.05;   // keep the test light on a shared GPU
  auto ex = CudaExecutor::create(plan, o);
  ASSERT_TRUE(ex.ok()) << ex.error().message;
  CudaExecutor* raw = ex->get();
  std::printf("[cuda] %s\n", raw->summary().c_str());
  EXPECT_GT(raw->max_seq_len(), 0);
  EXPECT_LE(raw->max_seq_len(), plan->def().limits()->max_seq_len());
  EXPECT_EQ(raw->load_stats().source, "random");
  const int64_t V = plan->def().model()->vocab_size();
  const int64_t msl = raw->max_seq_len();
  auto s = Session::create(plan, std::move(*ex), msl, 1);
  ASSERT_TRUE(s.ok()) << s.error().message;
  std::vector<int32_t> prompt(static_cast<size_t>(std::min<int64_t>(msl - 2, 12)), 1);
  std::vector<float> logits;
  int32_t next = -1;
  ASSERT_TRUE((*s)->prefill(0, prompt, Sampling{}, 0, &logits, &next).ok());
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(next >= 0 && next < V);
  const int32_t slot = 0;
  const Sampling greedy{};
  std::vector<int32_t> nexts;
  ASSERT_TRUE((*s)->decode({&slot, 1}, {&next, 1}, {&greedy, 1}, 1, &logits, &nexts).ok());
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(raw->stats("prefill").calls, 1);
  EXPECT_EQ(raw->stats("decode").calls, 1);
  EXPECT_GT(raw->stats("prefill").gpu_ms, 0.0);
}

// Configurations that cannot fit are refused with a message naming what and how much was free.
TEST(CudaExecutor, OutOfMemoryIsAClearError) {
  MM_REQUIRE_CUDA();
  const std::string path = env("MM_TEST_PLAN");
  if (path.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set";
  auto plan = load_or_fail(path);
  ASSERT_TRUE(plan);
  CudaOptions o;
  o.weights = "random";
  o.max_seq_len = int64_t{1} << 40;   // absurd: beyond any plan
  auto ex = CudaExecutor::create(plan, o);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.error().exit_code(), 1);
  EXPECT_NE(ex.error().message.find("--max-seq-len"), std::string::npos) << ex.error().message;

  // Occupy nearly all free memory, then ask for a plan: refused before anything is loaded.
  auto dev = Device::open(0);
  ASSERT_TRUE(dev.ok()) << dev.error().message;
  auto free_b = (*dev)->free_memory();
  ASSERT_TRUE(free_b.ok());
  void* hog = nullptr;
  for (uint64_t keep = uint64_t{64} << 20; !hog && keep < *free_b; keep *= 2) {
    auto p = (*dev)->alloc(*free_b - keep);
    if (p.ok()) hog = *p;
  }
  ASSERT_NE(hog, nullptr);
  o.max_seq_len = std::min<int64_t>(plan->def().limits()->max_seq_len(), 64);
  ex = CudaExecutor::create(plan, o);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.error().message.find("out of device memory"), std::string::npos) << ex.error().message;
  EXPECT_NE(ex.error().message.find("free"), std::string::npos) << ex.error().message;
  std::printf("refused: %s\n", ex.error().message.c_str());
  o.max_seq_len = 0;   // sized from free memory: same refusal
  ex = CudaExecutor::create(plan, o);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.error().message.find("out of device memory"), std::string::npos) << ex.error().message;
  ASSERT_TRUE((*dev)->free(hog).ok());
}

TEST(CudaExecutor, RefusesAWeightsDirectoryThatDoesNotMatch) {
  MM_REQUIRE_CUDA();
  const std::string path = env("MM_TEST_PLAN");
  if (path.empty()) GTEST_SKIP() << "skipped: MM_TEST_PLAN not set";
  auto plan = load_or_fail(path);
  ASSERT_TRUE(plan);
  CudaOptions o;
  o.weights = ::testing::TempDir() + "/no_such_checkpoint";
  o.max_seq_len = std::min<int64_t>(plan->def().limits()->max_seq_len(), 64);
  auto ex = make_cuda_executor(plan, o);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.error().exit_code(), 1);
  EXPECT_NE(ex.error().message.find("no_such_checkpoint"), std::string::npos) << ex.error().message;
}

// Decode speed of a (full-size) plan on random weights, at chosen batch sizes and context depths,
// without prefilling: the decode program reads whatever the KV cache holds (zeros), which costs
// the same bytes as a real context. Runs only with MM_BENCH_PLAN set; MM_BENCH_CASES lists
// "batch:depth" pairs (default "1:0,1:2048,1:16384,16:0"), MM_BENCH_STEPS the timed steps per case
// (default 32, after 4 untimed ones). Prints one line per case: the median step time on the GPU
// (events around inputs + graph + outputs) and tokens per second from it (batch / step).
TEST(CudaExecutorBench, DecodeTokensPerSecond) {
  MM_REQUIRE_CUDA();
  const std::string path = env("MM_BENCH_PLAN");
  if (path.empty()) GTEST_SKIP() << "skipped: MM_BENCH_PLAN not set (a plan to time decode steps of)";
  auto plan = load_or_fail(path);
  ASSERT_TRUE(plan);
  const std::string cases = env("MM_BENCH_CASES", "1:0,1:2048,1:16384,16:0");
  const int64_t steps = std::atoll(env("MM_BENCH_STEPS", "32").c_str());
  const int64_t V = plan->def().model()->vocab_size();
  const int64_t bs = plan->def().limits()->kv_block_size();
  const int64_t max_blocks = plan->max_blocks_per_seq();
  const int64_t max_batch = plan->def().limits()->max_batch();
  size_t at = 0;
  while (at < cases.size()) {
    const size_t comma = std::min(cases.find(',', at), cases.size());
    const std::string c = cases.substr(at, comma - at);
    at = comma + 1;
    const int64_t B = std::atoll(c.substr(0, c.find(':')).c_str());
    const int64_t depth = std::atoll(c.substr(c.find(':') + 1).c_str());
    ASSERT_TRUE(B >= 1 && B <= max_batch && depth >= 0) << c;
    const int64_t len = depth + steps + 8;
    const int64_t nb = (len + bs - 1) / bs;
    ASSERT_LE(nb, max_blocks) << "depth " << depth << " exceeds the plan's max_seq_len";
    CudaOptions o;
    o.weights = "random";
    o.max_seqs = B;
    o.max_seq_len = nb * bs;
    auto ex = CudaExecutor::create(plan, o);
    ASSERT_TRUE(ex.ok()) << ex.error().message;
    std::vector<int32_t> tokens(B), positions(B), slots(B), rows(B), top_k(B, 0), sampled(B);
    std::vector<int32_t> tables(static_cast<size_t>(max_batch * max_blocks), 0);
    std::vector<float> temperature(B, 0.f), top_p(B, 1.f);
    std::vector<uint64_t> seed(B, 0);
    for (int64_t b = 0; b < B; ++b) {
      slots[b] = static_cast<int32_t>(b);
      rows[b] = static_cast<int32_t>(b);
      for (int64_t i = 0; i < nb; ++i) tables[b * max_blocks + i] = static_cast<int32_t>(b * nb + i);
    }
    std::vector<double> ms;
    for (int64_t step = 0; step < steps + 4; ++step) {
      for (int64_t b = 0; b < B; ++b) {
        tokens[b] = static_cast<int32_t>((step * 7919 + b * 104729) % V);
        positions[b] = static_cast<int32_t>(depth + step);
      }
      CallIo io{tokens.data(), positions.data(), slots.data(), tables.data(), rows.data(), temperature.data(),
                top_k.data(), top_p.data(), seed.data(), nullptr, sampled.data()};
      CallDims d{B, B, B, depth + step + 1, step};
      Status st = (*ex)->run("decode", d, io);
      ASSERT_TRUE(st.ok()) << st.error().message;
      if (step >= 4) ms.push_back((*ex)->last_call().gpu_ms);
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    std::printf("[bench] batch %3lld depth %6lld: %.3f ms/step (min %.3f), %.1f tok/s  (%s)\n",
                static_cast<long long>(B), static_cast<long long>(depth), med, ms.front(), 1000.0 * B / med,
                (*ex)->summary().c_str());
  }
}

}  // namespace
}  // namespace mm::rt
