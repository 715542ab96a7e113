// The version of the plan format (runtime/schemas/plan.fbs) that the compiler writes and the
// runtime reads; a plan of another version is refused by name. Declared once, here.
//   1: the first format.
//   2: kernel kinds from the registry (codegen/kernels/kinds.def): ROUTE_TOPK takes 5 operand
//      slots in both variants, kernels record their derived tile constants (THREADS, WK, CS, BQ).
#pragma once

#include <cstdint>

namespace mm::plan {
inline constexpr uint32_t kPlanSchemaVersion = 2;
}  // namespace mm::plan
