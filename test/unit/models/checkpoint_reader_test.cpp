// The checkpoint reader and `mmc check` on handcrafted checkpoints: a small valid MiniMax-M2
// checkpoint in both quantization variants, written here by an independent minimal safetensors
// writer (shard data left as holes: the reader never reads it), then broken one way per test.
// Every rejection must exit 1 and name the file, tensor or key at fault.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "models/common/check_report.h"
#include "models/common/checkpoint.h"
#include "support/file_util.h"
#include "support/safetensors.h"

namespace mm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Shape of the test model: the smallest that keeps every quantized K a multiple of 128.
constexpr int64_t kH = 128, kI = 128, kL = 2, kHeads = 2, kKv = 1, kD = 64, kE = 4, kTopK = 2,
                  kV = 64;

struct FakeTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  int shard = 0;
};

size_t dtype_bytes(const std::string& dt) {
  if (dt == "F32" || dt == "I32") return 4;
  return 2;
}

uint64_t tensor_bytes(const FakeTensor& t) {
  uint64_t n = dtype_bytes(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

// Writes `header` with its 8-byte length prefix and sizes the file to hold `data_bytes` after it.
void write_raw_shard(const std::string& path, const std::string& header, uint64_t data_bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  uint64_t n = header.size();
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(n >> (8 * i));
  f.write(reinterpret_cast<const char*>(prefix), 8);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.close();
  fs::resize_file(path, 8 + header.size() + data_bytes);
}

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
  return buf;
}

class FakeCheckpoint {
 public:
  enum class Variant { AUTO_ROUND, GPTQ };

  explicit FakeCheckpoint(Variant v = Variant::AUTO_ROUND) : variant_(v) {
    const std::string half = v == Variant::GPTQ ? "F16" : "BF16";
    config_ = {{"architectures", {"MiniMaxM2ForCausalLM"}},
               {"model_type", "minimax_m2"},
               {"hidden_size", kH},
               {"intermediate_size", kI},
               {"num_hidden_layers", kL},
               {"num_attention_heads", kHeads},
               {"num_key_value_heads", kKv},
               {"head_dim", kD},
               {"rotary_dim", kD / 2},
               {"num_local_experts", kE},
               {"num_experts_per_tok", kTopK},
               {"vocab_size", kV},
               {"max_position_embeddings", 4096},
               {"rope_theta", 5000000},
               {"rms_norm_eps", 1e-6},
               {"scoring_func", "sigmoid"},
               {"use_routing_bias", true},
               {"use_qk_norm", true},
               {"qk_norm_type", "per_layer"},
               {"hidden_act", "silu"},
               {"tie_word_embeddings", false},
               {"sliding_window", nullptr},
               {"use_mtp", true},
               {"torch_dtype", "bfloat16"}};
    if (v == Variant::AUTO_ROUND) {
      json extra = json::object();
      for (int l = 0; l < kL; ++l)
        extra["model.layers." + std::to_string(l) + ".block_sparse_moe.gate"] = {
            {"bits", 16}, {"data_type", "float"}};
      config_["quantization_config"] = {{"quant_method", "auto-round"},
                                        {"packing_format", "auto_round:auto_gptq"},
                                        {"bits", 4},
                                        {"group_size", 128},
                                        {"sym", true},
                                        {"data_type", "int"},
                                        {"iters", 0},
                                        {"autoround_version", "0.12.2"},
                                        {"extra_config", extra}};
    } else {
      config_["quantization_config"] = {
          {"quant_method", "gptq"},
          {"bits", 4},
          {"group_size", 128},
          {"sym", true},
          {"desc_act", false},
          {"true_sequential", false},
          {"damp_percent", 0.01},
          {"lm_head", false},
          {"provider", "auto-round"},
          {"dynamic", {{"-:.*\\.block_sparse_moe\\.gate", json::object()}}}};
    }
    // Shard 0: embeddings, attention, norms, router; shard 1: experts and lm_head.
    add("model.embed_tokens.weight", half, {kV, kH}, 0);
    for (int l = 0; l < kL; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", half, {kH}, 0);
      add(p + "post_attention_layernorm.weight", half, {kH}, 0);
      add(p + "self_attn.q_norm.weight", half, {kHeads * kD}, 0);
      add(p + "self_attn.k_norm.weight", half, {kKv * kD}, 0);
      add_quantized(p + "self_attn.q_proj", kH, kHeads * kD, 0);
      add_quantized(p + "self_attn.k_proj", kH, kKv * kD, 0);
      add_quantized(p + "self_attn.v_proj", kH, kKv * kD, 0);
      add_quantized(p + "self_attn.o_proj", kHeads * kD, kH, 0);
      add(p + "block_sparse_moe.gate.weight", half, {kE, kH}, 0);
      add(p + "block_sparse_moe.e_score_correction_bias", v == Variant::GPTQ ? "F16" : "F32", {kE},
          0);
      for (int e = 0; e < kE; ++e) {
        const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        add_quantized(x + "w1", kH, kI, 1);
        add_quantized(x + "w3", kH, kI, 1);
        add_quantized(x + "w2", kI, kH, 1);
      }
    }
    add("model.norm.weight", half, {kH}, 0);
    add("lm_head.weight", half, {kV, kH}, 1);
  }

  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           int shard) {
    tensors_.push_back({name, dtype, std::move(shape), shard});
  }
  void add_quantized(const std::string& prefix, int64_t k, int64_t n, int shard) {
    add(prefix + ".qweight", "I32", {k / 8, n}, shard);
    add(prefix + ".qzeros", "I32", {k / 128, n / 8}, shard);
    add(prefix + ".scales", "F16", {k / 128, n}, shard);
    if (variant_ == Variant::GPTQ) add(prefix + ".g_idx", "I32", {k}, shard);
  }
  void remove(const std::string& name) {
    std::erase_if(tensors_, [&](const FakeTensor& t) { return t.name == name; });
  }
  FakeTensor* find(const std::string& name) {
    for (FakeTensor& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }

  json& config() { return config_; }
  std::vector<FakeTensor>& tensors() { return tensors_; }
  size_t tensor_count() const { return tensors_.size(); }

  // The header JSON of shard `s`, tensors laid out back to back in list order.
  json shard_header(int s, uint64_t* data_bytes) const {
    json h = json::object();
    h["__metadata__"] = {{"format", "pt"}};
    uint64_t off = 0;
    for (const FakeTensor& t : tensors_) {
      if (t.shard != s) continue;
      uint64_t n = tensor_bytes(t);
      h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
      off += n;
    }
    *data_bytes = off;
    return h;
  }

  json index() const {
    json wm = json::object();
    uint64_t total = 0;
    for (const FakeTensor& t : tensors_) {
      wm[t.name] = shard_name(t.shard, kShards);
      total += tensor_bytes(t);
    }
    return {{"metadata", {{"total_size", total}}}, {"weight_map", wm}};
  }

  void write(const std::string& dir) const {
    fs::create_directories(dir);
    std::ofstream(dir + "/config.json") << config_.dump(2);
    std::ofstream(dir + "/model.safetensors.index.json") << index().dump(2);
    std::ofstream(dir + "/generation_config.json")
        << json{{"bos_token_id", 200019}, {"eos_token_id", 200020}}.dump();
    for (int s = 0; s < kShards; ++s) {
      uint64_t data = 0;
      std::string header = shard_header(s, &data).dump();
      header.append((8 - header.size() % 8) % 8, ' ');  // as the safetensors library pads
      write_raw_shard(dir + "/" + shard_name(s, kShards), header, data);
    }
  }

  static constexpr int kShards = 2;

 private:
  Variant variant_;
  json config_;
  std::vector<FakeTensor> tensors_;
};

const std::string kShard0 = shard_name(0, 2);
const std::string kShard1 = shard_name(1, 2);

class CheckpointReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::temp_directory_path() /
            ("mm_reader_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& file) const { return dir_ + "/" + file; }

  // Runs `mmc check` in-process.
  int check() {
    std::ostringstream out, err;
    int rc = check_command(dir_, out, err);
    out_ = out.str();
    err_ = err.str();
    return rc;
  }

  // Asserts a rejection: exit code 1 and every `needle` in the error text.
  void expect_rejected(std::initializer_list<std::string> needles) {
    EXPECT_EQ(check(), 1) << "stdout:\n" << out_ << "stderr:\n" << err_;
    for (const std::string& n : needles)
      EXPECT_NE(err_.find(n), std::string::npos) << "missing \"" << n << "\" in:\n" << err_;
    EXPECT_TRUE(out_.empty()) << out_;
  }

  // Replaces `from` by `to` (same length keeps the header length valid) inside a file.
  void patch_file(const std::string& file, const std::string& from, const std::string& to) {
    std::ifstream in(path(file), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    size_t pos = data.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    data.replace(pos, from.size(), to);
    std::ofstream(path(file), std::ios::binary | std::ios::trunc) << data;
  }

  // Rewrites shard `s` of `ckpt` with a header edited by `edit` (data region sized as before).
  template <class F>
  void rewrite_shard(const FakeCheckpoint& ckpt, int s, F edit) {
    uint64_t data = 0;
    json h = ckpt.shard_header(s, &data);
    edit(h);
    write_raw_shard(path(shard_name(s, 2)), h.dump(), data);
  }

  std::string dir_, out_, err_;
};

// --- accepted checkpoints ---------------------------------------------------------------------

TEST_F(CheckpointReaderTest, AcceptsAutoRoundCheckpoint) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  ASSERT_EQ(check(), 0) << err_;
  EXPECT_NE(out_.find("2 layers"), std::string::npos) << out_;
  EXPECT_NE(out_.find("4 per layer, top-2"), std::string::npos) << out_;
  EXPECT_NE(out_.find("auto-round"), std::string::npos) << out_;
  EXPECT_NE(out_.find(std::to_string(ckpt.tensor_count()) + " in 2 shards"), std::string::npos)
      << out_;
  EXPECT_NE(out_.find("warnings:     0"), std::string::npos) << out_;

  auto d = read_checkpoint(dir_);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->hp.hidden_size, kH);
  EXPECT_EQ(d->hp.rotary_dim, kD / 2);
  EXPECT_EQ(d->hp.rope_theta, 5000000.0);
  EXPECT_EQ(d->hp.bos_token_id, 200019);
  ASSERT_EQ(d->hp.eos_token_ids.size(), 1u);
  EXPECT_EQ(d->hp.eos_token_ids[0], 200020);
  EXPECT_EQ(d->quant.method, QuantMethod::AUTO_ROUND);
  EXPECT_EQ(d->quant.packing_format, "auto_round:auto_gptq");
  EXPECT_EQ(d->activation_dtype, DType::BF16);
  EXPECT_EQ(d->tensors.size(), ckpt.tensor_count());
  EXPECT_EQ(d->shard_files, (std::vector<std::string>{kShard0, kShard1}));

  // Offsets are absolute in the shard file: the first tensor of shard 0 starts right after the
  // header, whose padded length the file's first 8 bytes give.
  const TensorInfo* embed = d->find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->file, kShard0);
  EXPECT_EQ(embed->nbytes, static_cast<uint64_t>(kV * kH * 2));
  std::ifstream f(path(kShard0), std::ios::binary);
  unsigned char prefix[8];
  f.read(reinterpret_cast<char*>(prefix), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | prefix[i];
  EXPECT_EQ(embed->offset, 8 + header_len);

  LinearInfo q = d->linear(minimax_m2::Role::Q_PROJ, 1, -1);
  EXPECT_TRUE(q.quantized);
  EXPECT_EQ(q.in_features, kH);
  EXPECT_EQ(q.out_features, kHeads * kD);
  ASSERT_GE(q.scales, 0);
  EXPECT_EQ(d->tensors[q.scales].name, "model.layers.1.self_attn.q_proj.scales");
  EXPECT_EQ(q.g_idx, -1);
  EXPECT_EQ(q.weight, -1);
  LinearInfo gate = d->linear(minimax_m2::Role::ROUTER, 0, -1);
  EXPECT_FALSE(gate.quantized);
  ASSERT_GE(gate.weight, 0);
  EXPECT_EQ(d->tensors[gate.weight].shape, (std::vector<int64_t>{kE, kH}));
  LinearInfo w2 = d->linear(minimax_m2::Role::EXPERT_W2, 1, 3);
  EXPECT_TRUE(w2.quantized);
  EXPECT_EQ(d->tensors[w2.qweight].name, "model.layers.1.block_sparse_moe.experts.3.w2.qweight");
  EXPECT_EQ(d->tensors[w2.qweight].file, kShard1);
}

