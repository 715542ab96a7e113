// `mmrun generate` as a library call (runtime/tooling/generate.h) on the tiny test plan with random
// weights on the host: ids out, logits dumps, teacher forcing, refusals with their exit codes.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mm/mm_runtime.h"
#include "runtime/tooling/generate.h"
#include "runtime/tooling/npy.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using test::TinyModel;

std::vector<int32_t> prompt(int n, int V) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((i * 37 + 5) % V);
  return p;
}

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_path = mm::test::temp_path("generate_test.mmp");
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
  o.dump_logits = mm::test::temp_path("generate_test.npy");
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
  o.dump_logits = mm::test::temp_path("forced.npy");
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
  if (!mm_cuda_device_available()) {
    // No driver or device here: --device cuda is a device error naming the driver.
    o.device = "cuda";
    EXPECT_EQ(run(nullptr, &err), 3);
    EXPECT_NE(err.find("CUDA"), std::string::npos) << err;
  }
  o.device = "host";
  o.weights = mm::test::temp_path("no-such-model");
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
