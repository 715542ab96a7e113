// config.json (+ quantization_config.json / quantize_config.json, generation_config.json) of a
// MiniMax-M2 checkpoint: hyper-parameters and quantization scheme, each key checked for presence,
// JSON type and a sane range; anything outside the supported W4A16 schemes is refused by name.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/common/checkpoint.h"
#include "support/status.h"
#include "models/minimax_m2/arch.h"

namespace mm {

// The quantization block as far as the tensor checks need it.
struct QuantConfig {
  QuantScheme scheme;
  // auto-round: modules listed in extra_config with bits >= 16 (e.g. the router gates).
  std::set<std::string> exempt_modules;
  // gptq: the regexes of `dynamic` entries "-:<regex>" (modules skipped by the quantizer).
  std::vector<std::string> skip_patterns;
};

// Hyper-parameters from a parsed config.json; `label` names the file in messages.
Expected<minimax_m2::HParams> parse_model_config(const nlohmann::json& config,
                                                 const std::string& label);

// The quantization block (config.json["quantization_config"] or a separate file).
Expected<QuantConfig> parse_quant_config(const nlohmann::json& qc, const std::string& label);

// bos/eos from generation_config.json into `hp`.
Status parse_generation_config(const nlohmann::json& gen, const std::string& label,
                               minimax_m2::HParams& hp);

}  // namespace mm
