//===- PlanWriter.h - exec IR + cubins -> plan flatbuffer -------*- C++ -*-===//
//
// Serializes a memory-planned exec module into the plan schema owned by the runtime
// (runtime/schemas/plan.fbs) through its generated builders. Weights stay by reference: each
// source tensor is resolved against the checkpoint's headers (file, offset, bytes).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llvm/ADT/StringMap.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include "models/common/checkpoint.h"
#include "runtime/schemas/plan_version.h"

namespace mm::compiler {

struct KernelBinary {
  std::string arch;             // "sm_90"
  std::vector<uint8_t> cubin;
  int registers = -1, sharedBytes = -1, localBytes = -1;
};

struct CompiledKernel {
  std::string entry;            // the __global__ function name
  std::vector<KernelBinary> binaries;
  std::string ptx;
  std::string ptxArch;          // "compute_90"
  uint64_t sourceHash = 0;
};

struct PlanLimits {
  int64_t maxSeqLen = 0;
  int64_t maxBatch = 0;
  int64_t maxPrefillTokens = 0;
  std::string kvDtype = "bf16"; // bf16 | fp8
  int kvBlockSize = 16;
  int tp = 1;                   // tensor-parallel ranks (PlanDef.tp)
  int ep = 1;                   // expert-parallel ranks (PlanDef.ep)
};

// Kernels are keyed by the exec.kernel symbol name. Fails (with a diagnostic at the offending op)
// on an unknown kernel kind, a weight source missing from the checkpoint, a buffer without an
// offset (run exec-plan-memory first) or a kernel without a compiled binary.
mlir::FailureOr<std::vector<uint8_t>>
writePlan(mlir::ModuleOp module, const mm::ModelDesc &model, const PlanLimits &limits,
          const std::vector<std::string> &targets,
          const llvm::StringMap<CompiledKernel> &kernels);

// The schema version this compiler writes (the runtime refuses newer ones).
using mm::plan::kPlanSchemaVersion;  // runtime/schemas/plan_version.h

} // namespace mm::compiler
