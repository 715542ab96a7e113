// The C API of include/mm/mm_runtime.h on the tiny test plan, host backend, random weights: plan
// info, sessions (prefill, batched decode, truncate, release, KV-block accounting), and the status
// codes and messages of refused calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mm/mm_runtime.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace {

using mm::rt::test::TinyModel;

// Frees the status and returns its code and message.
struct Outcome {
  mm_status_code code;
  std::string message;
};
Outcome take(mm_status st) {
  Outcome o{mm_status_get_code(st), mm_status_get_message(st)};
  mm_status_free(st);
  return o;
}

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = mm::rt::test::build_tiny_plan(model_);
    ASSERT_EQ(take(mm_plan_load_from_memory(bytes_.data(), bytes_.size(), "tiny.mmp", &plan_)).code, MM_STATUS_OK);
  }
  void TearDown() override {
    if (session_) mm_session_free(session_);
    mm_plan_free(plan_);
  }
  Outcome open(int32_t max_seqs, const char* weights = "random", const char* device = "host") {
    mm_session_options o{};
    o.weights = weights;
    o.device = device;
    o.max_seqs = max_seqs;
    o.seed = 3;
    o.threads = 1;
    return take(mm_session_init(plan_, &o, &session_));
  }
  TinyModel model_;
  std::vector<uint8_t> bytes_;
  mm_plan* plan_ = nullptr;
  mm_session* session_ = nullptr;
};

TEST_F(CApi, PlanInfoDescribesTheModelAndLimits) {
  mm_plan_info info;
  ASSERT_EQ(take(mm_plan_get_info(plan_, &info)).code, MM_STATUS_OK);
  EXPECT_STREQ(info.path, "tiny.mmp");
  EXPECT_EQ(info.vocab_size, model_.V);
  EXPECT_EQ(info.hidden_size, model_.H);
  EXPECT_EQ(info.num_layers, model_.L);
  EXPECT_EQ(info.max_seq_len, model_.max_seq_len);
  EXPECT_EQ(info.max_batch, model_.max_batch);
  EXPECT_EQ(info.max_prefill_tokens, model_.max_prefill_tokens);
  EXPECT_EQ(info.kv_block_size, model_.block);
  EXPECT_STREQ(info.kv_cache_dtype, "bf16");
  EXPECT_GT(info.weight_bytes, 0u);
  EXPECT_EQ(mm_plan_vocab_size(plan_), model_.V);
}

