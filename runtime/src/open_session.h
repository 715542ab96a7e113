// Opening a session: pick the backend (cuda when a device is usable and not refused, else the host
// reference), bind the weights (a checkpoint directory or random), size the KV cache, and wrap the
// executor in a Session. The one path behind mm_session_init (include/mm/mm_runtime.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/src/plan_reader.h"
#include "runtime/src/session.h"
#include "runtime/src/weight_stream.h"
#include "support/status.h"

namespace mm::rt {

struct SessionOptions {
  std::string weights;                  // model directory, or "random"
  std::string device;                   // "cuda", "host", or empty: cuda if usable, else host
  int64_t max_seq_len = 0;              // 0: the plan's limit on the host; on cuda what memory allows
  int64_t max_seqs = 1;
  uint64_t seed = 0;                    // random weights
  int threads = 0;                      // host backend; 0: every core
  bool progress = false;                // weight-loading progress on stderr
  double gpu_memory_utilization = 0.9;
  LoadOptions load;                     // checkpoint reading (reader threads, O_DIRECT); progress above
};

struct OpenedSession {
  std::unique_ptr<Session> session;
  std::string backend;   // "host (2 threads)", "cuda (NVIDIA H200, sm_90)"
  std::string details;   // CudaExecutor::summary(); empty on the host
  uint64_t weight_bytes = 0;
  double load_s = 0;
  WeightLoadStats load;  // the weights alone (checkpoint, random or host)
};

Expected<OpenedSession> open_session(std::shared_ptr<const Plan> plan, const SessionOptions& options);

// Whether a CUDA device can be opened through libcuda (dlopen; no link dependency).
bool cuda_device_present();

}  // namespace mm::rt
