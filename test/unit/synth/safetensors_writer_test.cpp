#include "support/safetensors_writer.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "test/unit/temp_path.h"

namespace mm {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST(SafetensorsWriter, LayoutFollowsTheSafetensorsLibrary) {
  std::vector<SafetensorsEntry> entries = {
      {"b.weight", DType::BF16, {2, 3}},
      {"a.scales", DType::F16, {3}},
      {"z.bias", DType::F32, {1}},
      {"a.qweight", DType::I32, {2}},
      {"a.weight", DType::BF16, {1}},
  };
  Expected<SafetensorsLayout> l = plan_safetensors(entries, {{"format", "pt"}});
  ASSERT_TRUE(l.ok()) << l.error().message;
  // F32, then I32, then BF16 by name, then F16.
  EXPECT_EQ(l->data_order, (std::vector<size_t>{2, 3, 4, 0, 1}));
  EXPECT_EQ(l->header.size() % 8, 0u);
  uint64_t begin = 8 + l->header.size();
  EXPECT_EQ(l->offsets[2], begin);
  EXPECT_EQ(l->offsets[3], begin + 4);
  EXPECT_EQ(l->offsets[4], begin + 12);
  EXPECT_EQ(l->offsets[0], begin + 14);
  EXPECT_EQ(l->offsets[1], begin + 26);
  EXPECT_EQ(l->file_size, begin + 32);

  nlohmann::ordered_json h = nlohmann::ordered_json::parse(l->header);
  auto it = h.begin();
  EXPECT_EQ(it.key(), "__metadata__");
  EXPECT_EQ(h["__metadata__"]["format"], "pt");
  EXPECT_EQ((++it).key(), "z.bias");  // header lists tensors in data order
  EXPECT_EQ(h["b.weight"]["dtype"], "BF16");
  EXPECT_EQ(h["b.weight"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(h["b.weight"]["data_offsets"], nlohmann::json({14, 26}));
}

TEST(SafetensorsWriter, RejectsDuplicatesAndNegativeShapes) {
  Expected<SafetensorsLayout> dup =
      plan_safetensors({{"x", DType::F32, {1}}, {"x", DType::F16, {1}}}, {});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("duplicate tensor name 'x'"), std::string::npos);
  Expected<SafetensorsLayout> neg = plan_safetensors({{"y", DType::F32, {2, -1}}}, {});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message.find("'y'"), std::string::npos);
  Expected<SafetensorsLayout> big =
      plan_safetensors({{"huge", DType::F32, {int64_t{1} << 40, int64_t{1} << 40}}}, {});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("overflows"), std::string::npos);
}

TEST(SafetensorsWriter, WritesHeaderAndData) {
  std::string path = mm::test::temp_path("writer_test.safetensors");
  Expected<SafetensorsLayout> l =
      plan_safetensors({{"t16", DType::BF16, {2}}, {"t32", DType::I32, {2}}}, {});
  ASSERT_TRUE(l.ok());
  Expected<SafetensorsFileWriter> w = SafetensorsFileWriter::create(path, *l);
  ASSERT_TRUE(w.ok()) << w.error().message;
  uint16_t a[2] = {0x3F80, 0x4000};
  int32_t b[2] = {7, -1};
  ASSERT_TRUE(w->write_data(0, 0, a, sizeof a).ok());
  ASSERT_TRUE(w->write_data(1, 4, &b[1], 4).ok());  // second element only; first stays a zero hole
  EXPECT_FALSE(w->write_data(1, 4, b, 8).ok());     // past the tensor's end
  ASSERT_TRUE(w->close().ok());

  std::string bytes = read_all(path);
  ASSERT_EQ(bytes.size(), l->file_size);
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  EXPECT_EQ(hlen, l->header.size());
  EXPECT_EQ(bytes.substr(8, hlen), l->header);
  int32_t got32[2];
  std::memcpy(got32, bytes.data() + l->offsets[1], 8);
  EXPECT_EQ(got32[0], 0);
  EXPECT_EQ(got32[1], -1);
  uint16_t got16[2];
  std::memcpy(got16, bytes.data() + l->offsets[0], 4);
  EXPECT_EQ(got16[0], 0x3F80);
  EXPECT_EQ(got16[1], 0x4000);
  std::filesystem::remove(path);
}

TEST(SafetensorsWriter, CreateFailsWithThePath) {
  Expected<SafetensorsLayout> l = plan_safetensors({{"t", DType::F32, {1}}}, {});
  ASSERT_TRUE(l.ok());
  Expected<SafetensorsFileWriter> w =
      SafetensorsFileWriter::create("/nonexistent-dir-mm/x.safetensors", *l);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("/nonexistent-dir-mm/x.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace mm
