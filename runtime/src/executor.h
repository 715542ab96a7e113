// The backend interface: runs one program call (prefill chunk or decode step) of a plan. Inputs
// and outputs are host arrays (docs/kernels.md section 2); a device backend copies them.
#pragma once

#include <cstdint>
#include <string>

#include "support/status.h"

namespace mm::rt {

struct CallDims {
  int64_t T = 0;     // tokens
  int64_t R = 0;     // logit rows
  int64_t S = 0;     // sequences
  int64_t CTX = 0;   // max position + 1
  int64_t STEP = 0;  // sampling step
};

struct CallIo {
  const int32_t* tokens = nullptr;        // [T]
  const int32_t* positions = nullptr;     // [T]
  const int32_t* seq_slots = nullptr;     // [T]
  const int32_t* block_tables = nullptr;  // [max_batch, max_blocks_per_seq]
  const int32_t* logit_rows = nullptr;    // [R]
  const float* temperature = nullptr;     // [R]
  const int32_t* top_k = nullptr;         // [R]
  const float* top_p = nullptr;           // [R]
  const uint64_t* seed = nullptr;         // [R]
  float* logits = nullptr;                // out [R, V]
  int32_t* sampled = nullptr;             // out [R]
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Physical KV blocks per layer this executor can hold.
  virtual int64_t kv_blocks() const = 0;
  // Makes blocks [0, blocks) usable before the Session hands one of them to a sequence. A backend
  // that allocates all of kv_blocks() up front has nothing to do; the host backend grows its pools
  // here, so that memory follows the context actually used. Fails when memory runs out.
  virtual Status ensure_kv_blocks(int64_t blocks) {
    (void)blocks;
    return Status::success();
  }
  // Runs the program named `program` ("prefill" or "decode"). The caller guarantees the dims are
  // within the plan's limits and the inputs within range (Session checks them).
  virtual Status run(const std::string& program, const CallDims& dims, const CallIo& io) = 0;
  virtual const char* name() const = 0;
};

}  // namespace mm::rt
