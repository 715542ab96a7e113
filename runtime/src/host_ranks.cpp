#include "runtime/src/host_ranks.h"

#include <algorithm>

#include "runtime/src/plan_reader.h"

namespace mm::rt {

void RankGroup::all_reduce(int rank, const RefParams& params, const mm_kernel_args& args) {
  std::unique_lock<std::mutex> lock(mu_);
  ptrs_[static_cast<size_t>(rank)] = args.ptr[0];
  if (++arrived_ < ranks_) {
    const uint64_t gen = generation_;
    cv_.wait(lock, [&] { return generation_ != gen; });
    return;
  }
  // Last to arrive: every rank's buffer is final (each rank wrote it before arriving).
  mm_kernel_args all = args;
  for (int r = 0; r < ranks_; ++r) all.ptr[r] = ptrs_[static_cast<size_t>(r)];
  run_reference(plan::KernelKind::ALL_REDUCE, params, all);
  arrived_ = 0;
  ++generation_;
  cv_.notify_all();
}

Expected<std::unique_ptr<HostRanks>> HostRanks::create(std::shared_ptr<const Plan> plan, HostWeights weights,
                                                       int64_t kv_blocks) {
  std::unique_ptr<HostRanks> h(new HostRanks());
  const int ranks = plan->ranks();
  h->group_ = std::make_unique<RankGroup>(ranks);
  auto shared = std::make_shared<HostWeights>(std::move(weights));
  for (int r = 0; r < ranks; ++r) {
    auto ex = HostExecutor::create_rank(plan, shared, kv_blocks, r, h->group_.get());
    if (!ex) return ex.error();
    h->ranks_.push_back(std::move(*ex));
  }
  const auto& def = plan->def();
  const int64_t rows = std::max(def.limits()->max_batch(), int64_t{1});
  h->logits_stride_ = static_cast<size_t>(rows * def.model()->vocab_size());
  h->sampled_stride_ = static_cast<size_t>(rows);
  h->scratch_logits_.resize(h->logits_stride_ * static_cast<size_t>(ranks - 1));
  h->scratch_sampled_.resize(h->sampled_stride_ * static_cast<size_t>(ranks - 1));
  h->results_.resize(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) h->workers_.emplace_back([p = h.get(), r] { p->worker(r); });
  return h;
}

HostRanks::~HostRanks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

Status HostRanks::ensure_kv_blocks(int64_t blocks) {
  for (auto& r : ranks_)
    if (Status st = r->ensure_kv_blocks(blocks); !st) return st;
  return Status::success();
}

void HostRanks::worker(int rank) {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || call_ != seen; });
    if (stop_) return;
    seen = call_;
    CallIo io = io_;
    if (rank > 0) {  // only rank 0 writes the caller's outputs
      io.logits = scratch_logits_.data() + logits_stride_ * static_cast<size_t>(rank - 1);
      io.sampled = scratch_sampled_.data() + sampled_stride_ * static_cast<size_t>(rank - 1);
    }
    const std::string& program = *program_;
    const CallDims dims = dims_;
    lock.unlock();
    Status st = ranks_[static_cast<size_t>(rank)]->run(program, dims, io);
    lock.lock();
    results_[static_cast<size_t>(rank)] = std::move(st);
    if (++done_ == static_cast<int>(ranks_.size())) cv_.notify_all();
  }
}

Status HostRanks::run(const std::string& program, const CallDims& dims, const CallIo& io) {
  std::unique_lock<std::mutex> lock(mu_);
  program_ = &program;
  dims_ = dims;
  io_ = io;
  done_ = 0;
  ++call_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_ == static_cast<int>(ranks_.size()); });
  for (size_t r = 0; r < results_.size(); ++r)
    if (!results_[r]) return Error::internal("rank " + std::to_string(r) + ": " + results_[r].error().message);
  return Status::success();
}

}  // namespace mm::rt
