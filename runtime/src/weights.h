// Binding a plan's weights: the plan's tensor table is checked against the safetensors headers of
// the weights directory (names, dtypes, shapes, offsets, byte sizes); the shards are then read by
// the pipeline of weight_stream.h (load_host_weights there). `--weights random` instead fills every
// weight with valid random values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/status.h"
#include "runtime/src/host_buffer.h"
#include "runtime/src/plan_reader.h"

namespace mm::rt {

struct HostWeights {
  std::vector<HostBuffer> buffers;  // per plan weight; empty for CHECK_ZEROS
  uint64_t total_bytes = 0;
  void* ptr(size_t i) const { return buffers[i].data(); }
};

// Checks every source tensor of the plan against DIR's shard headers (reads headers only), then the
// plan's model_hash against the one of DIR's tensor table (models/common/model_hash.h).
Status check_weights_dir(const Plan& plan, const std::string& dir);

// The model_hash check_weights_dir expects of a plan with this model table over DIR: over the
// checkpoint's tensor table (the index's shards), or the shards the plan names when DIR has no
// index.
Expected<uint64_t> weights_dir_model_hash(const Plan& plan, const std::string& dir);

// Element range [first, first + count) of weight `index` filled with the random values of
// random_host_weights (the same values whatever the ranges, so a device backend can fill in
// chunks).
class RandomWeightFiller {
 public:
  RandomWeightFiller(const Plan& plan, uint64_t seed);
  void fill(size_t index, uint64_t first, uint64_t count, void* dst) const;
  // What weight `index` is used as (its distribution) and the K of its matrix, as the plan
  // records them: weights with equal (role, K, dtype) may share random values (the GPU loader
  // tiles one block over all of them).
  int role(size_t index) const { return static_cast<int>(plan_->def().weights()->Get(index)->role()); }
  int64_t k(size_t index) const { return plan_->def().weights()->Get(index)->fan_in(); }

 private:
  const Plan* plan_;
  uint64_t seed_;
};

// Valid random weights of the plan's shapes: int4 nibbles uniform, scales ~ 1/(4.6 sqrt(K)) with
// random signs, norm weights near 1, dense matrices ~ U(+-sqrt(3/K)), router bias small.
// Deterministic in `seed`; the same model whatever the plan's qweight layout (plan.fbs QuantLayout).
Expected<HostWeights> random_host_weights(const Plan& plan, uint64_t seed);

}  // namespace mm::rt