TEST_F(CheckpointReaderTest, AcceptsGptqCheckpoint) {
  FakeCheckpoint ckpt(FakeCheckpoint::Variant::GPTQ);
  ckpt.write(dir_);
  std::ofstream(path("quantize_config.json"))
      << json{{"bits", 4}, {"group_size", 128}, {"sym", true}, {"desc_act", false}}.dump();
  ASSERT_EQ(check(), 0) << err_;
  EXPECT_NE(out_.find("gptq"), std::string::npos) << out_;
  auto d = read_checkpoint(dir_);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->quant.method, QuantMethod::GPTQ);
  EXPECT_EQ(d->activation_dtype, DType::F16);
  LinearInfo w1 = d->linear(minimax_m2::Role::EXPERT_W1, 0, 2);
  ASSERT_GE(w1.g_idx, 0);
  EXPECT_EQ(d->tensors[w1.g_idx].shape, (std::vector<int64_t>{kH}));
}

TEST_F(CheckpointReaderTest, AcceptsSingleFileCheckpointWithoutIndex) {
  FakeCheckpoint ckpt;
  for (FakeTensor& t : ckpt.tensors()) t.shard = 0;
  ckpt.write(dir_);
  fs::remove(path("model.safetensors.index.json"));
  fs::remove(path(kShard1));
  fs::rename(path(kShard0), path("model.safetensors"));
  ASSERT_EQ(check(), 0) << err_;
  EXPECT_NE(out_.find("in 1 shard,"), std::string::npos) << out_;
}

