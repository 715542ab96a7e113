//===- Compile.h - the `mmc compile` pipeline as a library -----*- C++ -*-===//
//
// MODEL_DIR -> moe IR -> fused moe IR -> exec IR -> CUDA -> cubins -> plan. Every phase can be
// printed (--emit). The tool main (tools/mmc) only parses flags and calls compileCommand.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mm::compiler {

enum class EmitKind { Moe, MoeFused, Exec, Cuda, Plan };

struct CompileOptions {
  std::string modelDir;
  std::string output = "-";              // plan path for EmitKind::Plan; "-" = stdout for IR
  std::vector<std::string> targets;      // e.g. {"sm_121", "sm_90"}
  int64_t maxSeqLen = 4096;
  int64_t maxBatch = 16;
  // Prefill chunk (capped at maxSeqLen). 4096 tokens: a chunk reads every expert's weights once
  // (84 GB over 62 layers), so larger chunks spend less of the prompt on weight traffic and give
  // the grouped expert GEMMs ~170 rows per expert; the arena grows ~0.12 MB per token (504 MiB).
  int64_t maxPrefillTokens = 4096;
  std::string kvCacheDtype = "bf16";     // bf16 | fp8
  int64_t prefillTileRows = 0;           // prefill W4 GEMM tile rows (64 | 128), 0: automatic
  std::string qweightLayout = "strips";  // strips | rows: device layout of the int4 words (kinds.def QL)
  int64_t tp = 1;                        // tensor-parallel ranks (docs/parallel.md)
  int64_t ep = 1;                        // expert-parallel ranks: 1, or tp when tp > 1
  // Directory of kernels compiled before (codegen/nvrtc/kernel_cache.h); "" = compile every one.
  std::string kernelCache;
  EmitKind emit = EmitKind::Plan;
  bool stats = false;                    // print op/launch counts per program to stderr
};

// Runs the pipeline; prints diagnostics to stderr. Returns the process exit code of
// design.md section 6: 0 success, 1 bad input, 3 internal error.
int compileCommand(const CompileOptions &opts);

} // namespace mm::compiler
