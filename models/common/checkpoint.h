// The model description every later stage uses: hyper-parameters, quantization scheme and the
// table of every tensor (dtype, shape, shard file, byte range). Built from config.json
// (+ quantization_config.json, generation_config.json), model.safetensors.index.json and the
// safetensors header of every shard - never from the tensor data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/dtype.h"
#include "support/safetensors.h"
#include "support/status.h"
#include "models/minimax_m2/arch.h"

namespace mm {

enum class QuantMethod : uint8_t { AUTO_ROUND, GPTQ };

struct QuantScheme {
  QuantMethod method = QuantMethod::AUTO_ROUND;
  int bits = 4;
  int group_size = 128;
  bool sym = true;
  std::string packing_format;  // "auto_round:auto_gptq" for auto-round; empty for gptq
};

// One Linear of the model as found on disk.
struct LinearInfo {
  bool quantized = false;   // "<prefix>.qweight" exists
  int64_t in_features = 0;  // K
  int64_t out_features = 0; // N
  // Indices into ModelDesc::tensors; -1 when absent.
  int32_t weight = -1, qweight = -1, qzeros = -1, scales = -1, g_idx = -1;
};

struct ModelDesc {
  std::string dir;
  minimax_m2::HParams hp;
  QuantScheme quant;
  DType activation_dtype = DType::BF16;  // the non-quantized dtype found on disk (BF16 or F16)
  std::vector<TensorInfo> tensors;       // every tensor of every shard, in index order
  std::map<std::string, int32_t> by_name;
  std::vector<std::string> shard_files;
  std::vector<std::string> warnings;     // e.g. unknown extra tensors, ignored MTP tensors
  std::string tokenizer_file;            // "tokenizer.json" if present, else empty
  std::string chat_template_file;        // "chat_template.jinja" if present, else empty

  const TensorInfo* find(const std::string& name) const;
  // The Linear at (role, layer, expert); quantization decided by the presence of .qweight.
  LinearInfo linear(minimax_m2::Role role, int64_t layer, int64_t expert) const;
};

// Reads and validates MODEL_DIR. Every error names the file, key or tensor and what was expected.
Expected<ModelDesc> read_checkpoint(const std::string& model_dir);

// The tensor table alone, as read_checkpoint builds it (model.safetensors.index.json and every
// shard header it names, or the single model.safetensors; by name), without config.json: what the
// runtime needs to recompute the plan's model_hash (model_hash.h).
Expected<std::vector<TensorInfo>> read_checkpoint_tensors(const std::string& model_dir);

}  // namespace mm