TEST_F(CheckpointReaderTest, AcceptsRopeParametersInsteadOfTopLevelKeys) {
  FakeCheckpoint ckpt;
  ckpt.config().erase("rope_theta");
  ckpt.config().erase("rotary_dim");
  ckpt.config()["rope_parameters"] = {
      {"rope_type", "default"}, {"rope_theta", 5000000}, {"partial_rotary_factor", 0.5}};
  ckpt.write(dir_);
  auto d = read_checkpoint(dir_);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->hp.rotary_dim, kD / 2);
  EXPECT_EQ(d->hp.rope_theta, 5000000.0);
}

TEST_F(CheckpointReaderTest, IgnoresMtpTensorsAndReportsUnknownOnes) {
  FakeCheckpoint ckpt;
  ckpt.add("model.layers.2.self_attn.q_norm.weight", "BF16", {kHeads * kD}, 1);  // layer >= L
  ckpt.add("mtp.embed.weight", "BF16", {4}, 1);
  ckpt.add("model.rotary_emb.inv_freq", "F32", {kD / 4}, 0);
  ckpt.write(dir_);
  ASSERT_EQ(check(), 0) << err_;
  EXPECT_NE(out_.find("warnings:     2"), std::string::npos) << out_;
  EXPECT_NE(out_.find("ignored 2 MTP tensors"), std::string::npos) << out_;
  EXPECT_NE(out_.find("model.rotary_emb.inv_freq"), std::string::npos) << out_;
}

