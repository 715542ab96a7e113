// Loading a plan (.mmp): the file is read into 16-byte aligned memory, the whole flatbuffer is
// verified, then every structural rule the executors rely on is checked once (indices in range,
// operand counts, arena ranges, weight sizes, load-time transform shapes, kernel parameters), then
// the numbers are checked against each other (plan_verify.h: operand extents, alignment, KV layout,
// kernel parameters vs the model table, arena size).
// After load_plan succeeds the executors do no bounds checks (docs/style.md, Errors).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/status.h"
#include "runtime/schemas/plan_generated.h"
#include "runtime/schemas/plan_version.h"
#include "runtime/src/kernel_table.h"

namespace mm::rt {

// The schema version this runtime reads; the compiler writes it into PlanDef.schema_version.
inline constexpr uint32_t kSchemaVersion = plan::kPlanSchemaVersion;

// Bytes per element of a plan dtype.
size_t plan_dtype_size(plan::DType dt);
const char* plan_dtype_name(plan::DType dt);

class Plan {
 public:
  const plan::PlanDef& def() const { return *def_; }
  const std::string& origin() const { return origin_; }
  size_t size_bytes() const { return size_; }
  // Parameters of kernels[i], parsed and checked at load.
  const RefParams& kernel_params(size_t i) const { return params_[i]; }
  // The program named `name` ("prefill", "decode") of a rank (0 when unsharded); load_plan
  // guarantees both exist for every rank < ranks().
  const plan::ProgramDef& program(std::string_view name, int rank = 0) const;
  int tp() const { return def_->tp(); }
  int ep() const { return def_->ep(); }
  // Ranks of a sharded plan (docs/parallel.md): max(tp, ep); 1 when unsharded.
  int ranks() const { return std::max(def_->tp(), def_->ep()); }
  // Largest arena_bytes over the programs.
  uint64_t max_arena_bytes() const { return max_arena_; }
  int64_t max_blocks_per_seq() const;

 private:
  friend Expected<std::shared_ptr<const Plan>> load_plan_from_memory(const void*, size_t,
                                                                     const std::string&);
  struct Free { void operator()(uint8_t* p) const; };
  std::unique_ptr<uint8_t, Free> buf_;
  size_t size_ = 0;
  std::string origin_;
  const plan::PlanDef* def_ = nullptr;
  std::vector<RefParams> params_;
  uint64_t max_arena_ = 0;
};

// Reads and checks `path`. Every error is ErrorKind::BadInput and names the file and the part at
// fault.
Expected<std::shared_ptr<const Plan>> load_plan(const std::string& path);
// Same over bytes in memory (copied into aligned storage); `origin` names them in messages.
Expected<std::shared_ptr<const Plan>> load_plan_from_memory(const void* data, size_t size,
                                                            const std::string& origin);

// Whether every kernel can run on a device of compute capability major.minor: a cubin for
// "sm_<major><minor>", or PTX whose ptx_arch ("compute_XY") is not newer than the device.
Status check_plan_arch(const Plan& plan, int major, int minor);

}  // namespace mm::rt
