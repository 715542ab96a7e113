// Kernel specialization: a kind (registry.h) plus named parameters -> the checked, complete
// parameter set (defaults and the template's derived tile constants filled in), block dims,
// dynamic shared memory and grid formulas (docs/kernels.md). The compiler's lowering specializes
// each kernel once and records the result in the exec IR; kernel_source() turns a complete
// parameter set into the CUDA translation unit NVRTC compiles. MLIR-free.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "codegen/kernels/registry.h"
#include "support/status.h"

namespace mm::kernels {

struct Params {
  std::map<std::string, int64_t> ints;
  std::map<std::string, double> floats;
};

struct Specialization {
  Kind kind = Kind::EMBED;
  Params params;                 // given + defaults + derived tile constants (THREADS, WK, CS, BQ)
  std::array<int, 3> block{1, 1, 1};
  int dynamic_shared_bytes = 0;  // beyond the static arrays (ATTENTION VARIANT 3: its K/V tiles)
  std::array<DimExpr, 3> grid;
};

// Fails with a BadInput error naming the kind and the parameter when one is missing, unknown, out
// of range, or breaks the kind's rules or its template's tiling (e.g. G not a multiple of 64).
Expected<Specialization> specialize(Kind kind, const Params& params);

struct KernelSource {
  std::string entry;   // extern "C" entry point, e.g. "gemm_w4_cs4_g128_k3072_..."
  std::string source;  // complete translation unit for NVRTC
};
// Assembles the source of a complete parameter set (as specialize() returns it, or as an exec
// kernel records it): abi.h + common.cuh + namespace mmp { constants } + the typed operand views
// (MM_OPERANDS) + [w4.cuh] + <kind>.cuh. Fails when a derived constant is missing.
Expected<KernelSource> kernel_source(Kind kind, const Params& complete);
inline Expected<KernelSource> kernel_source(const Specialization& s) { return kernel_source(s.kind, s.params); }

// The embedded text of one source file ("abi.h", "common.cuh", "gemm_w4.cuh", ...); empty if none.
std::string_view embedded_source(std::string_view file);

// FNV-1a 64 of a source text (the plan's KernelDef.source_hash).
uint64_t source_hash(std::string_view text);

// The registry's parameter check over a Params map (what the specializer and the compiler use).
std::string parse_params(Kind kind, const Params& params, KernelParams* out);

}  // namespace mm::kernels
