// Plan weights from a checkpoint directory into their destinations (design.md section 3, Weights):
// one reading pipeline for both backends.
//
//   reader threads ──▶ bounded staging buffers ──▶ the consumer (calling thread) ──▶ LoadSink
//   (pread, O_DIRECT        (pinned for the          applies the load-time          (device: async
//    where allowed)          device)                 transforms in file order         copies; host:
//                                                                                     memcpy)
//
// The plan's source tensors are sorted by shard (file name order) and offset and merged into
// extents (small gaps between tensors are read through); extents are cut into chunks at multiples
// of the chunk size, so O_DIRECT requests stay aligned and every read is at most one staging
// buffer. Readers take a free buffer, then the next chunk, so several large reads are in flight
// at ascending offsets; the consumer takes the chunks in order and hands each piece of a tensor
// that lies in it to the sink: contiguous copies (COPY, STACK_EXPERTS, CONCAT_N along the first
// dim), strided row copies (CONCAT_N along the last dim, STACK_EXPERTS_W13: each source's rows go
// to their columns of the destination rows, so w1 and w3 never need to be held together),
// elementwise upcasts through a small scratch, and the zero-point check (CHECK_ZEROS). A buffer
// goes back to the readers once the sink's copies from it completed. Host memory stays at the
// staging buffers (readers + 2 chunks of 32 MiB by default) whatever the checkpoint size, and the
// page cache is dropped behind the reads (O_DIRECT bypasses it). Measured on a virtual disk: 4
// readers of 32 MiB with O_DIRECT match or beat `cat`; through the page cache one reader does
// (several readers there halve the rate), so that is the default where O_DIRECT is refused.
//
// Read errors name the shard file and the offset of the failed request; a file that ends before
// the plan's data does ("short read") is reported the same way.
//
// Two more sources for the cuda backend: random (valid random values of each weight's role,
// generated once per role on the host and tiled over the device weights) and host weights
// (tests: the bytes of the host backend, uploaded as they are).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/device.h"
#include "runtime/src/plan_reader.h"
#include "runtime/src/shard_io.h"
#include "runtime/src/weights.h"
#include "support/status.h"

namespace mm::rt {

struct WeightLoadStats {
  std::string source;            // "checkpoint", "random" or "host"
  uint64_t file_bytes = 0;       // bytes read from the shards (tensor data, gaps read through, alignment)
  uint64_t device_bytes = 0;     // bytes of weights written
  uint64_t staging_bytes = 0;    // staging buffers + transform scratch the loader held
  double seconds = 0;            // checking the directory, reading, transforms and copies
  int readers = 0;               // reader threads
  int files = 0;                 // shards read
  int direct_files = 0;          // shards read with O_DIRECT throughout
  int64_t rss_before_kib = 0;    // current RSS when the load started
  int64_t peak_rss_kib = 0;      // getrusage ru_maxrss after the load (process high-water mark)
};

enum class IoMode {
  AUTO,      // O_DIRECT where the filesystem allows it, else buffered
  DIRECT,    // O_DIRECT or an error
  BUFFERED,  // the page cache (dropped behind the reads)
};
// "auto" | "direct" | "buffered" (empty: auto).
Expected<IoMode> parse_io_mode(const std::string& text);
const char* io_mode_name(IoMode mode);

struct LoadOptions {
  int readers = 0;                          // reader threads (requests in flight); 0: 4 with
                                            // O_DIRECT, 1 through the page cache (its readahead)
  uint64_t chunk_bytes = uint64_t{32} << 20;  // largest read; rounded up to kDirectAlign
  int buffers = 0;                          // staging buffers; 0: readers + 2
  IoMode io = IoMode::AUTO;
  bool progress = false;                    // a progress line on stderr (GB, GB/s, ETA)
  ShardFs* fs = nullptr;                    // null: the real filesystem (tests inject faults)
};

// Where the consumer puts the bytes. Only the calling thread of stream_weights() calls it.
class LoadSink {
 public:
  virtual ~LoadSink() = default;
  // A staging buffer of `bytes` (a multiple of kDirectAlign), aligned to kDirectAlign; the sink
  // owns it until it is destroyed.
  virtual Expected<uint8_t*> staging(uint64_t bytes) = 0;
  // n bytes from host memory to `dst`; src stays valid until the buffer holding it is reclaimed.
  virtual Status copy(void* dst, const uint8_t* src, uint64_t n) = 0;
  // `rows` rows of row_bytes, contiguous in src, to dst, dst + dst_pitch, ...
  virtual Status copy_rows(void* dst, uint64_t dst_pitch, const uint8_t* src, uint64_t row_bytes, uint64_t rows) = 0;
  // Host memory for a transform's output (n <= scratch_limit()), handed to copy() right after.
  virtual uint64_t scratch_limit() const = 0;
  virtual Expected<uint8_t*> scratch(uint64_t n) = 0;
  // The consumer is done with staging buffer `buf` (copies from it may still be running).
  virtual Status retire(uint8_t* buf) = 0;
  // Whether the copies from a retired `buf` have completed; wait: until they have.
  virtual Expected<bool> reclaim(uint8_t* buf, bool wait) = 0;
  // Waits for every copy.
  virtual Status finish() = 0;
  virtual uint64_t held_bytes() const = 0;   // host memory the sink holds (staging + scratch)
};

// memcpy into host memory (the host backend; tests).
std::unique_ptr<LoadSink> make_host_sink();
// Page-locked staging buffers (cuMemHostRegister over ordinary memory, so O_DIRECT can read into
// them) and asynchronous copies on the device's stream, one event per buffer.
Expected<std::unique_ptr<LoadSink>> make_device_sink(Device& dev);

// Byte offset of every plan weight in one device allocation (256-byte aligned; CHECK_ZEROS
// weights take no space).
struct WeightLayout {
  std::vector<uint64_t> offsets;
  uint64_t total_bytes = 0;
};
WeightLayout weight_layout(const Plan& plan);

// Checks the directory against the plan (check_weights_dir, on another thread while the reads run:
// its error is the one reported) and streams every weight of `plan`
// into dst[i] (null for CHECK_ZEROS weights, which are only verified) through `sink`.
Status stream_weights(const Plan& plan, const std::string& dir, const std::vector<void*>& dst,
                      LoadSink& sink, const LoadOptions& options, WeightLoadStats* stats);

// The host backend's weights: check_weights_dir, host memory for every weight, then
// stream_weights through a host sink.
Expected<HostWeights> load_host_weights(const Plan& plan, const std::string& dir, const LoadOptions& options = {},
                                        WeightLoadStats* stats = nullptr);

// The shard files `plan` reads from `dir`, in the order the loader reads them.
ShardSet plan_shards(const Plan& plan, const std::string& dir);

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
