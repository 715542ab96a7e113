// Weights binder: the plan's tensor table against real safetensors shards, the load-time
// transforms, and the mismatch errors.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <map>

#include "codegen/reference/reference.h"
#include "support/safetensors_writer.h"
#include "runtime/src/weight_stream.h"
#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/weights.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using plan::DType;
using plan::WeightTransform;

struct Fixture {
  std::string dir;
  std::map<std::string, test::WeightSpec::Source> src;  // by tensor name
};

// Writes one shard with the given int32/16-bit tensors; returns each tensor's plan source.
Fixture write_checkpoint(const std::string& name, const std::map<std::string, std::pair<mm::DType, std::vector<int64_t>>>& tensors,
                         const std::map<std::string, std::vector<uint8_t>>& data) {
  Fixture f;
  f.dir = mm::test::temp_path("weights_test_") + name;
  ::mkdir(f.dir.c_str(), 0755);
  std::vector<SafetensorsEntry> entries;
  for (auto& [n, t] : tensors) entries.push_back({n, t.first, t.second});
  auto layout = plan_safetensors(entries, {{"format", "pt"}});
  EXPECT_TRUE(layout.ok());
  auto w = SafetensorsFileWriter::create(f.dir + "/model.safetensors", *layout);
  EXPECT_TRUE(w.ok()) << w.error().message;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& bytes = data.at(entries[i].name);
    EXPECT_EQ(bytes.size(), layout->nbytes[i]);
    EXPECT_TRUE(w->write_data(i, 0, bytes.data(), bytes.size()).ok());
    DType dt = entries[i].dtype == mm::DType::I32 ? DType::I32
               : entries[i].dtype == mm::DType::F16 ? DType::F16 : DType::BF16;
    f.src[entries[i].name] = {entries[i].name, "model.safetensors", layout->offsets[i], layout->nbytes[i], dt, entries[i].shape};
  }
  EXPECT_TRUE(w->close().ok());
  return f;
}

std::vector<uint8_t> i32_bytes(std::vector<int32_t> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<uint8_t> u16_bytes(std::vector<uint16_t> v) {
  std::vector<uint8_t> b(v.size() * 2);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    using mm::DType;
    fx = write_checkpoint(
        "main",
        {{"a", {DType::BF16, {2, 4}}}, {"q1", {DType::I32, {2, 3}}}, {"q2", {DType::I32, {2, 2}}},
         {"w1_0", {DType::I32, {2, 2}}}, {"w3_0", {DType::I32, {2, 2}}}, {"w1_1", {DType::I32, {2, 2}}},
         {"w3_1", {DType::I32, {2, 2}}}, {"b", {DType::F16, {3}}}, {"z", {DType::I32, {2, 2}}},
         {"zbad", {DType::I32, {2, 2}}}},
        {{"a", u16_bytes({1, 2, 3, 4, 5, 6, 7, 8})},
         {"q1", i32_bytes({1, 2, 3, 4, 5, 6})},
         {"q2", i32_bytes({7, 8, 9, 10})},
         {"w1_0", i32_bytes({100, 101, 102, 103})},
         {"w3_0", i32_bytes({300, 301, 302, 303})},
         {"w1_1", i32_bytes({110, 111, 112, 113})},
         {"w3_1", i32_bytes({310, 311, 312, 313})},
         {"b", u16_bytes({ref::f32_to_f16(1.5f), ref::f32_to_f16(-2.0f), ref::f32_to_f16(0.25f)})},
         {"z", i32_bytes({0x77777777, 0x77777777, 0x77777777, 0x77777777})},
         {"zbad", i32_bytes({0x77777777, 0x77777777, 0x77770777, 0x77777777})}});
  }
  test::WeightSpec spec(const std::string& name, DType dt, std::vector<int64_t> shape, WeightTransform t,
                        std::vector<std::string> sources) {
    test::WeightSpec w{name, dt, shape, t, {}};
    // As the compiler records it: 16-bit [N, K] matrices along the first dim, quantized tensors
    // along the last.
    if (t == WeightTransform::CONCAT_N) w.concat_axis = dt == DType::BF16 ? 0 : static_cast<int>(shape.size()) - 1;
    for (auto& s : sources) w.sources.push_back(fx.src.at(s));
    return w;
  }
  Expected<HostWeights> load(const std::vector<test::WeightSpec>& ws, std::shared_ptr<const Plan>* keep = nullptr) {
    auto bytes = test::build_weights_plan(ws);
    test::stamp_model_hash(&bytes, fx.dir);
    auto p = load_plan_from_memory(bytes.data(), bytes.size(), "w.mmp");
    EXPECT_TRUE(p.ok()) << p.error().message;
    if (keep) *keep = *p;
    return load_host_weights(**p, fx.dir);
  }
  Fixture fx;
};

