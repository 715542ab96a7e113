// Kernel specialization: kind + named parameters -> entry name, complete CUDA source with the
// constants baked in, block dims, dynamic shared memory and grid formulas (docs/kernels.md).
// MLIR-free: the compiler's emitter, the GPU tests and mm-kernel-src all call it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "support/status.h"

namespace mm::kernels {

// Same order as mm.plan.KernelKind (runtime/schemas/plan.fbs).
enum class Kind : uint8_t {
  EMBED = 0, RMS_NORM, GEMM_W4, GEMM_DENSE, QK_NORM_ROPE_KV, ATTENTION, ROUTE_TOPK, MOE_ALIGN,
  MOE_W13, MOE_W2, MOE_COMBINE, SAMPLE, COUNT
};

std::string_view kind_name(Kind kind);                      // "GEMM_W4"
std::optional<Kind> kind_from_name(std::string_view name);  // inverse; nullopt if unknown

struct Params {
  std::map<std::string, int64_t> ints;
  std::map<std::string, double> floats;
};

// value = ceil((mul * dims[dim] + add) / div); dim = -1: the constant ceil(add / div).
struct DimExpr {
  int dim = -1;
  int64_t mul = 0, add = 1, div = 1;
  int64_t eval(const int64_t* dims) const;
};

struct Specialization {
  Kind kind = Kind::EMBED;
  std::string entry;             // extern "C" entry point, e.g. "gemm_w4_g128_k3072_..."
  std::string source;            // complete translation unit for NVRTC
  Params params;                 // the given parameters plus defaults and derived tile constants
  std::array<int, 3> block{1, 1, 1};
  int dynamic_shared_bytes = 0;  // every kind uses static shared memory (< 48 KiB)
  std::array<DimExpr, 3> grid;
};

// Fails with a BadInput error naming the kind and the parameter when one is missing, out of
// range, or breaks a tiling requirement (e.g. K not a multiple of the group size).
Expected<Specialization> specialize(Kind kind, const Params& params);

// The embedded text of one source file ("abi.h", "common.cuh", "gemm_w4.cuh", ...); empty if none.
std::string_view embedded_source(std::string_view file);

// FNV-1a 64 of a source text (the plan's KernelDef.source_hash).
uint64_t source_hash(std::string_view text);

}  // namespace mm::kernels
