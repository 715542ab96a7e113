#include "models/synth/synth.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/synth/int4.h"
#include "test/unit/temp_path.h"

namespace mm::synth {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(mm::test::temp_path("mm_synth_" + name));
  fs::remove_all(d);
  return d;
}

// Bytes of a W4 g128 Linear in GPTQ packing (spec 2): qweight + qzeros + scales.
uint64_t w4_bytes(uint64_t k, uint64_t n) { return k * n / 2 + (k / 128) * (n / 8) * 4 + (k / 128) * n * 2; }

TEST(SynthPlan, FullPresetMatchesTheSpecTables) {
  Options o;
  o.preset = "minimax-m2.7-reap-172b";
  Expected<Plan> p = plan_checkpoint(o);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->tensors.size(), 108255u);  // spec 2: 62 * 1746 + 3

  const uint64_t H = 3072, I = 1536, E = 192, Q = 6144, KV = 1024, V = 200064;
  uint64_t layer = w4_bytes(H, Q) + 2 * w4_bytes(H, KV) + w4_bytes(Q, H) +
                   E * (2 * w4_bytes(H, I) + w4_bytes(I, H)) + (2 * H + Q + KV) * 2 + E * H * 2 + E * 4;
  uint64_t total = 62 * layer + 2 * V * H * 2 + H * 2;
  EXPECT_EQ(p->total_bytes, total);
  double gib = static_cast<double>(total) / (1ull << 30);
  EXPECT_GT(gib, 85.0);  // spec 1.4: ~85.2 GiB, card "~86 GiB"
  EXPECT_LT(gib, 86.0);

  ASSERT_EQ(p->shard_files.size(), 23u);
  EXPECT_EQ(p->shard_files.front(), "model-00001-of-00023.safetensors");
  EXPECT_EQ(p->shard_files.back(), "model-00023-of-00023.safetensors");
  uint64_t sum = 0;
  for (uint64_t b : p->shard_bytes) {
    EXPECT_LE(b, kMaxShardBytes);
    EXPECT_GT(b, kMaxShardBytes * 3 / 4);  // roughly equal
    sum += b;
  }
  EXPECT_EQ(sum, total);
  // Module order: shard numbers never decrease.
  for (size_t i = 1; i < p->tensors.size(); ++i) ASSERT_LE(p->tensors[i - 1].shard, p->tensors[i].shard);

  std::map<std::string, const PlannedTensor*> by_name;
  for (const PlannedTensor& t : p->tensors) by_name[t.name] = &t;
  const PlannedTensor* o_q = by_name.at("model.layers.61.self_attn.o_proj.qzeros");
  EXPECT_EQ(o_q->dtype, DType::I32);
  EXPECT_EQ(o_q->shape, (std::vector<int64_t>{48, 384}));
  const PlannedTensor* w2 = by_name.at("model.layers.0.block_sparse_moe.experts.191.w2.qweight");
  EXPECT_EQ(w2->shape, (std::vector<int64_t>{192, 3072}));
  const PlannedTensor* bias = by_name.at("model.layers.5.block_sparse_moe.e_score_correction_bias");
  EXPECT_EQ(bias->dtype, DType::F32);
  EXPECT_EQ(bias->shape, (std::vector<int64_t>{192}));
  EXPECT_EQ(by_name.at("model.layers.5.block_sparse_moe.gate.weight")->shape,
            (std::vector<int64_t>{192, 3072}));
  EXPECT_EQ(by_name.at("lm_head.weight")->dtype, DType::BF16);
  EXPECT_EQ(by_name.count("model.layers.0.self_attn.q_proj.g_idx"), 0u);
}

TEST(SynthPlan, GptqVariantAddsGIdxAndUsesF16) {
  Options o;
  o.preset = "minimax-m2.7-reap-172b";
  o.quant = QuantMethod::GPTQ;
  Expected<Plan> p = plan_checkpoint(o);
  ASSERT_TRUE(p.ok());
  // One g_idx per quantized linear: 62 * (4 + 192 * 3). (Spec 2 says +12,152 = 62 * 196, which
  // counts one per expert instead of one per linear.)
  EXPECT_EQ(p->tensors.size(), 108255u + 35960u);
  for (const PlannedTensor& t : p->tensors) {
    ASSERT_NE(t.dtype, DType::BF16) << t.name;
    ASSERT_NE(t.dtype, DType::F32) << t.name;
  }
}