TEST_F(CheckpointReaderTest, WarnsAboutUnexemptedSixteenBitLinear) {
  FakeCheckpoint ckpt;
  for (const char* s : {".qweight", ".qzeros", ".scales"})
    ckpt.remove(std::string("model.layers.1.self_attn.o_proj") + s);
  ckpt.add("model.layers.1.self_attn.o_proj.weight", "BF16", {kH, kHeads * kD}, 0);
  ckpt.write(dir_);
  ASSERT_EQ(check(), 0) << err_;
  EXPECT_NE(out_.find("model.layers.1.self_attn.o_proj"), std::string::npos) << out_;
  auto d = read_checkpoint(dir_);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->linear(minimax_m2::Role::O_PROJ, 1, -1).quantized);
  EXPECT_TRUE(d->linear(minimax_m2::Role::O_PROJ, 0, -1).quantized);
}

// --- safetensors files are hostile -------------------------------------------------------------

TEST_F(CheckpointReaderTest, RejectsTruncatedShard) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  fs::resize_file(path(kShard1), fs::file_size(path(kShard1)) - 1);
  expect_rejected({kShard1, "lm_head.weight", "truncated"});
}

TEST_F(CheckpointReaderTest, RejectsShardShorterThanLengthPrefix) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  fs::resize_file(path(kShard0), 5);
  expect_rejected({kShard0, "shorter than the 8-byte"});
}

TEST_F(CheckpointReaderTest, RejectsHeaderLengthPastEof) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::fstream f(path(kShard0), std::ios::binary | std::ios::in | std::ios::out);
  const unsigned char huge[8] = {0, 0, 0, 0x10, 0, 0, 0, 0};  // 256 MiB
  f.write(reinterpret_cast<const char*>(huge), 8);
  f.close();
  expect_rejected({kShard0, "header length 268435456 runs past the end of the file"});
}

TEST_F(CheckpointReaderTest, RejectsHeaderLengthAboveLimit) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  // A sparse shard bigger than the header limit, whose prefix claims a 200 MiB header.
  fs::resize_file(path(kShard0), 300ull << 20);
  std::fstream f(path(kShard0), std::ios::binary | std::ios::in | std::ios::out);
  const unsigned char big[8] = {0, 0, 0, 0x0c, 0, 0, 0, 0};
  f.write(reinterpret_cast<const char*>(big), 8);
  f.close();
  expect_rejected({kShard0, "exceeds the 104857600-byte limit"});
}

TEST_F(CheckpointReaderTest, RejectsHeaderThatIsNotJson) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  patch_file(kShard1, "{\"__metadata__\"", "{\"__metadata__\"");  // sanity: header is there
  patch_file(kShard1, "\"dtype\":\"I32\"", "\"dtype\":I32!!");
  expect_rejected({kShard1, "not valid JSON"});
}

TEST_F(CheckpointReaderTest, RejectsHeaderThatIsNotAnObject) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  write_raw_shard(path(kShard0), "[1, 2, 3]", 0);
  expect_rejected({kShard0, "not a JSON object"});
}

TEST_F(CheckpointReaderTest, RejectsOverlappingOffsets) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  rewrite_shard(ckpt, 0, [](json& h) {
    // Same size as the final norm, placed over the start of the embedding.
    h["model.norm.weight"]["data_offsets"] = {100, 100 + kH * 2};
  });
  expect_rejected({kShard0, "overlap", "model.norm.weight", "model.embed_tokens.weight"});
}

TEST_F(CheckpointReaderTest, RejectsDtypeByteLengthMismatch) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  rewrite_shard(ckpt, 0, [](json& h) { h["model.norm.weight"]["dtype"] = "F32"; });
  expect_rejected(
      {kShard0, "model.norm.weight", "byte length 256 does not match shape [128] x F32"});
}

TEST_F(CheckpointReaderTest, RejectsOffsetsPastDataRegion) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  rewrite_shard(ckpt, 1, [](json& h) {
    h["lm_head.weight"]["data_offsets"] = {uint64_t{1} << 40, (uint64_t{1} << 40) + kV * kH * 2};
  });
  expect_rejected({kShard1, "lm_head.weight", "past the end of the data region"});
}

TEST_F(CheckpointReaderTest, RejectsShapeOverflow) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  rewrite_shard(ckpt, 0, [](json& h) {
    h["model.norm.weight"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
  });
  expect_rejected({kShard0, "model.norm.weight", "overflows"});
}

TEST_F(CheckpointReaderTest, RejectsUnknownDtype) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  rewrite_shard(ckpt, 0, [](json& h) { h["model.norm.weight"]["dtype"] = "Q4_K"; });
  expect_rejected({kShard0, "model.norm.weight", "unknown dtype \"Q4_K\""});
}

