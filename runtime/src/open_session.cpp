#include "runtime/src/open_session.h"

#include <chrono>

#include "codegen/reference/reference.h"
#include "mm/mm_runtime.h"
#include "runtime/src/cuda_executor.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/host_ranks.h"
#include "runtime/src/weights.h"

namespace mm::rt {

Expected<OpenedSession> open_session(std::shared_ptr<const Plan> plan, const SessionOptions& o) {
  if (!o.device.empty() && o.device != "host" && o.device != "cuda")
    return Error::usage("device must be \"host\" or \"cuda\", got \"" + o.device + "\"");
  if (o.weights.empty()) return Error::usage("weights: a model directory or \"random\" is required");
  if (o.threads < 0 || o.threads > MM_MAX_THREADS)
    return Error::usage("threads " + std::to_string(o.threads) + " is outside [0, " +
                        std::to_string(MM_MAX_THREADS) + "] (0: every core)");
  if (o.max_seq_len < 0) return Error::usage("max_seq_len " + std::to_string(o.max_seq_len) + " is negative");
  if (!(o.gpu_memory_utilization >= 0.0 && o.gpu_memory_utilization <= 1.0))
    return Error::usage("gpu_memory_utilization " + std::to_string(o.gpu_memory_utilization) +
                        " is outside [0, 1]");
  const auto& def = plan->def();
  const bool use_cuda = o.device == "cuda" || (o.device.empty() && cuda_device_present());
  const auto t_load = std::chrono::steady_clock::now();
  OpenedSession m;
  std::unique_ptr<Executor> executor;
  int64_t max_seq_len = o.max_seq_len;
  if (use_cuda) {
    CudaOptions co;
    co.weights = o.weights;
    co.seed = o.seed;
    co.max_seq_len = max_seq_len;
    co.max_seqs = o.max_seqs;
    co.progress = o.progress;
    co.load = o.load;
    if (o.gpu_memory_utilization > 0) co.gpu_memory_utilization = o.gpu_memory_utilization;
    auto ex = CudaExecutor::create(plan, co);
    if (!ex) return ex.error();
    m.weight_bytes = (*ex)->weight_bytes();
    m.backend = "cuda (" + (*ex)->device_info().name + ", " + (*ex)->device_info().arch() + ")";
    m.details = (*ex)->summary();
    m.load = (*ex)->load_stats();
    max_seq_len = (*ex)->max_seq_len();
    executor = std::move(*ex);
  } else {
    if (o.threads > 0) ref::set_num_threads(o.threads);
    if (max_seq_len == 0) max_seq_len = def.limits()->max_seq_len();
    LoadOptions lo = o.load;
    lo.progress = o.progress;
    const auto t_weights = std::chrono::steady_clock::now();
    Expected<HostWeights> weights = o.weights == "random" ? random_host_weights(*plan, o.seed)
                                                          : load_host_weights(*plan, o.weights, lo, &m.load);
    if (!weights) return weights.error();
    if (o.weights == "random") {
      m.load.source = "random";
      m.load.device_bytes = weights->total_bytes;
      m.load.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_weights).count();
      m.load.peak_rss_kib = peak_rss_kib();
    }
    m.weight_bytes = weights->total_bytes;
    const int64_t block = def.limits()->kv_block_size();
    const int64_t kv_blocks = o.max_seqs * ((max_seq_len + block - 1) / block);
    if (plan->ranks() > 1) {
      // A sharded plan: one thread per rank, the all-reduce between them (host_ranks.h).
      auto ex = HostRanks::create(plan, std::move(*weights), kv_blocks);
      if (!ex) return ex.error();
      m.backend = "host (" + std::to_string(plan->ranks()) + " ranks: tp " + std::to_string(plan->tp()) +
                  ", ep " + std::to_string(plan->ep()) + ", " +
                  std::to_string(ref::num_threads()) + " threads)";
      executor = std::move(*ex);
    } else {
      auto ex = HostExecutor::create(plan, std::move(*weights), kv_blocks);
      if (!ex) return ex.error();
      m.backend = "host (" + std::to_string(ref::num_threads()) + " threads)";
      executor = std::move(*ex);
    }
  }
  auto session = Session::create(plan, std::move(executor), max_seq_len, o.max_seqs);
  if (!session) return session.error();
  m.session = std::move(*session);
  m.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  return m;
}

}  // namespace mm::rt