TEST(SynthPlan, OverridesAndUsageErrors) {
  Options o;
  o.preset = "minimax-m2.7-reap-172b";
  o.layers = 2;
  o.experts = 16;
  Expected<Plan> p = plan_checkpoint(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->tensors.size(), 2u * (4 + 12 + 2 + 16 * 9) + 3);
  EXPECT_EQ(p->hp.vocab_size, 200064);

  o.experts = 4;  // below top-k 8
  Expected<Plan> bad = plan_checkpoint(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::Usage);
  EXPECT_NE(bad.error().message.find("--experts 4"), std::string::npos);

  Options u;
  u.preset = "huge";
  Expected<Plan> unknown = plan_checkpoint(u);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().exit_code(), 2);
  EXPECT_NE(unknown.error().message.find("'huge'"), std::string::npos);
}

TEST(SynthPlan, ConfigCarriesEverySpecKey) {
  Options o;
  Expected<Plan> p = plan_checkpoint(o);
  ASSERT_TRUE(p.ok());
  nlohmann::json c = nlohmann::json::parse(config_json(*p));
  EXPECT_EQ(c["architectures"][0], "MiniMaxM2ForCausalLM");
  EXPECT_EQ(c["model_type"], "minimax_m2");
  EXPECT_EQ(c["hidden_size"], 256);
  EXPECT_EQ(c["rotary_dim"], 32);
  EXPECT_EQ(c["use_qk_norm"], true);
  EXPECT_EQ(c["qk_norm_type"], "per_layer");
  EXPECT_EQ(c["scoring_func"], "sigmoid");
  EXPECT_EQ(c["use_routing_bias"], true);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["torch_dtype"], "bfloat16");
  EXPECT_EQ(c["attn_type_list"], nlohmann::json({1, 1}));
  EXPECT_EQ(c["vocab_size"], 2112);
  const nlohmann::json& q = c["quantization_config"];
  EXPECT_EQ(q["quant_method"], "auto-round");
  EXPECT_EQ(q["packing_format"], "auto_round:auto_gptq");
  EXPECT_EQ(q["extra_config"]["model.layers.1.block_sparse_moe.gate"],
            nlohmann::json({{"bits", 16}, {"data_type", "float"}}));
  nlohmann::json g = nlohmann::json::parse(generation_config_json(*p));
  EXPECT_EQ(g["bos_token_id"], 2034);
  EXPECT_EQ(g["eos_token_id"], 2020);
}

struct ShardTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // absolute file offsets
  std::string file;
};

// Independent of the writer: parses every shard the index names.
std::map<std::string, ShardTensor> read_tensors(const fs::path& dir) {
  std::map<std::string, ShardTensor> out;
  nlohmann::json index = nlohmann::json::parse(read_all(dir / "model.safetensors.index.json"));
  std::map<std::string, bool> files;
  for (auto& [name, file] : index["weight_map"].items()) files[file.get<std::string>()] = true;
  uint64_t total = 0;
  for (auto& [file, _] : files) {
    // Only the header: the data of a sparse full-size shard is gigabytes of holes.
    std::ifstream f(dir / file, std::ios::binary);
    unsigned char prefix[8] = {};
    f.read(reinterpret_cast<char*>(prefix), 8);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(prefix[i]) << (8 * i);
    std::string text(hlen, '\0');
    f.read(text.data(), static_cast<std::streamsize>(hlen));
    EXPECT_TRUE(f.good()) << file;
    nlohmann::json h = nlohmann::json::parse(text);
    uint64_t data_end = 0;
    for (auto& [n, t] : h.items())
      if (n != "__metadata__") data_end = std::max(data_end, t["data_offsets"][1].get<uint64_t>());
    EXPECT_EQ(fs::file_size(dir / file), 8 + hlen + data_end) << file;
    for (auto& [name, t] : h.items()) {
      if (name == "__metadata__") continue;
      ShardTensor st;
      st.dtype = t["dtype"];
      st.shape = t["shape"].get<std::vector<int64_t>>();
      st.begin = 8 + hlen + t["data_offsets"][0].get<uint64_t>();
      st.end = 8 + hlen + t["data_offsets"][1].get<uint64_t>();
      st.file = file;
      EXPECT_EQ(index["weight_map"][name], file) << name;
      total += st.end - st.begin;
      out[name] = st;
    }
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), out.size());
  return out;
}

