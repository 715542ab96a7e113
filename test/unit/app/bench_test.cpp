// `mmrun bench` as a library call (runtime/tooling/bench.h) on the tiny test plan, host backend:
// the JSON and table of the generation benchmark (every batch and depth, mean ± sd over the runs,
// bytes per token and the decode roofline by the formula of bench.h), the load benchmark on a
// shard written for the plan, and the refusals with their exit codes.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "mm/mm_runtime.h"
#include "runtime/src/plan_reader.h"
#include "runtime/tooling/bench.h"
#include "support/safetensors_writer.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using test::TinyModel;

// With `weights_dir`: the plan records that checkpoint's model_hash, as mmc would.
void write_plan(const std::string& path, const TinyModel& m, const std::string& weights_dir = "") {
  auto bytes = test::build_tiny_plan(m);
  if (!weights_dir.empty()) test::stamp_model_hash(&bytes, weights_dir);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_path = mm::test::temp_path("bench_test.mmp");
    write_plan(plan_path, model);
    o.plan = plan_path;
    o.weights = "random";
    o.device = "host";
    o.threads = 1;
    o.batches = {1, 3};
    o.depths = {9, 0};   // 9 > the plan's prefill chunk of 8: the depth is prefilled in two calls
    o.pp = 10;
    o.tg = 3;
    o.runs = 2;
  }
  int run(std::string* out_text, std::string* err_text) {
    std::ostringstream out, err;
    const int rc = bench_command(o, out, err);
    *out_text = out.str();
    *err_text = err.str();
    return rc;
  }
  TinyModel model;
  std::string plan_path;
  BenchOptions o;
};

TEST_F(BenchTest, ReportsEveryBatchAndDepthWithItsRoofline) {
  o.json = true;
  std::string out, err;
  ASSERT_EQ(run(&out, &err), 0) << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["backend"].get<std::string>().rfind("host", 0), 0u);
  EXPECT_EQ(j["gemm_flops_per_second"], nullptr);
  EXPECT_EQ(j["gemm"].get<std::string>().rfind("n/a: ", 0), 0u);
  EXPECT_EQ(j["load"]["source"], "random");
  const double bw = j["copy_bytes_per_second"].get<double>();
  ASSERT_GT(bw, 0);
  const auto& c = j["costs"];
  const auto& results = j["results"];
  ASSERT_EQ(results.size(), 4u);
  const std::pair<int, int> order[] = {{1, 0}, {1, 9}, {3, 0}, {3, 9}};
  for (size_t i = 0; i < 4; ++i) {
    const auto& r = results[i];
    const int B = order[i].first, d = order[i].second;
    EXPECT_EQ(r["batch"], B);
    EXPECT_EQ(r["depth"], d);
    for (const char* key : {"prefill_tokens_per_second", "ttft_ms", "decode_tokens_per_second"}) {
      ASSERT_EQ(r[key]["values"].size(), 2u) << key;
      EXPECT_GT(r[key]["mean"].get<double>(), 0) << key;
      EXPECT_GE(r[key]["sd"].get<double>(), 0) << key;
    }
    // bench.h: every non-expert weight, one embedding row per sequence, the expected distinct
    // experts of B tokens, each sequence's KV at the decode's mean context, divided by B.
    const double E = c["num_experts"].get<double>(), k = c["top_k"].get<double>();
    const double step = c["other_weight_bytes"].get<double>() + B * c["embedding_row_bytes"].get<double>() +
                        c["expert_weight_bytes"].get<double>() * (1 - std::pow(1 - k / E, B)) +
                        B * c["kv_bytes_per_token"].get<double>() * (d + 10 + 1.5);
    EXPECT_NEAR(r["decode_bytes_per_token"].get<double>(), step / B, 1e-6 * step);
    EXPECT_NEAR(r["decode_roofline_tokens_per_second"].get<double>(), bw * B / step, 1e-6 * bw * B / step);
    EXPECT_NEAR(r["decode_roofline_fraction"].get<double>(),
                r["decode_tokens_per_second"]["mean"].get<double>() / r["decode_roofline_tokens_per_second"].get<double>(),
                1e-9);
    EXPECT_EQ(r["prefill_roofline_tokens_per_second"], nullptr);  // no GEMM library on the host
    EXPECT_NEAR(r["prefill_flops_per_token"].get<double>(),
                c["linear_flops_per_token"].get<double>() + c["attention_flops_per_position"].get<double>() * (d + 5.0),
                1.0);
  }
  // Three sequences at once read fewer bytes per token than one (weights shared by the batch).
  EXPECT_LT(results[2]["decode_bytes_per_token"].get<double>(), results[0]["decode_bytes_per_token"].get<double>());
}

