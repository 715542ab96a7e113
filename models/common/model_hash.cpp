#include "models/common/model_hash.h"

namespace mm {

uint64_t model_hash(const ModelHashParams& hp, const std::vector<TensorInfo>& tensors) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(hp.data(), sizeof(int64_t) * hp.size());
  for (const TensorInfo& t : tensors) {
    mix(t.name.data(), t.name.size());
    const auto dt = static_cast<uint8_t>(t.dtype);
    mix(&dt, 1);
    mix(t.shape.data(), t.shape.size() * sizeof(int64_t));
    mix(&t.nbytes, sizeof(t.nbytes));
  }
  return h;
}

}  // namespace mm