TEST_F(CheckpointReaderTest, RejectsDuplicateTensorNameInHeader) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  uint64_t data = 0;
  std::string header = ckpt.shard_header(0, &data).dump();
  // Append a second "model.norm.weight" entry by hand: a JSON library would merge the two.
  header.pop_back();
  header += ",\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[128],\"data_offsets\":[0,256]}}";
  write_raw_shard(path(kShard0), header, data);
  expect_rejected({kShard0, "duplicate key \"model.norm.weight\""});
}

TEST_F(CheckpointReaderTest, RejectsDeeplyNestedHeader) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  // The header has a fixed three-level schema: deeper nesting is refused at the first level that
  // does not fit it, by what was found there.
  std::string header = "{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  write_raw_shard(path(kShard0), header, 0);
  expect_rejected({kShard0, "tensor \"x\": expected an object", "found an array"});
  header = "{\"x\":{\"dtype\":\"F16\",\"shape\":" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  write_raw_shard(path(kShard0), header, 0);
  expect_rejected({kShard0, "shape entries must be non-negative integers, found an array"});
}

TEST_F(CheckpointReaderTest, RejectsWrongShape) {
  FakeCheckpoint ckpt;
  ckpt.find("model.layers.1.self_attn.k_proj.qweight")->shape = {kH / 8, 2 * kKv * kD};
  ckpt.write(dir_);
  expect_rejected({kShard0, "model.layers.1.self_attn.k_proj.qweight", "has shape [16, 128]",
                   "expected [16, 64]"});
}

TEST_F(CheckpointReaderTest, RejectsWrongDtype) {
  FakeCheckpoint ckpt;
  ckpt.find("model.layers.0.block_sparse_moe.experts.2.w3.scales")->dtype = "BF16";
  ckpt.write(dir_);
  expect_rejected(
      {kShard1, "model.layers.0.block_sparse_moe.experts.2.w3.scales", "dtype BF16, expected F16"});
}

TEST_F(CheckpointReaderTest, RejectsMissingShardFile) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  fs::remove(path(kShard1));
  expect_rejected({kShard1, "shard file not found", "model.safetensors.index.json"});
}

TEST_F(CheckpointReaderTest, RejectsIndexNamingTensorShardLacks) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  json index = ckpt.index();
  index["weight_map"]["model.layers.0.self_attn.extra.weight"] = kShard0;
  std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << index.dump();
  expect_rejected({"model.safetensors.index.json", "model.layers.0.self_attn.extra.weight", kShard0,
                   "no such tensor"});
}

TEST_F(CheckpointReaderTest, RejectsShardTensorMissingFromIndex) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  json index = ckpt.index();
  index["weight_map"].erase("model.norm.weight");
  std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << index.dump();
  expect_rejected({kShard0, "model.norm.weight", "not listed in model.safetensors.index.json"});
}

TEST_F(CheckpointReaderTest, RejectsIndexMappingTensorToOtherShard) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  json index = ckpt.index();
  index["weight_map"]["model.norm.weight"] = kShard1;
  std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << index.dump();
  expect_rejected({kShard0, "model.norm.weight", "is mapped to " + kShard1});
}

TEST_F(CheckpointReaderTest, RejectsDuplicateIndexEntry) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::string text = ckpt.index().dump();
  text.replace(text.find("\"weight_map\":{"), 14,
               "\"weight_map\":{\"lm_head.weight\":\"" + kShard1 + "\",");
  std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << text;
  expect_rejected({"model.safetensors.index.json", "duplicate key \"lm_head.weight\""});
}

TEST_F(CheckpointReaderTest, RejectsShardNameEscapingModelDir) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  json index = ckpt.index();
  index["weight_map"]["model.norm.weight"] = "../../etc/passwd";
  std::ofstream(path("model.safetensors.index.json"), std::ios::trunc) << index.dump();
  expect_rejected({"model.safetensors.index.json", "model.norm.weight", "../../etc/passwd",
                   "not a plain file name"});
}

// --- the tensors the architecture needs --------------------------------------------------------

TEST_F(CheckpointReaderTest, RejectsRequiredTensorMissing) {
  FakeCheckpoint ckpt;
  ckpt.remove("model.layers.1.post_attention_layernorm.weight");
  ckpt.write(dir_);
  expect_rejected({"required tensor missing", "model.layers.1.post_attention_layernorm.weight"});
}

TEST_F(CheckpointReaderTest, RejectsQuantizedLinearWithoutScales) {
  FakeCheckpoint ckpt;
  ckpt.remove("model.layers.0.block_sparse_moe.experts.1.w2.scales");
  ckpt.write(dir_);
  expect_rejected(
      {"required tensor missing", "model.layers.0.block_sparse_moe.experts.1.w2.scales"});
}

TEST_F(CheckpointReaderTest, RejectsMoreExpertsInConfigThanTensors) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_local_experts"] = 8;
  ckpt.write(dir_);
  expect_rejected({"config.json", "num_local_experts is 8", "experts 0..3"});
}

TEST_F(CheckpointReaderTest, RejectsFewerExpertsInConfigThanTensors) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_local_experts"] = 3;
  ckpt.write(dir_);
  expect_rejected({"config.json", "num_local_experts is 3", "has expert 3",
                   "model.layers.0.block_sparse_moe.experts.3."});
}

