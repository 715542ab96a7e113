// The cuda backend: runs a plan's programs on one GPU through the driver wrapper
// (runtime/cuda/device.h). At creation it opens the device, checks the plan's arch, loads every
// kernel module (cubin for the device's arch, PTX fallback), sizes and allocates device memory
// (weights, the plan's arena, the runtime inputs/outputs of docs/kernels.md section 2 at fixed
// addresses, the paged KV pools per layer), refusing with a clear error when something does not
// fit, and loads the weights (weight_stream.h). A call copies its inputs host-to-device, launches
// the program on one stream and copies the logits and sampled tokens back.
//
// Decode runs as CUDA graphs, one per batch bucket (1, 2, 4, ... up to the plan's decode limit,
// which is always a bucket), captured on first use and replayed: a batch of B sequences runs the
// smallest bucket >= B with the extra rows padded by a dummy sequence (token 0 at position 0 in
// a block-table row of its own, after the plan's max_batch rows, whose blocks all point at one
// scratch KV block), so padding never touches a real sequence's cache; its logits and samples
// are ignored. Every pointer a launch takes is fixed, and the only per-call values the kernels
// read from their arguments are the dims; graphs bake T = R = S = bucket, CTX = the plan's
// max_seq_len (no kernel reads CTX: attention bounds keys by positions[]) and STEP = 0. SAMPLE
// draws u from splitmix64(seed ^ splitmix64(STEP * C + row)), so a replay passes each row's
// seed as seed ^ splitmix64(STEP * C + row) ^ splitmix64(row), which gives exactly the draw of
// the real STEP.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/device.h"
#include "runtime/src/binding.h"
#include "runtime/src/weight_stream.h"
#include "runtime/src/executor.h"
#include "runtime/src/plan_reader.h"
#include "runtime/src/weights.h"

namespace mm::rt {

struct CudaOptions {
  std::string weights;                   // checkpoint directory, or "random"
  uint64_t seed = 0;                     // random weights
  const HostWeights* host_weights = nullptr;  // when set, uploaded instead (tests: same bytes as the host backend)
  int device = 0;                        // ordinal
  int64_t max_seq_len = 0;               // 0: as long as gpu_memory_utilization allows, capped by the plan
  int64_t max_seqs = 1;                  // sequences sharing the KV cache, <= the plan's max_batch
  double gpu_memory_utilization = 0.9;   // share of the memory left after weights/arena the KV cache may take (max_seq_len 0)
  bool progress = false;                 // weight-loading progress line on stderr
  bool cuda_graphs = true;               // decode through per-bucket CUDA graphs
  LoadOptions load;                      // checkpoint reading: reader threads, chunk, O_DIRECT (weight_stream.h)
  // Launches the plan marks `pdl` overlap their predecessor (programmatic dependent launch);
  // false launches them one after the other. The environment variable MM_CUDA_PDL=0 turns it off
  // too (an A/B switch for measurements).
  bool pdl = true;
};

// Timing of program calls: gpu_ms between CUDA events recorded before the input copies and after
// the output copies; wall_ms on the host around the whole call.
struct CallTiming {
  double gpu_ms = 0, wall_ms = 0;
  int64_t tokens = 0;   // T of the call (real rows, not the padded bucket)
  bool graph = false;
};
struct CallStats {
  int64_t calls = 0, tokens = 0;
  double gpu_ms = 0, wall_ms = 0;
  double tokens_per_second() const { return wall_ms > 0 ? tokens / (wall_ms / 1000.0) : 0.0; }
  void add(const CallTiming& t);
};

class CudaExecutor final : public Executor {
 public:
  static Expected<std::unique_ptr<CudaExecutor>> create(std::shared_ptr<const Plan> plan, const CudaOptions& opts);
  ~CudaExecutor() override;

  int64_t kv_blocks() const override { return kv_blocks_; }
  Status run(const std::string& program, const CallDims& dims, const CallIo& io) override;
  const char* name() const override { return "cuda"; }