TEST(SynthWrite, TinyCheckpointIsCompleteAndDeterministic) {
  fs::path dir = fresh_dir("tiny");
  Options o;
  o.out_dir = dir.string();
  o.seed = 5;
  o.threads = 2;
  Expected<WriteSummary> s = write_checkpoint(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->tensors, 2u * (4 + 12 + 2 + 8 * 9) + 3);
  EXPECT_EQ(s->shards, 1u);
  for (const char* f : {"config.json", "quantization_config.json", "generation_config.json",
                        "model.safetensors.index.json", "tokenizer.json", "chat_template.jinja",
                        "model-00001-of-00001.safetensors"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  nlohmann::json tok = nlohmann::json::parse(read_all(dir / "tokenizer.json"));
  EXPECT_TRUE(tok.contains("added_tokens"));
  EXPECT_NE(read_all(dir / "chat_template.jinja").find("minimax:tool_call"), std::string::npos);

  std::map<std::string, ShardTensor> t = read_tensors(dir);
  ASSERT_EQ(t.size(), s->tensors);
  std::string shard = read_all(dir / "model-00001-of-00001.safetensors");

  const ShardTensor& qz = t.at("model.layers.1.block_sparse_moe.experts.3.w2.qzeros");
  EXPECT_EQ(qz.dtype, "I32");
  EXPECT_EQ(qz.shape, (std::vector<int64_t>{2, 32}));
  for (uint64_t off = qz.begin; off < qz.end; off += 4) {
    uint32_t w;
    std::memcpy(&w, shard.data() + off, 4);
    ASSERT_EQ(w, kQZerosWord);
  }
  // The q_proj of layer 0 dequantizes to within half a step of the regenerated masters.
  const ShardTensor& qw = t.at("model.layers.0.self_attn.q_proj.qweight");
  const ShardTensor& sc = t.at("model.layers.0.self_attn.q_proj.scales");
  ASSERT_EQ(qw.shape, (std::vector<int64_t>{32, 256}));
  ASSERT_EQ(sc.shape, (std::vector<int64_t>{2, 256}));
  const int64_t K = 256, N = 256;
  std::vector<float> master(K * N);
  generate_masters(tensor_key(5, "model.layers.0.self_attn.q_proj"), {0.0, 1.0 / 16}, 0, master.size(),
                   master.data());
  int negative = 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      uint32_t word;
      uint16_t s16;
      std::memcpy(&word, shard.data() + qw.begin + ((k / 8) * N + n) * 4, 4);
      std::memcpy(&s16, shard.data() + sc.begin + ((k / 128) * N + n) * 2, 2);
      float scale = f16_to_float(s16);
      if (k % 128 == 0 && scale < 0) ++negative;
      // Half a step, except where the side opposite the extreme is clamped at +7: then one step.
      int q = static_cast<int>((word >> (4 * (k % 8))) & 0xF);
      float bound = (q == 15 ? std::fabs(scale) : std::fabs(scale) / 2) + 1e-7f;
      ASSERT_LE(std::fabs(dequantize(word, k, scale) - master[n * K + k]), bound) << n << "," << k;
    }
  }
  EXPECT_GT(negative, 2 * N / 4);  // about half the scales are negative (spec 4.1)
  EXPECT_LT(negative, 2 * N * 3 / 4);

  // Same seed, same bytes; another seed, other weights.
  fs::path again = fresh_dir("tiny_again");
  o.out_dir = again.string();
  o.threads = 1;
  ASSERT_TRUE(write_checkpoint(o).ok());
  EXPECT_EQ(read_all(again / "model-00001-of-00001.safetensors"), shard);
  fs::path other = fresh_dir("tiny_other");
  o.out_dir = other.string();
  o.seed = 6;
  ASSERT_TRUE(write_checkpoint(o).ok());
  EXPECT_NE(read_all(other / "model-00001-of-00001.safetensors"), shard);
  fs::remove_all(dir);
  fs::remove_all(again);
  fs::remove_all(other);
}