TEST_F(CApi, SessionPrefillDecodeTruncateRelease) {
  ASSERT_EQ(open(2).code, MM_STATUS_OK);
  mm_session_info info;
  ASSERT_EQ(take(mm_session_get_info(session_, &info)).code, MM_STATUS_OK);
  EXPECT_NE(std::string(info.backend).find("host"), std::string::npos);
  EXPECT_EQ(info.max_seq_len, model_.max_seq_len);
  EXPECT_EQ(info.max_seqs, 2);
  const int64_t blocks = info.kv_blocks_total;
  EXPECT_EQ(info.kv_blocks_free, blocks);

  const std::vector<int32_t> ids = {5, 42, 17, 9, 3, 88, 1, 60, 2, 7};  // two prefill chunks
  const mm_sampling greedy{0.0f, 0, 1.0f, 0};
  int32_t next = -1;
  std::vector<float> logits(static_cast<size_t>(model_.V));
  ASSERT_EQ(take(mm_session_prefill(session_, 0, ids.data(), 10, &greedy, 0, logits.data(), &next)).code, MM_STATUS_OK);
  EXPECT_EQ(mm_session_length(session_, 0), 10);
  EXPECT_EQ(next, static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
  ASSERT_EQ(take(mm_session_get_info(session_, &info)).code, MM_STATUS_OK);
  EXPECT_EQ(info.kv_blocks_free, blocks - 3);  // 10 tokens in blocks of 4

  // The same prompt in slot 1, then both decode together: identical rows.
  int32_t next1 = -1;
  ASSERT_EQ(take(mm_session_prefill(session_, 1, ids.data(), 10, &greedy, 0, nullptr, &next1)).code, MM_STATUS_OK);
  EXPECT_EQ(next1, next);
  const int32_t slots[2] = {0, 1}, toks[2] = {next, next};
  const mm_sampling samp[2] = {greedy, greedy};
  int32_t out[2];
  std::vector<float> both(2 * static_cast<size_t>(model_.V));
  ASSERT_EQ(take(mm_session_decode(session_, 2, slots, toks, samp, 1, both.data(), out)).code, MM_STATUS_OK);
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(0, std::memcmp(both.data(), both.data() + model_.V, sizeof(float) * model_.V));

  // Truncating to the first 6 tokens and prefilling the rest again reproduces the first logits.
  ASSERT_EQ(take(mm_session_truncate(session_, 0, 6)).code, MM_STATUS_OK);
  EXPECT_EQ(mm_session_length(session_, 0), 6);
  std::vector<float> again(static_cast<size_t>(model_.V));
  int32_t next2 = -1;
  ASSERT_EQ(take(mm_session_prefill(session_, 0, ids.data() + 6, 4, &greedy, 0, again.data(), &next2)).code,
            MM_STATUS_OK);
  EXPECT_EQ(next2, next);
  for (int64_t v = 0; v < model_.V; ++v) EXPECT_NEAR(again[v], logits[v], 1e-3f) << v;

  ASSERT_EQ(take(mm_session_release(session_, 0)).code, MM_STATUS_OK);
  ASSERT_EQ(take(mm_session_release(session_, 1)).code, MM_STATUS_OK);
  EXPECT_EQ(mm_session_length(session_, 0), 0);
  ASSERT_EQ(take(mm_session_get_info(session_, &info)).code, MM_STATUS_OK);
  EXPECT_EQ(info.kv_blocks_free, blocks);
}

TEST_F(CApi, RefusedCallsSayWhy) {
  EXPECT_EQ(open(1, "random", "tpu").code, MM_STATUS_INVALID_ARGUMENT);
  Outcome w = open(1, "/no/such/model");
  EXPECT_EQ(w.code, MM_STATUS_INVALID_WEIGHTS);
  EXPECT_NE(w.message.find("/no/such/model"), std::string::npos) << w.message;
  Outcome b = open(model_.max_batch + 1);
  EXPECT_NE(b.code, MM_STATUS_OK);
  EXPECT_NE(b.message.find("max_batch"), std::string::npos) << b.message;

  ASSERT_EQ(open(1).code, MM_STATUS_OK);
  const mm_sampling greedy{0.0f, 0, 1.0f, 0};
  const int32_t bad[1] = {static_cast<int32_t>(model_.V)};
  int32_t next;
  Outcome v = take(mm_session_prefill(session_, 0, bad, 1, &greedy, 0, nullptr, &next));
  EXPECT_EQ(v.code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(v.message.find("outside the vocabulary"), std::string::npos) << v.message;
  const int32_t ok[1] = {1};
  EXPECT_EQ(take(mm_session_prefill(session_, 5, ok, 1, &greedy, 0, nullptr, &next)).code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(take(mm_session_truncate(session_, 0, 3)).code, MM_STATUS_INVALID_ARGUMENT);  // longer than it is
  EXPECT_EQ(mm_session_length(session_, 7), -1);
  EXPECT_EQ(mm_session_length(nullptr, 0), -1);
  EXPECT_EQ(take(mm_plan_get_info(nullptr, nullptr)).code, MM_STATUS_INVALID_ARGUMENT);

  mm_plan* p = nullptr;
  Outcome missing = take(mm_plan_load("/no/such/plan.mmp", &p));
  EXPECT_EQ(missing.code, MM_STATUS_INVALID_PLAN);
  EXPECT_NE(missing.message.find("/no/such/plan.mmp"), std::string::npos) << missing.message;
  EXPECT_EQ(mm_status_get_code(nullptr), MM_STATUS_OK);
  EXPECT_STREQ(mm_status_get_message(nullptr), "");
}

TEST_F(CApi, OptionsOutOfRangeAreRefused) {
  // threads = 2^31 - 1 used to reach std::thread (std::system_error, abort); the same options
  // checks guard every caller of the C API, not only mmrun's flags.
  mm_session_options o{};
  o.weights = "random";
  o.device = "host";
  o.threads = 2147483647;
  Outcome t = take(mm_session_init(plan_, &o, &session_));
  EXPECT_EQ(t.code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(t.message.find("threads 2147483647 is outside [0, 1024]"), std::string::npos) << t.message;
  o.threads = 0;
  o.max_seq_len = -5;
  EXPECT_EQ(take(mm_session_init(plan_, &o, &session_)).code, MM_STATUS_INVALID_ARGUMENT);
  o.max_seq_len = 0;
  o.gpu_memory_utilization = 7.5;
  EXPECT_EQ(take(mm_session_init(plan_, &o, &session_)).code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(session_, nullptr);
}

// The measurement block: plan costs from the model shape and weights, host rates, load statistics,
// the page-cache state and the sequential read of the plan's shards.
TEST_F(CApi, MeasurementsDescribeThePlanTheHostAndTheLoad) {
  const TinyModel& m = model_;
  mm_plan_costs c;
  ASSERT_EQ(take(mm_plan_get_costs(plan_, &c)).code, MM_STATUS_OK);
  EXPECT_EQ(c.num_experts, m.E);
  EXPECT_EQ(c.top_k, m.TOPK);
  // w13 + w2, qweight (int4: K/8 int32 per column) and f16 scales (K/G per column), per layer.
  const uint64_t per_layer = m.E * ((m.H / 8) * 2 * m.I * 4 + (m.H / m.G) * 2 * m.I * 2 + (m.I / 8) * m.H * 4 + (m.I / m.G) * m.H * 2);
  EXPECT_EQ(c.expert_weight_bytes, per_layer * m.L);
  EXPECT_EQ(c.embedding_bytes, static_cast<uint64_t>(m.V * m.H * 2));
  EXPECT_EQ(c.embedding_row_bytes, static_cast<uint64_t>(m.H * 2));
  mm_plan_info info;
  ASSERT_EQ(take(mm_plan_get_info(plan_, &info)).code, MM_STATUS_OK);
  EXPECT_EQ(c.expert_weight_bytes + c.embedding_bytes + c.other_weight_bytes, info.weight_bytes);
  EXPECT_EQ(c.kv_bytes_per_token, static_cast<uint64_t>(m.L * 2 * m.NKV * m.D * 2));  // bf16 K and V
  const double q = m.NQ * m.D, kv = m.NKV * m.D;
  const double layer = 2.0 * m.H * (q + 2 * kv) + 2.0 * q * m.H + 2.0 * m.H * m.E + m.TOPK * 6.0 * m.H * m.I;
  EXPECT_DOUBLE_EQ(c.linear_flops_per_token, m.L * layer + 2.0 * m.H * m.V);
  EXPECT_DOUBLE_EQ(c.attention_flops_per_position, 4.0 * q * m.L);

  mm_device_measurement d;
  ASSERT_EQ(take(mm_measure_device("host", 1, &d)).code, MM_STATUS_OK);
  EXPECT_STREQ(d.device, "host (1 threads)");
  EXPECT_GT(d.copy_bytes_per_second, 1e8);
  EXPECT_EQ(d.copy_bytes, uint64_t{256} << 20);
  EXPECT_EQ(d.gemm_flops_per_second, 0.0);
  EXPECT_EQ(std::string(d.gemm).rfind("n/a: ", 0), 0u) << d.gemm;
  EXPECT_EQ(take(mm_measure_device("tpu", 0, &d)).code, MM_STATUS_INVALID_ARGUMENT);

  ASSERT_EQ(open(1).code, MM_STATUS_OK);
  mm_load_stats ls;
  ASSERT_EQ(take(mm_session_get_load_stats(session_, &ls)).code, MM_STATUS_OK);
  EXPECT_STREQ(ls.source, "random");
  EXPECT_EQ(ls.weight_bytes, info.weight_bytes);
  EXPECT_EQ(ls.file_bytes, 0u);
  EXPECT_GT(ls.peak_rss_kib, 0);

  // The tiny plan's weights name one shard, model.safetensors: any file of that name is read whole.
  const std::string dir = mm::test::temp_path("c_api_measure");
  ASSERT_EQ(std::system(("mkdir -p " + dir + " && head -c 3000000 /dev/zero > " + dir + "/model.safetensors").c_str()), 0);
  double resident = -1;
  ASSERT_EQ(take(mm_weights_page_cache(plan_, dir.c_str(), 1, &resident)).code, MM_STATUS_OK);
  EXPECT_GE(resident, 0.0);
  EXPECT_LE(resident, 1.0);
  mm_read_measurement r;
  ASSERT_EQ(take(mm_measure_read(plan_, dir.c_str(), &r)).code, MM_STATUS_OK);
  EXPECT_EQ(r.bytes, 3000000u);
  EXPECT_EQ(r.files, 1);
  EXPECT_GT(r.seconds, 0.0);
  Outcome missing = take(mm_measure_read(plan_, "/no/such/dir", &r));
  EXPECT_EQ(missing.code, MM_STATUS_INVALID_WEIGHTS);
  EXPECT_NE(missing.message.find("/no/such/dir/model.safetensors"), std::string::npos) << missing.message;
}

TEST_F(CApi, RefusesBadLoadOptions) {
  mm_session_options o{};
  o.weights = "random";
  o.device = "host";
  o.load_threads = -1;
  Outcome t = take(mm_session_init(plan_, &o, &session_));
  EXPECT_EQ(t.code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(t.message.find("load_threads"), std::string::npos) << t.message;
  o.load_threads = 2;
  o.load_io = "mmap";
  Outcome io = take(mm_session_init(plan_, &o, &session_));
  EXPECT_EQ(io.code, MM_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(io.message.find("auto, direct or buffered, got 'mmap'"), std::string::npos) << io.message;
}

}  // namespace
