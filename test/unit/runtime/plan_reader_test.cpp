// Plan reader: the valid test plan loads; each corruption is refused with a clear message.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/plan_reader.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using test::TinyModel;

Expected<std::shared_ptr<const Plan>> load(const std::vector<uint8_t>& b) {
  return load_plan_from_memory(b.data(), b.size(), "t.mmp");
}

std::string load_error(const std::vector<uint8_t>& b) {
  auto p = load(b);
  EXPECT_FALSE(p.ok());
  if (p.ok()) return "";
  EXPECT_EQ(p.error().exit_code(), 1);
  return p.error().message;
}

TEST(PlanReader, LoadsTheTinyPlan) {
  auto bytes = test::build_tiny_plan(TinyModel{});
  auto p = load(bytes);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ((*p)->def().model()->num_layers(), 2);
  EXPECT_EQ((*p)->program("decode").launches()->size(), 1u + 2 * 10 + 3);   // attention: split + combine
  EXPECT_EQ((*p)->program("prefill").launches()->size(), 1u + 2 * 12 + 3);
  EXPECT_EQ((*p)->max_blocks_per_seq(), 16);
}

TEST(PlanReader, LoadsFromAFile) {
  auto bytes = test::build_tiny_plan(TinyModel{});
  const std::string path = mm::test::temp_path("plan_reader_test.mmp");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto p = load_plan(path);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto missing = load_plan(path + ".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
}

TEST(PlanReader, RejectsTruncatedFiles) {
  auto bytes = test::build_tiny_plan(TinyModel{});
  for (size_t keep : {size_t{0}, size_t{4}, size_t{7}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 8}) {
    std::vector<uint8_t> t(bytes.begin(), bytes.begin() + keep);
    std::string msg = load_error(t);
    EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("not a plan") != std::string::npos) << keep << ": " << msg;
  }
}

TEST(PlanReader, RejectsAWrongIdentifier) {
  auto bytes = test::build_tiny_plan(TinyModel{});
  bytes[4] = 'X';
  EXPECT_NE(load_error(bytes).find("MMP1"), std::string::npos);
}

TEST(PlanReader, BitFlipsNeverCrashAndMostAreRefused) {
  // Every flip is either refused or yields a plan that still passes every semantic check (a flip
  // in a cubin byte or a float is undetectable by design). Never a crash.
  auto bytes = test::build_tiny_plan(TinyModel{});
  int refused = 0, total = 0;
  for (size_t i = 0; i < bytes.size(); i += 7) {
    auto b = bytes;
    b[i] ^= 0x80;
    auto p = load(b);
    ++total;
    refused += !p.ok();
  }
  EXPECT_GT(refused, 0);
  EXPECT_LE(refused, total);
  // A flipped root offset is always caught.
  auto b = bytes;
  b[1] ^= 0x40;
  EXPECT_FALSE(load(b).ok());
}

TEST(PlanReader, RejectsANewerSchemaVersion) {
  TinyModel m;
  m.schema_version = plan::kPlanSchemaVersion + 1;
  std::string msg = load_error(test::build_tiny_plan(m));
  EXPECT_NE(msg.find("schema version " + std::to_string(plan::kPlanSchemaVersion + 1) + " is newer"), std::string::npos) << msg;
}

TEST(PlanReader, RejectsAnOlderSchemaVersion) {
  TinyModel m;
  m.schema_version = 0;
  EXPECT_NE(load_error(test::build_tiny_plan(m)).find("older"), std::string::npos);
}

TEST(PlanReader, ArchAvailability) {
  TinyModel m;
  m.targets = {"sm_90", "sm_121"};
  auto p = load(test::build_tiny_plan(m));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(check_plan_arch(**p, 9, 0).ok());
  EXPECT_TRUE(check_plan_arch(**p, 12, 1).ok());
  Status st = check_plan_arch(**p, 8, 0);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().exit_code(), 1);
  EXPECT_NE(st.error().message.find("no cubin for this device (sm_80)"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("sm_90, sm_121"), std::string::npos);
}

// Patches a plan through the object API-free way: rebuild with a modified model.
TEST(PlanReader, RejectsBadLimits) {
  TinyModel m;
  m.block = 5000;  // above the 4096 cap
  EXPECT_NE(load_error(test::build_tiny_plan(m)).find("kv_block_size"), std::string::npos);
}

TEST(PlanReader, RejectsWeightSizeMismatch) {
  test::WeightSpec w{"w", plan::DType::BF16, {4, 8}, plan::WeightTransform::COPY,
                     {{"t", "model.safetensors", 8, 64, plan::DType::BF16, {4, 8}}}};
  EXPECT_TRUE(load(test::build_weights_plan({w})).ok());
  auto bad = w;
  bad.sources[0].nbytes = 60;
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("does not match shape"), std::string::npos);
  bad = w;
  bad.sources[0].file = "../etc/passwd";
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("relative path inside"), std::string::npos);
  bad = w;
  bad.sources[0].dtype = plan::DType::F16;
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("does not convert"), std::string::npos);
  bad = w;
  bad.transform = plan::WeightTransform::STACK_EXPERTS;
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("STACK_EXPERTS needs 4 sources"), std::string::npos);
  bad = w;
  bad.transform = plan::WeightTransform::CONCAT_N;
  bad.sources.push_back(bad.sources[0]);
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("CONCAT_N"), std::string::npos);
}