TEST(SynthWrite, GptqVariantStoresGIdxAndF16) {
  fs::path dir = fresh_dir("gptq");
  Options o;
  o.out_dir = dir.string();
  o.quant = QuantMethod::GPTQ;
  ASSERT_TRUE(write_checkpoint(o).ok());
  EXPECT_TRUE(fs::exists(dir / "quantize_config.json"));
  EXPECT_FALSE(fs::exists(dir / "quantization_config.json"));
  nlohmann::json q = nlohmann::json::parse(read_all(dir / "quantize_config.json"));
  EXPECT_EQ(q["quant_method"], "gptq");
  EXPECT_EQ(q["desc_act"], false);
  EXPECT_TRUE(q["dynamic"].contains("-:model\\.layers\\.0\\.block_sparse_moe\\.gate"));
  std::map<std::string, ShardTensor> t = read_tensors(dir);
  std::string shard = read_all(dir / "model-00001-of-00001.safetensors");
  const ShardTensor& g = t.at("model.layers.0.block_sparse_moe.experts.0.w2.g_idx");
  ASSERT_EQ(g.shape, (std::vector<int64_t>{256}));
  for (int64_t k = 0; k < 256; ++k) {
    int32_t v;
    std::memcpy(&v, shard.data() + g.begin + k * 4, 4);
    ASSERT_EQ(v, k / 128);
  }
  EXPECT_EQ(t.at("model.embed_tokens.weight").dtype, "F16");
  EXPECT_EQ(t.at("model.layers.0.block_sparse_moe.e_score_correction_bias").dtype, "F16");
  fs::remove_all(dir);
}

TEST(SynthWrite, RefusesANonEmptyDirectoryUnlessForced) {
  fs::path dir = fresh_dir("nonempty");
  fs::create_directories(dir);
  std::ofstream(dir / "model-00009-of-00009.safetensors") << "stale";
  std::ofstream(dir / "notes.txt") << "keep";
  Options o;
  o.out_dir = dir.string();
  Expected<WriteSummary> s = write_checkpoint(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().exit_code(), 1);
  EXPECT_NE(s.error().message.find(dir.string()), std::string::npos);
  EXPECT_NE(s.error().message.find("--force"), std::string::npos);
  o.force = true;
  ASSERT_TRUE(write_checkpoint(o).ok());
  EXPECT_FALSE(fs::exists(dir / "model-00009-of-00009.safetensors"));  // stale shard removed
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));                          // not ours: kept
  fs::remove_all(dir);
}

TEST(SynthWrite, SparseFullPresetIsFastAndSmallOnDisk) {
  fs::path dir = fresh_dir("sparse_full");
  Options o;
  o.preset = "minimax-m2.7-reap-172b";
  o.out_dir = dir.string();
  o.sparse = true;
  Expected<WriteSummary> s = write_checkpoint(o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->tensors, 108255u);
  EXPECT_EQ(s->shards, 23u);
  uint64_t apparent = 0, allocated = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    struct stat st;
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    apparent += static_cast<uint64_t>(st.st_size);
    allocated += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  EXPECT_GT(apparent, s->bytes);          // headers + every tensor byte
  // Headers, side files and the zero points (kept real so the runtime's load-time check passes:
  // about 0.8 GB for 62 layers); every other byte is a hole.
  EXPECT_LT(allocated, 1ull << 30);
  std::map<std::string, ShardTensor> t = read_tensors(dir);
  EXPECT_EQ(t.size(), 108255u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mm::synth
