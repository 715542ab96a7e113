// config.json of a checkpoint (models/common/model_config.h): strict JSON, then the
// hyper-parameters, the quantization block and generation settings, each refusing what it cannot
// use with a message.
#include <cstdint>
#include <string_view>

#include "models/common/model_config.h"
#include "support/json_util.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto json = mm::parse_json_strict(std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
  if (!json) return 0;
  auto hp = mm::parse_model_config(*json, "config.json");
  if (!hp) FUZZ_CHECK(!hp.error().message.empty());
  if (json->is_object()) {
    if (auto qc = json->find("quantization_config"); qc != json->end()) {
      auto q = mm::parse_quant_config(*qc, "config.json: quantization_config");
      if (!q) FUZZ_CHECK(!q.error().message.empty());
    }
    if (hp) {
      mm::minimax_m2::HParams h = *hp;
      (void)mm::parse_generation_config(*json, "generation_config.json", h);
    }
  }
  return 0;
}
