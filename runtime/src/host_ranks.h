// The host backend of a tensor-parallel plan (docs/parallel.md): one HostExecutor per rank, each
// with its own arena, KV cache (its kv heads) and programs, over one shared copy of the weights
// (a rank reads the weights its launches name: its slices and the replicated ones). A call runs
// every rank on a thread of its own; ALL_REDUCE launches meet in a RankGroup. To the Session it
// is one Executor: rank 0 writes the call's logits and sampled ids (every rank computes the same,
// replicated lm_head), the others write scratch.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/src/executor.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/kernel_table.h"

namespace mm::rt {

// The in-process collective between rank threads. Every rank calls all_reduce with its own
// buffer; the last to arrive runs the ALL_REDUCE reference over all of them (the fp32 sum in rank
// order 0..P-1, so the result never depends on arrival order) and releases the others.
class RankGroup {
 public:
  explicit RankGroup(int ranks) : ranks_(ranks), ptrs_(static_cast<size_t>(ranks), nullptr) {}
  int ranks() const { return ranks_; }
  void all_reduce(int rank, const RefParams& params, const mm_kernel_args& args);

 private:
  const int ranks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<void*> ptrs_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

class HostRanks final : public Executor {
 public:
  static Expected<std::unique_ptr<HostRanks>> create(std::shared_ptr<const Plan> plan, HostWeights weights,
                                                     int64_t kv_blocks);
  ~HostRanks() override;
  int64_t kv_blocks() const override { return ranks_[0]->kv_blocks(); }
  Status ensure_kv_blocks(int64_t blocks) override;
  Status run(const std::string& program, const CallDims& dims, const CallIo& io) override;
  const char* name() const override { return "host"; }

 private:
  HostRanks() = default;
  void worker(int rank);

  std::unique_ptr<RankGroup> group_;
  std::vector<std::unique_ptr<HostExecutor>> ranks_;
  std::vector<float> scratch_logits_;   // [ranks - 1][max rows x V]
  std::vector<int32_t> scratch_sampled_;
  size_t logits_stride_ = 0, sampled_stride_ = 0;
  // The call every worker runs; workers wait for a new generation, the caller for `done_`.
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t call_ = 0;
  int done_ = 0;
  bool stop_ = false;
  const std::string* program_ = nullptr;
  CallDims dims_;
  CallIo io_;
  std::vector<Status> results_;
};

}  // namespace mm::rt