TEST_F(BenchTest, PrintsTheTable) {
  o.batches = {2};
  o.depths = {0};
  o.runs = 1;
  std::string out, err;
  ASSERT_EQ(run(&out, &err), 0) << err;
  EXPECT_NE(out.find("| batch | depth | test | tok/s | TTFT ms | cost/token | roofline tok/s | % of roofline |"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("| 2 | 0 | pp10 | "), std::string::npos) << out;
  EXPECT_NE(out.find("| 2 | 0 | tg3 | "), std::string::npos) << out;
  EXPECT_NE(out.find("copy bandwidth: "), std::string::npos) << out;
  EXPECT_NE(out.find("bf16 GEMM: n/a: "), std::string::npos) << out;
}

TEST_F(BenchTest, LoadReportsTheRateNextToTheRawRead) {
  // A shard written for the plan: its tensor table, real offsets.
  auto bytes = test::build_tiny_plan(model);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "tiny");
  ASSERT_TRUE(plan.ok());
  std::vector<SafetensorsEntry> entries;
  for (const plan::WeightDef* w : *(*plan)->def().weights()) {
    const plan::TensorRefDef& s = *w->sources()->Get(0);
    const mm::DType dt = s.dtype() == plan::DType::I32 ? mm::DType::I32
                         : s.dtype() == plan::DType::F16 ? mm::DType::F16
                         : s.dtype() == plan::DType::F32 ? mm::DType::F32 : mm::DType::BF16;
    entries.push_back({s.name()->str(), dt, std::vector<int64_t>(s.shape()->begin(), s.shape()->end())});
  }
  auto layout = plan_safetensors(entries, {{"format", "pt"}});
  ASSERT_TRUE(layout.ok());
  const std::string dir = mm::test::temp_path("bench_test_model");
  ::mkdir(dir.c_str(), 0755);
  auto writer = SafetensorsFileWriter::create(dir + "/model.safetensors", *layout);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::vector<uint8_t> data(layout->nbytes[i], static_cast<uint8_t>(i));
    ASSERT_TRUE(writer->write_data(i, 0, data.data(), data.size()).ok());
    model.source_offsets[entries[i].name] = layout->offsets[i];
  }
  ASSERT_TRUE(writer->close().ok());
  write_plan(plan_path, model, dir);

  o.weights = dir;
  o.load = true;
  o.json = true;
  std::string out, err;
  ASSERT_EQ(run(&out, &err), 0) << err;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const auto& r : j["runs"]) {
    EXPECT_EQ(r["raw_bytes"].get<uint64_t>(), layout->file_size);
    EXPECT_GT(r["load_file_bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(r["raw_gb_per_second"].get<double>(), 0);
    EXPECT_GT(r["load_gb_per_second"].get<double>(), 0);
    EXPECT_NEAR(r["load_over_raw"].get<double>(),
                r["load_gb_per_second"].get<double>() / r["raw_gb_per_second"].get<double>(), 1e-9);
    EXPECT_GE(r["reader_threads"].get<int>(), 1);
    EXPECT_EQ(r["files"], 1);
  }
  EXPECT_EQ(j["load_gb_per_second"]["values"].size(), 2u);

  o.json = false;
  o.runs = 1;
  ASSERT_EQ(run(&out, &err), 0) << err;
  EXPECT_NE(out.find("| run | raw read GB/s | load GB/s | load / raw |"), std::string::npos) << out;
  EXPECT_NE(out.find("% of the raw sequential read"), std::string::npos) << out;
}

TEST_F(BenchTest, RefusesWhatThePlanCannotRun) {
  std::string out, err;
  o.batches = {1, 5};
  EXPECT_EQ(run(&out, &err), 1);
  EXPECT_NE(err.find("--batch 5 exceeds the plan's max_batch 4"), std::string::npos) << err;
  o.batches = {1};
  o.depths = {60};
  EXPECT_EQ(run(&out, &err), 1);
  EXPECT_NE(err.find("depth 60 + pp 10 + tg 3 = 73 tokens exceeds the plan's max_seq_len 64"), std::string::npos)
      << err;
  o.depths = {0};
  o.load = true;
  EXPECT_EQ(run(&out, &err), 2);
  EXPECT_NE(err.find("--load measures reading a checkpoint"), std::string::npos) << err;
  o.load = false;
  o.runs = 0;
  EXPECT_EQ(run(&out, &err), 2);
  o.runs = 1;
  o.batches = {0};
  EXPECT_EQ(run(&out, &err), 2);
  o.batches = {1};
  o.plan = "/no/such/plan.mmp";
  EXPECT_EQ(run(&out, &err), 1);
  EXPECT_NE(err.find("/no/such/plan.mmp"), std::string::npos) << err;
}

TEST(BenchParse, SizeLists) {
  std::vector<int64_t> v;
  std::string e;
  ASSERT_TRUE(parse_size_list(" 1, 4,16", &v, &e));
  EXPECT_EQ(v, (std::vector<int64_t>{1, 4, 16}));
  EXPECT_FALSE(parse_size_list("1,x", &v, &e));
  EXPECT_NE(e.find("'x' (item 1)"), std::string::npos) << e;
  EXPECT_FALSE(parse_size_list("-2", &v, &e));
  EXPECT_FALSE(parse_size_list("1,,2", &v, &e));
}

}  // namespace
}  // namespace mm::rt
