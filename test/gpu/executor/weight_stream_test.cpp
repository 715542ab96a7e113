// The streaming loader's transforms (runtime/src/weight_stream.h) through a host sink, so they
// run without a GPU: every transform of plan.fbs, staged in chunks far smaller than the tensors
// (row batches, split reads, merged adjacent experts), must give exactly the bytes of the host
// loader (load_host_weights), and bad zero points must be refused naming the tensor.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>
#include <map>

#include "codegen/reference/reference.h"
#include "support/safetensors_writer.h"
#include "runtime/src/weight_stream.h"
#include "test/unit/runtime/test_plan.h"

namespace mm::rt {
namespace {

using plan::DType;
using plan::WeightTransform;

// Copies synchronously, so one staging buffer is enough; chunk_bytes is tiny to force splits.
class HostSink final : public WeightSink {
 public:
  explicit HostSink(uint64_t chunk) : buf_(chunk) {}
  uint64_t chunk_bytes() const override { return buf_.size(); }
  uint64_t held_bytes() const override { return buf_.size(); }
  Expected<uint8_t*> reserve(uint64_t n) override {
    if (n > buf_.size()) return Error::internal("reserve beyond the chunk");
    ++reserves;
    return buf_.data();
  }
  Status submit(uint8_t* region, uint64_t n, void* dst) override {
    std::memcpy(dst, region, n);
    return Status::success();
  }
  Status finish() override { return Status::success(); }
  int reserves = 0;

 private:
  std::vector<uint8_t> buf_;
};

struct Tensor {
  mm::DType dtype;
  std::vector<int64_t> shape;
};

class WeightStreamTest : public ::testing::Test {
 public:
  void write(const std::map<std::string, Tensor>& tensors, uint32_t zero_word) {
    dir = ::testing::TempDir() + "/weight_stream_test_" + std::to_string(zero_word);
    ::mkdir(dir.c_str(), 0755);
    std::vector<SafetensorsEntry> entries;
    for (auto& [n, t] : tensors) entries.push_back({n, t.dtype, t.shape});
    auto layout = plan_safetensors(entries, {{"format", "pt"}});
    ASSERT_TRUE(layout.ok());
    auto w = SafetensorsFileWriter::create(dir + "/model.safetensors", *layout);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (size_t i = 0; i < entries.size(); ++i) {
      std::vector<uint8_t> bytes(layout->nbytes[i]);
      const bool zeros = entries[i].name[0] == 'z';
      for (size_t b = 0; b + 4 <= bytes.size(); b += 4) {
        uint32_t v = zeros ? 0x77777777u : static_cast<uint32_t>(ref::splitmix64(i * 1000003 + b));
        if (!zeros && entries[i].dtype != mm::DType::I32) {
          // Two finite 16-bit values (upcast sources must be numbers, not NaN patterns).
          const uint16_t a = entries[i].dtype == mm::DType::F16 ? ref::f32_to_f16(0.001f * (b % 977)) : ref::f32_to_bf16(-0.5f + 0.001f * b);
          v = a | (static_cast<uint32_t>(a) << 16);
        }
        if (zeros && b == 8) v = zero_word;
        std::memcpy(bytes.data() + b, &v, 4);
      }
      ASSERT_TRUE(w->write_data(i, 0, bytes.data(), bytes.size()).ok());
      const DType dt = entries[i].dtype == mm::DType::I32 ? DType::I32
                       : entries[i].dtype == mm::DType::F16 ? DType::F16 : DType::BF16;
      src[entries[i].name] = {entries[i].name, "model.safetensors", layout->offsets[i], layout->nbytes[i], dt, entries[i].shape};
    }
    ASSERT_TRUE(w->close().ok());
  }
  test::WeightSpec spec(const std::string& name, DType dt, std::vector<int64_t> shape, WeightTransform t,
                        const std::vector<std::string>& sources) {
    test::WeightSpec w{name, dt, shape, t, {}};
    // As the compiler records it: 16-bit [N, K] matrices along the first dim, quantized tensors
    // along the last.
    if (t == WeightTransform::CONCAT_N) w.concat_axis = dt == DType::BF16 ? 0 : static_cast<int>(shape.size()) - 1;
    for (auto& s : sources) w.sources.push_back(src.at(s));
    return w;
  }
  void SetUp() override {}

