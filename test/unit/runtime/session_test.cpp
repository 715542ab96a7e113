// Host executor + session on the tiny test plan (random weights), and `mmrun generate` as a
// library call: consistency of chunked prefill and decode, batching, fp8 KV, bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/src/generate.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/npy.h"
#include "runtime/src/session.h"
#include "test_plan.h"

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

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_path = ::testing::TempDir() + "/generate_test.mmp";
    auto bytes = test::build_tiny_plan(TinyModel{});
    std::ofstream(plan_path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    o.plan = plan_path;
    o.weights = "random";
    o.device = "host";
    o.prompt_ids = {1, 2, 3, 4, 5};
    o.max_new_tokens = 6;
    o.print_ids = true;
    o.ignore_eos = true;
  }
  int run(std::string* out_text = nullptr, std::string* err_text = nullptr) {
    std::ostringstream out, err;
    int rc = generate_command(o, out, err);
    if (out_text) *out_text = out.str();
    if (err_text) *err_text = err.str();
    return rc;
  }
  std::string plan_path;
  GenerateOptions o;
};

TEST_F(GenerateTest, GeneratesAndDumpsLogits) {
  o.dump_logits = ::testing::TempDir() + "/generate_test.npy";
  std::string out, err;
  ASSERT_EQ(run(&out, &err), 0) << err;
  EXPECT_EQ(out.front(), '[');
  EXPECT_EQ(std::count(out.begin(), out.end(), ','), 5) << out;
  std::ifstream f(o.dump_logits, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string header = npy_header_f32({6, 96});
  ASSERT_EQ(data.size(), header.size() + 6 * 96 * 4);
  EXPECT_EQ(data.substr(0, header.size()), header);
  // Row i is the distribution token i was chosen from (greedy: its argmax).
  std::vector<float> logits(6 * 96);
  std::memcpy(logits.data(), data.data() + header.size(), logits.size() * 4);
  std::vector<int> ids;
  std::stringstream ss(out.substr(1));
  for (int v; ss >> v;) {
    ids.push_back(v);
    ss.ignore(2, ',');
  }
  ASSERT_EQ(ids.size(), 6u);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(std::max_element(logits.begin() + i * 96, logits.begin() + (i + 1) * 96) - (logits.begin() + i * 96), ids[i]);
  // Deterministic.
  std::string again;
  ASSERT_EQ(run(&again), 0);
  EXPECT_EQ(out, again);
}

TEST_F(GenerateTest, TeacherForcingRecordsEveryStep) {
  std::string free_run;
  ASSERT_EQ(run(&free_run), 0);
  o.force_ids = {7, 8, 9, 10};
  o.dump_logits = ::testing::TempDir() + "/forced.npy";
  std::string forced;
  ASSERT_EQ(run(&forced), 0);
  EXPECT_EQ(std::count(forced.begin(), forced.end(), ','), 3) << forced;
  // Step 0 comes from the prompt alone: the same choice as the free run.
  EXPECT_EQ(forced.substr(0, forced.find(',')), free_run.substr(0, free_run.find(',')));
  std::ifstream f(o.dump_logits, std::ios::binary | std::ios::ate);
  EXPECT_EQ(static_cast<size_t>(f.tellg()), npy_header_f32({4, 96}).size() + 4 * 96 * 4);
}

TEST_F(GenerateTest, RefusesBadInputsWithExitCodes) {
  std::string err;
  o.prompt_ids = {1, 96};
  EXPECT_EQ(run(nullptr, &err), 1);
  EXPECT_NE(err.find("id 96 (item 1) is outside the vocabulary [0, 96)"), std::string::npos) << err;
  o.prompt_ids = prompt(20, 96);
  o.max_seq_len = 10;
  EXPECT_EQ(run(nullptr, &err), 1);
  EXPECT_NE(err.find("the prompt has 20 tokens, longer than the maximum sequence length 10"), std::string::npos) << err;
  o.max_seq_len = 1000;
  EXPECT_EQ(run(nullptr, &err), 1);
  EXPECT_NE(err.find("exceeds the plan's limit 64"), std::string::npos) << err;
  o.max_seq_len = 0;
  o.prompt_ids = {1, 2};
  o.dump_logits = "/nonexistent-dir/x.npy";
  EXPECT_EQ(run(nullptr, &err), 1);
  EXPECT_NE(err.find("/nonexistent-dir/x.npy: cannot write"), std::string::npos) << err;
  o.dump_logits.clear();
  if (!cuda_device_present()) {
    // No driver or device here: --device cuda is a device error naming the driver.
    o.device = "cuda";
    EXPECT_EQ(run(nullptr, &err), 3);
    EXPECT_NE(err.find("CUDA"), std::string::npos) << err;
  }
  o.device = "host";
  o.weights = ::testing::TempDir() + "/no-such-model";
  EXPECT_EQ(run(nullptr, &err), 1);
  EXPECT_NE(err.find("does not match the plan"), std::string::npos) << err;
  o.weights = "random";
  o.plan = plan_path + ".missing";
  EXPECT_EQ(run(nullptr, &err), 1);
}

TEST(IdList, Parses) {
  std::vector<int32_t> ids;
  std::string err;
  EXPECT_TRUE(parse_id_list("1, 2,3", &ids, &err));
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(parse_id_list("1,,2", &ids, &err));
  EXPECT_FALSE(parse_id_list("1,x", &ids, &err));
  EXPECT_NE(err.find("'x' (item 1)"), std::string::npos);
  EXPECT_FALSE(parse_id_list("", &ids, &err));
}

TEST(Npy, HeaderIsAlignedAndDescribesTheArray) {
  const std::string h = npy_header_f32({3, 5});
  EXPECT_EQ(h.size() % 64, 0u);
  EXPECT_EQ(h.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }"), std::string::npos);
  EXPECT_EQ(h.back(), '\n');
  EXPECT_EQ(static_cast<size_t>(static_cast<uint8_t>(h[8]) | (static_cast<uint8_t>(h[9]) << 8)), h.size() - 10);
  EXPECT_NE(npy_header_f32({7}).find("'shape': (7,)"), std::string::npos);
}

}  // namespace
}  // namespace mm::rt
