// Binding a plan's weights: the plan's tensor table is checked against the safetensors headers of
// the weights directory (names, dtypes, shapes, offsets, byte sizes), then the shards are read
// with large preads and the load-time transforms of plan.fbs (WeightTransform) are applied into
// host memory. `--weights random` instead fills every weight with valid random values.
#pragma once

#include <cstdint>
#include <functional>
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

// Checks every source tensor of the plan against DIR's shard headers (reads headers only).
Status check_weights_dir(const Plan& plan, const std::string& dir);

// check_weights_dir, then reads and transforms every weight. `progress`: draw a progress line on
// stderr (bytes, GiB/s, ETA).
Expected<HostWeights> load_host_weights(const Plan& plan, const std::string& dir, bool progress);

class Shards;

// Reads and transforms one weight at a time (the cuda backend streams them to the device; the
// host backend keeps them). open() checks the directory against the plan first.
class WeightLoader {
 public:
  static Expected<std::unique_ptr<WeightLoader>> open(const Plan& plan, const std::string& dir);
  ~WeightLoader();
  // Weight `index` into `out` (left empty for CHECK_ZEROS, which is only verified). `tick` is
  // called after every source read (progress).
  Status load(size_t index, HostBuffer& out, const std::function<void()>& tick = [] {});
  // The same bytes as load(), handed to `sink` in pieces (offset into the weight, data, length)
  // with bounded host memory: at most 64 MiB of a source, one expert's w1|w3 block, or a whole
  // CONCAT_N weight along the last dim (an attention projection) at a time. For the device
  // backend, whose memory the weights live in.
  using Sink = std::function<Status(uint64_t offset, const uint8_t* data, uint64_t len)>;
  Status stream(size_t index, const Sink& sink);
  uint64_t total_source_bytes() const { return total_bytes_; }
  uint64_t bytes_read() const;

 private:
  WeightLoader() = default;
  const Plan* plan_ = nullptr;
  std::unique_ptr<Shards> shards_;
  std::vector<uint8_t> tmp_;
  uint64_t total_bytes_ = 0;
};

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
// Deterministic in `seed`.
Expected<HostWeights> random_host_weights(const Plan& plan, uint64_t seed);

}  // namespace mm::rt