// Strips of 32 columns (QuantLayout STRIPS32) are for int4 qweights whose sources bring whole
// strips; anything else would make the loader's copies run past the weight.
TEST(PlanReader, RejectsAStrips32LayoutItCannotLoad) {
  test::WeightSpec w{"qw", plan::DType::I32, {4, 64}, plan::WeightTransform::COPY,
                     {{"t", "model.safetensors", 8, 1024, plan::DType::I32, {4, 64}}}};
  w.role = plan::WeightRole::QWEIGHT;
  w.qlayout = plan::QuantLayout::STRIPS32;
  EXPECT_TRUE(load(test::build_weights_plan({w})).ok());
  auto bad = w;
  bad.role = plan::WeightRole::SCALES;
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("STRIPS32 is for I32 QWEIGHT matrices"), std::string::npos);
  bad = w;
  bad.shape = {2, 2, 2, 32};
  bad.sources[0].shape = {2, 2, 2, 32};
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("needs a [K/8, N] or [E, K/8, N] weight, got [2, 2, 2, 32]"), std::string::npos);
  bad = w;
  bad.shape = {8, 32};
  bad.sources[0].shape = {8, 32};
  bad.transform = plan::WeightTransform::CONCAT_N;
  bad.concat_axis = 1;
  bad.sources = {{"t1", "model.safetensors", 8, 512, plan::DType::I32, {8, 16}},
                 {"t2", "model.safetensors", 520, 512, plan::DType::I32, {8, 16}}};
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("needs whole strips of 32 columns, the source has 16"),
            std::string::npos);
  bad = w;
  bad.qlayout = static_cast<plan::QuantLayout>(7);
  EXPECT_NE(load_error(test::build_weights_plan({bad})).find("unknown qlayout 7"), std::string::npos);
}

TEST(PlanReader, RejectsAMisalignedVectorOfLongs) {
  // flatbuffers 2.0 verifies only the 4-byte alignment of a vector's length: a shape vector moved
  // by 4 bytes passes it, and reading its int64 elements was a misaligned load (fuzz_plan, UBSan).
  test::WeightSpec w{"w", plan::DType::BF16, {2, 4}, plan::WeightTransform::COPY,
                     {{"t", "model.safetensors", 8, 16, plan::DType::BF16, {2, 4}}}};
  auto bytes = test::build_weights_plan({w});
  const auto* weight = reinterpret_cast<const flatbuffers::Table*>(plan::GetPlanDef(bytes.data())->weights()->Get(0));
  const uint8_t* field = weight->GetAddressOf(plan::WeightDef::VT_SHAPE);
  ASSERT_NE(field, nullptr);
  uint32_t off = 0;
  std::memcpy(&off, field, 4);
  off += 4;  // now the length is the low half of shape[0] (2) and the elements start 4 bytes late
  std::memcpy(bytes.data() + (field - bytes.data()), &off, 4);
  ASSERT_TRUE(plan::seal_plan(bytes.data(), bytes.size()));
  EXPECT_NE(load_error(bytes).find("weights[0].shape is not 8-byte aligned"), std::string::npos);
}

// Expert parallelism (docs/parallel.md): ep must divide the experts and be 1 or tp, and a plan of
// max(tp, ep) ranks needs every rank's programs.
TEST(PlanReader, RejectsExpertParallelHeadersTheLayoutDoesNotAllow) {
  struct Case { int tp, ep; const char* want; };
  const Case cases[] = {
      {1, 3, "ep = 3 must be in [1, 16], divide num_experts and be 1 or tp (1)"},
      {1, 17, "ep = 17 must be in [1, 16]"},
      {2, 4, "ep = 4 must be in [1, 16], divide num_experts and be 1 or tp (2)"},
      {1, 2, "the plan has no 'prefill' program for rank 1"},
  };
  for (const Case& c : cases) {
    TinyModel m;
    m.tp = c.tp;
    m.ep = c.ep;
    std::string msg = load_error(test::build_tiny_plan(m));
    EXPECT_NE(msg.find(c.want), std::string::npos) << c.tp << " x " << c.ep << ": " << msg;
  }
}

TEST(PlanReader, RejectsLaunchCorruptions) {
  const std::pair<const char*, const char*> cases[] = {
      {"operand_count", "takes 5 operands"},
      {"arena", "exceeds arena_bytes"},
      {"weight_index", "weight index 9999 out of range"},
      {"param", "missing parameter V"},
      {"kv_layer", "KV layer 2 out of range"},
      {"no_decode", "no 'decode' program"},
      {"kernel_index", "kernel index 999 out of range"},
  };
  for (auto [corrupt, want] : cases) {
    TinyModel m;
    m.corrupt = corrupt;
    std::string msg = load_error(test::build_tiny_plan(m));
    EXPECT_NE(msg.find(want), std::string::npos) << corrupt << ": " << msg;
  }
}

}  // namespace
}  // namespace mm::rt