TEST_F(CheckpointReaderTest, RejectsRouterBiasOfWrongLength) {
  FakeCheckpoint ckpt;
  ckpt.find("model.layers.1.block_sparse_moe.e_score_correction_bias")->shape = {2 * kE};
  ckpt.write(dir_);
  expect_rejected({"model.layers.1.block_sparse_moe.e_score_correction_bias", "has 8 entries",
                   "num_local_experts is 4"});
}

TEST_F(CheckpointReaderTest, RejectsQuantizedRouter) {
  FakeCheckpoint ckpt;
  ckpt.remove("model.layers.0.block_sparse_moe.gate.weight");
  ckpt.add_quantized("model.layers.0.block_sparse_moe.gate", kH, 8, 0);
  ckpt.write(dir_);
  expect_rejected({"model.layers.0.block_sparse_moe.gate.qweight", "must stay 16-bit"});
}

TEST_F(CheckpointReaderTest, RejectsBothWeightAndQweight) {
  FakeCheckpoint ckpt;
  ckpt.add("model.layers.0.self_attn.v_proj.weight", "BF16", {kKv * kD, kH}, 0);
  ckpt.write(dir_);
  expect_rejected({"model.layers.0.self_attn.v_proj", "both .weight and .qweight"});
}

TEST_F(CheckpointReaderTest, RejectsEmbeddingOfWrongVocab) {
  FakeCheckpoint ckpt;
  ckpt.config()["vocab_size"] = 2 * kV;
  ckpt.write(dir_);
  expect_rejected({"model.embed_tokens.weight", "has shape [64, 128], expected [128, 128]"});
}

// --- config.json and the quantization block ---------------------------------------------------

TEST_F(CheckpointReaderTest, RejectsConfigThatIsNotJson) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::ofstream(path("config.json"), std::ios::trunc) << "{\"model_type\": \"minimax_m2\",";
  expect_rejected({"config.json", "not valid JSON"});
}

TEST_F(CheckpointReaderTest, RejectsMissingConfig) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  fs::remove(path("config.json"));
  expect_rejected({"config.json", "file not found"});
}

TEST_F(CheckpointReaderTest, RejectsMissingConfigKey) {
  FakeCheckpoint ckpt;
  ckpt.config().erase("num_key_value_heads");
  ckpt.write(dir_);
  expect_rejected({"config.json", "missing required key \"num_key_value_heads\""});
}

TEST_F(CheckpointReaderTest, RejectsMistypedConfigKey) {
  FakeCheckpoint ckpt;
  ckpt.config()["hidden_size"] = "128";
  ckpt.write(dir_);
  expect_rejected({"config.json", "\"hidden_size\" must be an integer", "found a string"});
}

TEST_F(CheckpointReaderTest, RejectsFloatWhereIntegerExpected) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_hidden_layers"] = 2.5;
  ckpt.write(dir_);
  expect_rejected({"config.json", "\"num_hidden_layers\" must be an integer"});
}

TEST_F(CheckpointReaderTest, RejectsOutOfRangeConfigKey) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_attention_heads"] = -2;
  ckpt.write(dir_);
  expect_rejected({"config.json", "\"num_attention_heads\" = -2 is out of range"});
}

TEST_F(CheckpointReaderTest, RejectsWrongModelType) {
  FakeCheckpoint ckpt;
  ckpt.config()["model_type"] = "mixtral";
  ckpt.write(dir_);
  expect_rejected({"config.json", "model_type \"mixtral\"", "expected \"minimax_m2\""});
}

TEST_F(CheckpointReaderTest, RejectsWrongArchitecture) {
  FakeCheckpoint ckpt;
  ckpt.config()["architectures"] = {"MixtralForCausalLM"};
  ckpt.write(dir_);
  expect_rejected({"config.json", "MixtralForCausalLM", "MiniMaxM2ForCausalLM"});
}

TEST_F(CheckpointReaderTest, RejectsTopKLargerThanExpertCount) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_experts_per_tok"] = kE + 1;
  ckpt.write(dir_);
  expect_rejected({"config.json", "num_experts_per_tok 5 is larger than num_local_experts 4"});
}

TEST_F(CheckpointReaderTest, RejectsOddRotaryDim) {
  FakeCheckpoint ckpt;
  ckpt.config()["rotary_dim"] = 33;
  ckpt.write(dir_);
  expect_rejected({"config.json", "rotary_dim 33 must be even"});
}

TEST_F(CheckpointReaderTest, RejectsRotaryDimAboveHeadDim) {
  FakeCheckpoint ckpt;
  ckpt.config()["rotary_dim"] = 2 * kD;
  ckpt.write(dir_);
  expect_rejected({"config.json", "rotary_dim 128", "at most head_dim 64"});
}

TEST_F(CheckpointReaderTest, RejectsHeadsNotMultipleOfKvHeads) {
  FakeCheckpoint ckpt;
  ckpt.config()["num_key_value_heads"] = 3;
  ckpt.config()["num_attention_heads"] = 4;
  ckpt.write(dir_);
  expect_rejected(
      {"config.json", "num_attention_heads 4 must be a multiple of num_key_value_heads 3"});
}