  std::string dir;
  std::map<std::string, test::WeightSpec::Source> src;
};

const std::map<std::string, Tensor> kTensors = {
    {"a", {mm::DType::BF16, {40, 8}}},     // 640 bytes: several chunks
    {"d1", {mm::DType::BF16, {3, 8}}},     // CONCAT_N along the first dim
    {"d2", {mm::DType::BF16, {5, 8}}},
    {"q1", {mm::DType::I32, {16, 12}}},    // CONCAT_N along the last dim: rows composed
    {"q2", {mm::DType::I32, {16, 4}}},
    {"w1_0", {mm::DType::I32, {8, 6}}},    {"w3_0", {mm::DType::I32, {8, 6}}},
    {"w1_1", {mm::DType::I32, {8, 6}}},    {"w3_1", {mm::DType::I32, {8, 6}}},
    {"w1_2", {mm::DType::I32, {8, 6}}},    {"w3_2", {mm::DType::I32, {8, 6}}},
    {"w2_0", {mm::DType::I32, {6, 8}}},    {"w2_1", {mm::DType::I32, {6, 8}}},  // adjacent: one read
    {"w2_2", {mm::DType::I32, {6, 8}}},
    {"bb", {mm::DType::BF16, {100}}},      // UPCAST_F32 in two pieces
    {"bf", {mm::DType::F16, {6}}},
    {"z", {mm::DType::I32, {4, 4}}},
};

std::vector<test::WeightSpec> all_transforms(WeightStreamTest& t) {
  return {t.spec("a", DType::BF16, {40, 8}, WeightTransform::COPY, {"a"}),
          t.spec("dense", DType::BF16, {8, 8}, WeightTransform::CONCAT_N, {"d1", "d2"}),
          t.spec("qkv", DType::I32, {16, 16}, WeightTransform::CONCAT_N, {"q1", "q2"}),
          t.spec("w13", DType::I32, {3, 8, 12}, WeightTransform::STACK_EXPERTS_W13,
                 {"w1_0", "w3_0", "w1_1", "w3_1", "w1_2", "w3_2"}),
          t.spec("w2", DType::I32, {3, 6, 8}, WeightTransform::STACK_EXPERTS, {"w2_0", "w2_1", "w2_2"}),
          t.spec("w2r", DType::I32, {2, 6, 8}, WeightTransform::STACK_EXPERTS, {"w2_2", "w2_0"}),
          t.spec("bb", DType::F32, {100}, WeightTransform::UPCAST_F32, {"bb"}),
          t.spec("bf", DType::F32, {6}, WeightTransform::UPCAST_F32, {"bf"}),
          t.spec("z", DType::I32, {4, 4}, WeightTransform::CHECK_ZEROS, {"z"})};
}

TEST_F(WeightStreamTest, GivesTheHostLoadersBytesForEveryTransform) {
  write(kTensors, 0x77777777u);
  const auto specs = all_transforms(*this);
  auto bytes = test::build_weights_plan(specs);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "stream.mmp");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto want = load_host_weights(**plan, dir, false);
  ASSERT_TRUE(want.ok()) << want.error().message;

  const WeightLayout layout = weight_layout(**plan);
  std::vector<uint8_t> memory(layout.total_bytes, 0xEE);
  std::vector<void*> dst(specs.size(), nullptr);
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].transform != WeightTransform::CHECK_ZEROS) dst[i] = memory.data() + layout.offsets[i];
  for (uint64_t chunk : {256u, 4096u}) {
    std::fill(memory.begin(), memory.end(), 0xEE);
    HostSink sink(chunk);
    WeightLoadStats stats;
    Status st = stream_weights(**plan, dir, dst, sink, false, &stats);
    ASSERT_TRUE(st.ok()) << st.error().message;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (!dst[i]) continue;
      ASSERT_EQ(want->buffers[i].size(), static_cast<uint64_t>((*plan)->def().weights()->Get(i)->nbytes()));
      EXPECT_EQ(0, std::memcmp(dst[i], want->ptr(i), want->buffers[i].size()))
          << "weight " << specs[i].name << " differs with a " << chunk << "-byte chunk";
    }
    EXPECT_EQ(stats.source, "checkpoint");
    EXPECT_GT(stats.file_bytes, 0u);
    EXPECT_GT(stats.peak_rss_kib, 0);
    if (chunk == 256) EXPECT_GT(sink.reserves, 20) << "small chunks must split the tensors";
  }
}

TEST_F(WeightStreamTest, RefusesZeroPointsThatAreNotSymmetric) {
  write(kTensors, 0x77770777u);
  const auto specs = all_transforms(*this);
  auto bytes = test::build_weights_plan(specs);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "stream.mmp");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const WeightLayout layout = weight_layout(**plan);
  std::vector<uint8_t> memory(layout.total_bytes);
  std::vector<void*> dst(specs.size(), nullptr);
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].transform != WeightTransform::CHECK_ZEROS) dst[i] = memory.data() + layout.offsets[i];
  HostSink sink(256);
  Status st = stream_weights(**plan, dir, dst, sink, false, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'z' word 2 is 0x77770777"), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().exit_code(), 1);
}

TEST_F(WeightStreamTest, RefusesADirectoryThatDoesNotMatchThePlan) {
  write(kTensors, 0x77777777u);
  auto specs = all_transforms(*this);
  specs[0].sources[0].shape = {40, 9};   // the plan expects another shape than the shard holds
  specs[0].shape = {40, 9};
  specs[0].sources[0].nbytes = 40 * 9 * 2;
  auto bytes = test::build_weights_plan(specs);
  auto plan = load_plan_from_memory(bytes.data(), bytes.size(), "stream.mmp");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::vector<uint8_t> memory(weight_layout(**plan).total_bytes);
  std::vector<void*> dst(specs.size(), memory.data());
  HostSink sink(256);
  Status st = stream_weights(**plan, dir, dst, sink, false, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tensor 'a'"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace mm::rt