TEST_F(WeightsTest, AppliesTheLoadTimeTransforms) {
  auto hw = load({spec("a", DType::BF16, {2, 4}, WeightTransform::COPY, {"a"}),
                  spec("qkv", DType::I32, {2, 5}, WeightTransform::CONCAT_N, {"q1", "q2"}),
                  spec("w13", DType::I32, {2, 2, 4}, WeightTransform::STACK_EXPERTS_W13, {"w1_0", "w3_0", "w1_1", "w3_1"}),
                  spec("w1s", DType::I32, {2, 2, 2}, WeightTransform::STACK_EXPERTS, {"w1_0", "w1_1"}),
                  spec("b", DType::F32, {3}, WeightTransform::UPCAST_F32, {"b"}),
                  spec("z", DType::I32, {2, 2}, WeightTransform::CHECK_ZEROS, {"z"})});
  ASSERT_TRUE(hw.ok()) << hw.error().message;
  auto i32 = [&](size_t w) { return static_cast<const int32_t*>(hw->ptr(w)); };
  EXPECT_EQ(0, std::memcmp(hw->ptr(0), u16_bytes({1, 2, 3, 4, 5, 6, 7, 8}).data(), 16));
  EXPECT_EQ(std::vector<int32_t>(i32(1), i32(1) + 10), (std::vector<int32_t>{1, 2, 3, 7, 8, 4, 5, 6, 9, 10}));
  EXPECT_EQ(std::vector<int32_t>(i32(2), i32(2) + 16),
            (std::vector<int32_t>{100, 101, 300, 301, 102, 103, 302, 303, 110, 111, 310, 311, 112, 113, 312, 313}));
  EXPECT_EQ(std::vector<int32_t>(i32(3), i32(3) + 8), (std::vector<int32_t>{100, 101, 102, 103, 110, 111, 112, 113}));
  const float* b = static_cast<const float*>(hw->ptr(4));
  EXPECT_EQ(std::vector<float>(b, b + 3), (std::vector<float>{1.5f, -2.0f, 0.25f}));
  EXPECT_EQ(hw->ptr(5), nullptr);  // CHECK_ZEROS: verified, not allocated
}

TEST_F(WeightsTest, RejectsNonSymmetricZeroPoints) {
  auto hw = load({spec("z", DType::I32, {2, 2}, WeightTransform::CHECK_ZEROS, {"zbad"})});
  ASSERT_FALSE(hw.ok());
  EXPECT_NE(hw.error().message.find("'zbad' word 2 is 0x77770777"), std::string::npos) << hw.error().message;
}

TEST_F(WeightsTest, RejectsADirectoryThatDoesNotMatch) {
  auto expect_error = [&](test::WeightSpec w, const std::string& want) {
    auto hw = load({w});
    ASSERT_FALSE(hw.ok());
    EXPECT_EQ(hw.error().exit_code(), 1);
    EXPECT_NE(hw.error().message.find(want), std::string::npos) << hw.error().message;
    EXPECT_NE(hw.error().message.find("does not match the plan"), std::string::npos) << hw.error().message;
  };
  auto w = spec("a", DType::BF16, {2, 4}, WeightTransform::COPY, {"a"});
  auto bad = w;
  bad.sources[0].name = "missing_tensor";
  expect_error(bad, "tensor 'missing_tensor' is missing");
  bad = w;
  bad.dtype = DType::F16;
  bad.sources[0].dtype = DType::F16;
  expect_error(bad, "tensor 'a' is BF16 [2, 4], the plan expects F16 [2, 4]");
  bad = w;
  bad.shape = {4, 2};
  bad.sources[0].shape = {4, 2};
  expect_error(bad, "the plan expects BF16 [4, 2]");
  bad = w;
  bad.sources[0].offset += 8;
  expect_error(bad, "occupies bytes");
  bad = w;
  bad.sources[0].file = "model-00002-of-00002.safetensors";
  expect_error(bad, "model-00002-of-00002.safetensors");
}