TEST_F(CheckpointReaderTest, RejectsSlidingWindow) {
  FakeCheckpoint ckpt;
  ckpt.config()["sliding_window"] = 4096;
  ckpt.write(dir_);
  expect_rejected({"config.json", "sliding_window 4096"});
}

TEST_F(CheckpointReaderTest, RejectsSoftmaxScoring) {
  FakeCheckpoint ckpt;
  ckpt.config()["scoring_func"] = "softmax";
  ckpt.write(dir_);
  expect_rejected({"config.json", "scoring_func \"softmax\"", "\"sigmoid\""});
}

TEST_F(CheckpointReaderTest, RejectsMissingQuantizationConfig) {
  FakeCheckpoint ckpt;
  ckpt.config().erase("quantization_config");
  ckpt.write(dir_);
  expect_rejected({"config.json", "quantization_config"});
}

TEST_F(CheckpointReaderTest, RejectsBits8) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["bits"] = 8;
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "bits 8 is not supported"});
}

TEST_F(CheckpointReaderTest, RejectsAsymmetric) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["sym"] = false;
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "asymmetric quantization (sym false)"});
}

TEST_F(CheckpointReaderTest, RejectsGroup64) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["group_size"] = 64;
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "group_size 64 is not supported"});
}

TEST_F(CheckpointReaderTest, RejectsUnknownQuantMethod) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}};
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "quant_method \"fp8\" is not supported"});
}

TEST_F(CheckpointReaderTest, RejectsOtherPackingFormat) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["packing_format"] = "auto_round:auto_awq";
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "packing_format \"auto_round:auto_awq\""});
}

TEST_F(CheckpointReaderTest, RejectsGptqWithActOrder) {
  FakeCheckpoint ckpt(FakeCheckpoint::Variant::GPTQ);
  ckpt.config()["quantization_config"]["desc_act"] = true;
  ckpt.write(dir_);
  expect_rejected({"config.json: quantization_config", "desc_act true is not supported"});
}

TEST_F(CheckpointReaderTest, RejectsEightBitOverrideInExtraConfig) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["extra_config"]["model.layers.0.self_attn.q_proj"] = {
      {"bits", 8}};
  ckpt.write(dir_);
  expect_rejected({"extra_config \"model.layers.0.self_attn.q_proj\"", "bits 8 is not supported"});
}

TEST_F(CheckpointReaderTest, RejectsQuantizedTensorThatExtraConfigExempts) {
  FakeCheckpoint ckpt;
  ckpt.config()["quantization_config"]["extra_config"]["model.layers.1.self_attn.v_proj"] = {
      {"bits", 16}, {"data_type", "float"}};
  ckpt.write(dir_);
  expect_rejected({"model.layers.1.self_attn.v_proj.qweight", "marks", "16-bit"});
}

TEST_F(CheckpointReaderTest, RejectsSeparateQuantizationFileThatContradicts) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::ofstream(path("quantization_config.json")) << json{
      {"quant_method", "auto-round"},
      {"bits", 8},
      {"group_size", 128},
      {"sym", true}}.dump();
  expect_rejected({"quantization_config.json", "bits 8", "contradicts"});
}

TEST_F(CheckpointReaderTest, RejectsGenerationConfigThatIsNotJson) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::ofstream(path("generation_config.json"), std::ios::trunc) << "eos=2";
  expect_rejected({"generation_config.json", "not valid JSON"});
}

TEST_F(CheckpointReaderTest, RejectsAnIndexOverItsLimitWithoutReadingIt) {
  // The index's DOM costs about seven times its text: 64 MiB bounds it (the real one is 9 MB).
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::filesystem::resize_file(path("model.safetensors.index.json"), kMaxIndexFileBytes + 1);
  expect_rejected({"model.safetensors.index.json", "more than the 67108864-byte limit"});
}

TEST_F(CheckpointReaderTest, RejectsAFifoInPlaceOfAShardByName) {
  FakeCheckpoint ckpt;
  ckpt.write(dir_);
  std::filesystem::remove(path(kShard1));
  ASSERT_EQ(::mkfifo(path(kShard1).c_str(), 0600), 0);
  expect_rejected({kShard1, "is a FIFO (named pipe), expected a regular file"});
}

TEST_F(CheckpointReaderTest, RejectsMissingDirectory) {
  expect_rejected({dir_, "not a directory"});
}

TEST_F(CheckpointReaderTest, ReportsManyProblemsAtOnce) {
  FakeCheckpoint ckpt;
  ckpt.remove("model.norm.weight");
  ckpt.remove("model.layers.0.input_layernorm.weight");
  ckpt.write(dir_);
  expect_rejected({"model.norm.weight", "model.layers.0.input_layernorm.weight"});
  // One "error:" line per problem.
  size_t lines = 0;
  for (size_t p = err_.find("mmc check: error:"); p != std::string::npos;
       p = err_.find("mmc check: error:", p + 1))
    ++lines;
  EXPECT_EQ(lines, 2u) << err_;
}

// --- safetensors header parser on its own -------------------------------------------------------

