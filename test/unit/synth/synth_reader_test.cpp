// mm-synth's output through the project's checkpoint reader (models/common/checkpoint.h): the two
// were written from the spec independently, so agreement checks both.
#include <filesystem>

#include <gtest/gtest.h>

#include "models/common/checkpoint.h"
#include "models/synth/synth.h"
#include "test/unit/temp_path.h"

namespace mm::synth {
namespace {

namespace fs = std::filesystem;

Expected<ModelDesc> synth_and_read(Options o, const std::string& name) {
  fs::path dir = fs::path(mm::test::temp_path("mm_synth_reader_" + name));
  fs::remove_all(dir);
  o.out_dir = dir.string();
  Expected<WriteSummary> s = write_checkpoint(o);
  if (!s) return s.error();
  Expected<ModelDesc> m = read_checkpoint(dir.string());
  fs::remove_all(dir);
  return m;
}

TEST(SynthThroughReader, TinyAutoRound) {
  Options o;
  Expected<ModelDesc> m = synth_and_read(o, "tiny");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->quant.method, QuantMethod::AUTO_ROUND);
  EXPECT_EQ(m->hp.hidden_size, 256);
  EXPECT_EQ(m->hp.rotary_dim, 32);
  EXPECT_EQ(m->hp.top_k, 2);
  EXPECT_EQ(m->hp.bos_token_id, 2034);
  EXPECT_EQ(m->tensors.size(), 183u);
  EXPECT_EQ(m->activation_dtype, DType::BF16);
  LinearInfo q = m->linear(minimax_m2::Role::Q_PROJ, 1, -1);
  EXPECT_TRUE(q.quantized);
  EXPECT_EQ(q.in_features, 256);
  LinearInfo gate = m->linear(minimax_m2::Role::ROUTER, 0, -1);
  EXPECT_FALSE(gate.quantized);
  EXPECT_TRUE(m->warnings.empty()) << m->warnings.front();
}

TEST(SynthThroughReader, TinyGptq) {
  Options o;
  o.quant = QuantMethod::GPTQ;
  Expected<ModelDesc> m = synth_and_read(o, "gptq");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->quant.method, QuantMethod::GPTQ);
  EXPECT_EQ(m->activation_dtype, DType::F16);
  EXPECT_GE(m->linear(minimax_m2::Role::EXPERT_W2, 1, 7).g_idx, 0);
}

TEST(SynthThroughReader, FullSparse) {
  Options o;
  o.preset = "minimax-m2.7-reap-172b";
  o.sparse = true;
  Expected<ModelDesc> m = synth_and_read(o, "full");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->tensors.size(), 108255u);
  EXPECT_EQ(m->shard_files.size(), 23u);
  EXPECT_EQ(m->hp.num_experts, 192);
  EXPECT_EQ(m->hp.max_position_embeddings, 204800);
  EXPECT_EQ(m->hp.eos_token_ids, (std::vector<int64_t>{200020}));
}

}  // namespace
}  // namespace mm::synth
