// Plan weights into device memory (design.md section 3, Weights). Three sources:
//  - a checkpoint directory: the plan's tensor table is checked against the shard headers
//    (check_weights_dir), then the shards are streamed with large preads into pinned staging
//    buffers whose asynchronous copies overlap the next read; the page cache is dropped behind
//    the reader; the load-time transforms of plan.fbs are done on the way (rows composed in the
//    staging buffers), so host memory stays near the staging size whatever the checkpoint size;
//  - random: valid random values of each weight's role, generated once per role on the host
//    (a few MiB) and tiled over the device weights with device-to-device copies (seconds for the
//    86 GiB target);
//  - host weights (tests): HostWeights uploaded as they are, so both backends see the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/status.h"
#include "runtime/cuda/device.h"
#include "runtime/src/plan_reader.h"
#include "runtime/src/weights.h"

namespace mm::rt {

struct WeightLoadStats {
  std::string source;            // "checkpoint", "random" or "host"
  uint64_t file_bytes = 0;       // bytes read from the shards
  uint64_t device_bytes = 0;     // bytes of device weights written
  uint64_t staging_bytes = 0;    // pinned staging + host scratch the loader held
  double seconds = 0;
  int64_t rss_before_kib = 0;    // current RSS when the load started
  int64_t peak_rss_kib = 0;      // getrusage ru_maxrss after the load (process high-water mark)
};

// Byte offset of every plan weight in one device allocation (256-byte aligned; CHECK_ZEROS
// weights take no space).
struct WeightLayout {
  std::vector<uint64_t> offsets;
  uint64_t total_bytes = 0;
};
WeightLayout weight_layout(const Plan& plan);

// Where streamed bytes go: reserve() hands out a staging region of at most chunk_bytes(),
// submit() moves it to its destination (asynchronously for the device), finish() waits for all.
class WeightSink {
 public:
  virtual ~WeightSink() = default;
  virtual uint64_t chunk_bytes() const = 0;
  virtual Expected<uint8_t*> reserve(uint64_t n) = 0;
  virtual Status submit(uint8_t* region, uint64_t n, void* dst) = 0;
  virtual Status finish() = 0;
  virtual uint64_t held_bytes() const = 0;  // host memory the sink holds (for the RSS report)
};

// The device sink: `buffers` pinned staging buffers of `chunk` bytes, one CUDA event each;
// submit() issues cuMemcpyHtoDAsync on the device's stream and a buffer is reused only after
// its event completed.
Expected<std::unique_ptr<WeightSink>> make_device_sink(Device& dev, uint64_t chunk, int buffers);

// Streams every weight of `plan` from the checkpoint directory `dir` into dst[i] (dst[i] may be
// null for CHECK_ZEROS weights) through `sink`. Checks the directory against the plan first.
// `progress`: a progress line on stderr (bytes, GiB/s, ETA).
Status stream_weights(const Plan& plan, const std::string& dir, const std::vector<void*>& dst,
                      WeightSink& sink, bool progress, WeightLoadStats* stats);

// Fills dst with valid random weights of the plan's roles (int4 nibbles uniform, scales ~
// 1/(4.6 sqrt(K)) with random signs, norms near 1, dense ~ U(+-sqrt(3/K)), router bias small).
// Deterministic in `seed`; not the same values as random_host_weights.
Status random_weights_to_device(Device& dev, const Plan& plan, uint64_t seed,
                                const std::vector<void*>& dst, WeightLoadStats* stats);

// Copies host weights (load_host_weights / random_host_weights) to dst.
Status upload_host_weights(Device& dev, const Plan& plan, const HostWeights& weights,
                           const std::vector<void*>& dst, WeightLoadStats* stats);

// getrusage(RUSAGE_SELF).ru_maxrss (KiB) and the current RSS from /proc/self/statm (KiB; 0 when
// unavailable).
int64_t peak_rss_kib();
int64_t current_rss_kib();

}  // namespace mm::rt