  const DeviceInfo& device_info() const { return dev_->info(); }
  // For tests: the device and where plan weight i lives (null for CHECK_ZEROS).
  Device& device() { return *dev_; }
  void* weight_device_ptr(size_t i) const { return weight_ptrs_[i]; }
  // The sequence length and count the KV cache was sized for (pass them to Session::create).
  int64_t max_seq_len() const { return max_seq_len_; }
  int64_t max_seqs() const { return max_seqs_; }
  const WeightLoadStats& load_stats() const { return load_; }
  uint64_t weight_bytes() const { return weights_bytes_; }
  uint64_t kv_bytes() const { return kv_bytes_; }
  uint64_t arena_bytes() const { return arena_bytes_; }
  int graphs_captured() const { return static_cast<int>(graphs_.size()); }

  const CallTiming& last_call() const { return last_; }
  // Totals per program ("prefill", "decode") since creation or reset_stats().
  CallStats stats(const std::string& program) const;
  void reset_stats() { stats_.clear(); }
  // "cuda NVIDIA H100 (sm_90): weights 86.1 GiB (random, 3.2 s, peak RSS 310 MiB), KV 4.0 GiB
  // (2048 blocks, max_seq_len 32768 x 1), arena 120 MiB"
  std::string summary() const;

 private:
  struct Launch {
    const plan::LaunchDef* def = nullptr;  // grid formulas (launch_grid)
    size_t kernel = 0;
    Dim3 block;
    int smem = 0;
    mm_kernel_args args{};
    std::string note;
    bool pdl = false;   // programmatic dependent launch (the plan's LaunchDef.pdl, if enabled)
  };
  CudaExecutor() = default;
  Status init(const CudaOptions& opts);
  Status check_options(const CudaOptions& opts);
  Status open_device(const CudaOptions& opts);
  Status load_modules();
  Status plan_memory(const CudaOptions& opts);  // KV blocks from the options and free memory
  Status allocate();
  Status load_weights(const CudaOptions& opts);
  Status build_launches();
  Status launch_program(const std::vector<Launch>& launches, const int64_t* dims);
  Expected<cu::CUgraphExec> graph_for(size_t bucket);
  Status free_all();
  void* input(plan::InputSlot slot) const { return slot_dev_[static_cast<int>(slot)]; }

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Device> dev_;
  const cu::Symbols* sym_ = nullptr;
  std::vector<Kernel> kernels_;
  std::map<std::string, std::vector<Launch>> programs_;
  // Device memory: one allocation each.
  void* weights_ = nullptr;
  void* arena_ = nullptr;
  void* io_dev_ = nullptr;
  void* kv_mem_ = nullptr;
  uint8_t* io_host_ = nullptr;    // pinned mirror of io_dev_ (same layout)
  std::array<void*, kInputSlots> slot_dev_{};
  std::array<uint8_t*, kInputSlots> slot_host_{};
  std::array<uint64_t, kInputSlots> slot_off_{};
  WeightLayout layout_;
  KvLayout kv_;
  uint64_t kv_pool_bytes_ = 0, kv_scale_bytes_ = 0;  // one pool of one layer (blocks + scratch)
  std::vector<void*> weight_ptrs_;
  std::vector<void*> kv_ptrs_;    // per layer: k, v, k_scale, v_scale (null without fp8)
  uint64_t weights_bytes_ = 0, arena_bytes_ = 0, io_bytes_ = 0, kv_bytes_ = 0;
  int64_t kv_blocks_ = 0, max_seq_len_ = 0, max_seqs_ = 0;
  int64_t max_tokens_ = 0, max_rows_ = 0, decode_max_ = 0, max_batch_ = 0, max_blocks_ = 0, vocab_ = 0;
  bool use_graphs_ = true;
  bool use_pdl_ = true;
  std::string pdl_fallback_;   // why graph capture ran without programmatic launches, if it did
  std::vector<int64_t> buckets_;
  std::map<size_t, cu::CUgraphExec> graphs_;
  cu::CUevent ev_start_ = nullptr, ev_end_ = nullptr;
  WeightLoadStats load_;
  CallTiming last_;
  std::map<std::string, CallStats> stats_;
};

// The factory mmrun calls (the concrete type stays reachable through dynamic_cast for timings).
Expected<std::unique_ptr<Executor>> make_cuda_executor(std::shared_ptr<const Plan> plan, const CudaOptions& opts);

}  // namespace mm::rt