TEST(SafetensorsHeaderTest, ParsesOffsetsAndMetadata) {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2,3],"data_offsets":[8,20]},)"
      R"("a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"BF16","shape":[0],"data_offsets":[20,20]}})";
  auto h = parse_safetensors_header(header, header.size(), 8 + header.size() + 20, "x.safetensors");
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_EQ(h->tensors.size(), 3u);
  EXPECT_EQ(h->metadata.at("format"), "pt");
  EXPECT_EQ(h->tensors[0].name, "a");
  EXPECT_EQ(h->tensors[0].offset, 8 + header.size());
  EXPECT_EQ(h->tensors[1].name, "b");
  EXPECT_EQ(h->tensors[1].offset, 8 + header.size() + 8);
  EXPECT_EQ(h->tensors[1].nbytes, 12u);
  EXPECT_EQ(h->tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h->tensors[2].nbytes, 0u);
}

long max_rss_kib() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// A header of n one-byte tensors, as a checkpoint with that many tensors would carry.
std::string many_tensor_header(int n) {
  std::string header = "{";
  header.reserve(static_cast<size_t>(n) * 72);
  char entry[160];
  for (int i = 0; i < n; ++i) {
    const int len = std::snprintf(entry, sizeof entry,
                                  "%s\"w.%07d\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                  i ? "," : "", i, i, i + 1);
    header.append(entry, static_cast<size_t>(len));
  }
  header += "}";
  return header;
}

// CPU seconds this process has used: unlike wall time it does not grow when other tests share
// the cores (CI runs the suite two at a time on two cores).
double cpu_seconds() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

TEST(SafetensorsHeaderTest, ParsesAHugeHeaderInLinearTimeAndBoundedMemory) {
  // 900,000 one-byte tensors, a 61 MiB header (issue 13): the JSON DOM took 1.6 GB and 16 s. The
  // streaming parser keeps only the records, about three times the header's size. Linear time is
  // checked as a ratio, not against a clock: 8 times the tensors must cost well under 8^2 times
  // the CPU time of the smaller header (a quadratic parser), whatever the machine or sanitizer.
  constexpr int kSmall = 112500, kTensors = 8 * kSmall;
  auto parse = [](const std::string& header, int n, double* seconds) {
    const double t0 = cpu_seconds();
    auto h = parse_safetensors_header(header, header.size(), 8 + header.size() + static_cast<uint64_t>(n),
                                      "huge.safetensors");
    *seconds = cpu_seconds() - t0;
    return h;
  };
  double small_seconds = 0, seconds = 0;
  {
    const std::string small = many_tensor_header(kSmall);
    auto h = parse(small, kSmall, &small_seconds);
    ASSERT_TRUE(h.ok()) << h.error().message;
    EXPECT_EQ(h->tensors.size(), static_cast<size_t>(kSmall));
  }
  const std::string header = many_tensor_header(kTensors);
  const long rss0 = max_rss_kib();
  auto h = parse(header, kTensors, &seconds);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->tensors.size(), static_cast<size_t>(kTensors));
  EXPECT_EQ(h->tensors[123456].name, "w.0123456");
  ::testing::Test::RecordProperty("cpu_ms_small", static_cast<int>(1000 * small_seconds));
  ::testing::Test::RecordProperty("cpu_ms_large", static_cast<int>(1000 * seconds));
  // Linear: ~8x. The floor of 0.05 s keeps a sub-tick small parse from inflating the ratio.
  EXPECT_LT(seconds, 24.0 * std::max(small_seconds, 0.05))
      << "the header parse took " << seconds << " CPU s for " << kTensors << " tensors and " << small_seconds
      << " CPU s for " << kSmall;
#ifndef MM_SANITIZE_ADDRESS  // set by -DMM_SANITIZE=address,...
  // (AddressSanitizer's redzones and quarantine change what an allocation costs.)
  const double growth = (max_rss_kib() - rss0) * 1024.0 / static_cast<double>(header.size());
  EXPECT_LT(growth, 5.0) << "resident memory grew by " << growth << " times the header size";
#endif
}

TEST(SafetensorsHeaderTest, RejectsMalformedEntries) {
  struct Case {
    const char* header;
    const char* needle;
  };
  const Case cases[] = {
      {R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[4,0]}})", "end before begin"},
      {R"({"t":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", "non-negative integers"},
      {R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0]}})", "[begin, end]"},
      {R"({"t":{"dtype":16,"shape":[2],"data_offsets":[0,4]}})", "non-string \"dtype\""},
      {R"({"t":{"dtype":"F16","data_offsets":[0,4]}})", "non-array \"shape\""},
      {R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4],"extra":1}})", "unexpected key"},
      {R"({"t":[1]})", "expected an object"},
      {R"({"__metadata__":{"format":3}})", "must be a string"},
      {R"({"t":{"dtype":"F16","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,2]}})", "dimensions"},
  };
  for (const Case& c : cases) {
    std::string header = c.header;
    auto h = parse_safetensors_header(header, header.size(), 8 + header.size() + 64, "x.st");
    ASSERT_FALSE(h.ok()) << c.header;
    EXPECT_EQ(h.error().exit_code(), 1);
    EXPECT_NE(h.error().message.find(c.needle), std::string::npos)
        << c.header << " -> " << h.error().message;
    EXPECT_NE(h.error().message.find("x.st"), std::string::npos) << h.error().message;
  }
}

}  // namespace
}  // namespace mm
