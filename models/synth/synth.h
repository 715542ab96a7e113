// mm-synth as a library: MiniMax-M2 checkpoints in the exact on-disk format of the target
// (AutoRound W4A16 with GPTQ packing, or the auto_gptq variant), filled with deterministic random
// weights. Tensor names and shapes come from models/minimax_m2/arch.h.
//
// Master distributions (all masters are bf16; see masters.h for the generator) - chosen so the
// tiny model is numerically healthy and its greedy predictions are decisive:
//   embed_tokens                N(0, 1)          residual stream starts at unit RMS
//   norms (input, post, q, k,   1 + N(0, 0.1)    near-identity gains, but not exactly 1 so a
//          final)                                wrong norm weight shows in the output
//   q/k/v/o, experts w1/w2/w3   N(0, 1/sqrt(K))  keeps activations at unit scale per layer
//   router gate                 N(0, 2/sqrt(H))  router logits of std ~2: sigmoid scores well
//                                                spread, so top-k is rarely a near-tie
//   e_score_correction_bias     N(0, 0.01)       small next to the score spread, like a trained one
//   lm_head                     N(0, 4/sqrt(H))  final-normed hidden (RMS ~1) gives logits of
//                                                std ~4: argmax gaps are large vs bf16 noise
// The same bf16 masters are used for both quantization formats; the gptq variant stores the
// 16-bit tensors as F16 (exact for these magnitudes), so both variants compute the same model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/dtype.h"
#include "support/status.h"
#include "models/common/checkpoint.h"
#include "models/minimax_m2/arch.h"
#include "models/synth/masters.h"

namespace mm::synth {


// Preset names accepted by --preset, in the order --help lists them.
const std::vector<std::string>& preset_names();

struct Options {
  std::string preset = "tiny";
  std::string out_dir;
  uint64_t seed = 0;
  bool sparse = false;  // shard data as holes (headers and zero points real); loader at scale
  QuantMethod quant = QuantMethod::AUTO_ROUND;
  int64_t layers = -1;   // override num_hidden_layers (-1: the preset's)
  int64_t experts = -1;  // override num_local_experts (-1: the preset's)
  bool force = false;    // allow a non-empty output directory (our files in it are replaced)
  int threads = 0;       // 0: one per hardware thread
};

struct PlannedTensor {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  int shard = 0;
};

// One logical weight (a norm, a matrix or a Linear) and the tensors that store it.
struct PlannedWeight {
  minimax_m2::Role role = minimax_m2::Role::EMBED;
  int64_t layer = -1;
  int64_t expert = -1;
  std::string prefix;
  bool quantized = false;
  Distribution dist;
  size_t first_tensor = 0;  // into Plan::tensors: qweight, qzeros, scales(, g_idx) or the one tensor
  size_t num_tensors = 0;
};

struct Plan {
  std::string preset;
  minimax_m2::HParams hp;
  QuantMethod quant = QuantMethod::AUTO_ROUND;
  bool full_vocab_tokenizer = false;   // tokenizer with the special tokens at 200000+
  std::vector<PlannedTensor> tensors;  // module order: embed, layer 0..L-1, norm, lm_head
  std::vector<PlannedWeight> weights;
  std::vector<std::string> shard_files;
  std::vector<uint64_t> shard_bytes;   // data bytes per shard (without headers)
  uint64_t total_bytes = 0;            // sum of tensor bytes: the index's metadata.total_size
};

// Largest shard Hugging Face's save_pretrained makes for this checkpoint (max_shard_size "4GB");
// shards are cut into ceil(total / this) runs of roughly equal bytes, in module order.
inline constexpr uint64_t kMaxShardBytes = 4000000000ULL;

// The whole tensor table, without generating anything. Usage errors name the flag.
Expected<Plan> plan_checkpoint(const Options& options);

// The text of each JSON side file for a plan.
std::string config_json(const Plan& plan);
std::string quantization_config_json(const Plan& plan);  // auto-round: quantization_config.json;
                                                         // gptq: quantize_config.json
std::string generation_config_json(const Plan& plan);
std::string index_json(const Plan& plan);

struct WriteSummary {
  size_t tensors = 0;
  size_t shards = 0;
  uint64_t bytes = 0;  // total tensor bytes
};

// Creates options.out_dir (refusing a non-empty one unless options.force) and writes everything.
Expected<WriteSummary> write_checkpoint(const Options& options);

}  // namespace mm::synth