TEST_F(WeightsTest, RefusesAPlanWhoseModelHashDiffers) {
  // The plan's model_hash is mmc's over the model table and the checkpoint's whole tensor table;
  // a plan for another checkpoint (here: the hash of one) is refused naming both hashes. Before
  // issue 13 the runtime never read it.
  auto bytes = test::build_weights_plan({spec("a", DType::BF16, {2, 4}, WeightTransform::COPY, {"a"})});
  test::stamp_model_hash(&bytes, fx.dir);
  auto good = load_plan_from_memory(bytes.data(), bytes.size(), "w.mmp");
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(check_weights_dir(**good, fx.dir).ok());
  const uint64_t other = (*good)->def().model_hash() ^ 1;
  const auto* def = reinterpret_cast<const flatbuffers::Table*>(plan::GetPlanDef(bytes.data()));
  const uint8_t* at = def->GetAddressOf(plan::PlanDef::VT_MODEL_HASH);
  ASSERT_NE(at, nullptr);
  std::memcpy(bytes.data() + (at - bytes.data()), &other, sizeof other);
  ASSERT_TRUE(plan::seal_plan(bytes.data(), bytes.size()));
  auto bad = load_plan_from_memory(bytes.data(), bytes.size(), "w.mmp");
  ASSERT_TRUE(bad.ok());
  Status st = check_weights_dir(**bad, fx.dir);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().exit_code(), 1);
  char want[96];
  std::snprintf(want, sizeof want, "the plan's model_hash is 0x%016llx, the checkpoint's is 0x%016llx",
                static_cast<unsigned long long>(other), static_cast<unsigned long long>(other ^ 1));
  EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
}

TEST(RandomWeights, FillsEveryWeightDeterministically) {
  auto bytes = test::build_tiny_plan(test::TinyModel{});
  auto p = load_plan_from_memory(bytes.data(), bytes.size(), "t.mmp");
  ASSERT_TRUE(p.ok());
  auto a = random_host_weights(**p, 7), b = random_host_weights(**p, 7), c = random_host_weights(**p, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(a->buffers.size(), (*p)->def().weights()->size());
  for (size_t i = 0; i < a->buffers.size(); ++i) {
    ASSERT_EQ(a->buffers[i].size(), (*p)->def().weights()->Get(i)->nbytes());
    EXPECT_EQ(0, std::memcmp(a->ptr(i), b->ptr(i), a->buffers[i].size()));
  }
  EXPECT_NE(0, std::memcmp(a->ptr(0), c->ptr(0), a->buffers[0].size()));
  // Norm weights (index 1: layer 0 input norm) are near 1; scales (index 3) are finite and small.
  const uint16_t* norm = static_cast<const uint16_t*>(a->ptr(1));
  EXPECT_NEAR(ref::bf16_to_f32(norm[0]), 1.0, 0.11);
  const uint16_t* sc = static_cast<const uint16_t*>(a->ptr(3));
  for (int i = 0; i < 16; ++i) EXPECT_LT(std::fabs(ref::f16_to_f32(sc[i])), 0.1f);
}

// A plan whose qweights are in strips of 32 columns gets the same random model as the one in GPTQ
// rows: its words are the rows plan's, laid out in strips.
TEST(RandomWeights, AreTheSameModelWhateverTheQweightLayout) {
  test::TinyModel m;
  auto rows_bytes = test::build_tiny_plan(m);
  m.ql = 1;
  auto strips_bytes = test::build_tiny_plan(m);
  auto rows = load_plan_from_memory(rows_bytes.data(), rows_bytes.size(), "rows.mmp");
  auto strips = load_plan_from_memory(strips_bytes.data(), strips_bytes.size(), "strips.mmp");
  ASSERT_TRUE(rows.ok() && strips.ok());
  auto a = random_host_weights(**rows, 7), b = random_host_weights(**strips, 7);
  ASSERT_TRUE(a.ok() && b.ok());
  int qweights = 0;
  for (size_t i = 0; i < a->buffers.size(); ++i) {
    const plan::WeightDef& w = *(*strips)->def().weights()->Get(i);
    if (w.transform() == plan::WeightTransform::CHECK_ZEROS) continue;
    std::vector<uint8_t> want(a->buffers[i].size());
    if (w.qlayout() == plan::QuantLayout::STRIPS32) {
      const auto& sh = *w.shape();
      const int64_t kr = sh.Get(sh.size() - 2), n = sh.Get(sh.size() - 1);
      ref::w4_rows_to_strips(static_cast<const int32_t*>(a->ptr(i)), static_cast<int64_t>(want.size() / 4) / (kr * n), kr, n,
                             reinterpret_cast<int32_t*>(want.data()));
      ++qweights;
    } else {
      std::memcpy(want.data(), a->ptr(i), want.size());
    }
    EXPECT_EQ(0, std::memcmp(want.data(), b->ptr(i), want.size())) << w.name()->str();
  }
  EXPECT_GT(qweights, 0);
}

}  // namespace
}  // namespace mm::rt
