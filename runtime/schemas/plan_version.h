// The version of the plan format (runtime/schemas/plan.fbs) that the compiler writes and the
// runtime reads; a plan of another version is refused by name. Declared once, here.
//   1: the first format.
//   2: kernel kinds from the registry (codegen/kernels/kinds.def): ROUTE_TOPK takes 5 operand
//      slots in both variants, kernels record their derived tile constants (THREADS, WK, CS, BQ).
//   3: decode attention is ATTENTION_DECODE; ATTENTION is the prefill kernel only (VARIANT 0 or 3,
//      9 operand slots: no split-K scratch, no SPLITS); decode launches may carry `pdl`.
//   4: tensor-parallel plans (docs/parallel.md): PlanDef.tp, ProgramDef.rank, source slices
//      (TensorRefDef.slice_*), the collective kind ALL_REDUCE; QK_NORM_ROPE_KV takes 12 operand
//      slots (the all-reduced sums of squares, `sumsq`, when TP > 1).
//   5: expert-parallel plans: PlanDef.ep (the plan has max(tp, ep) ranks); MOE_ALIGN, MOE_W13 and
//      MOE_W2 take E0 (their weights hold experts [E0, E0 + E)); MOE_COMBINE takes 3 operand slots
//      (`ids`, when it sums only experts [E0, E0 + EL)).
//   6: a QWEIGHT may be laid out in strips of 32 columns (WeightDef.qlayout STRIPS32); GEMM_W4,
//      MOE_W13 and MOE_W2 take QL (their words' layout) and record U (units per register set of
//      the decode GEMV). A version-5 runtime would load such words in rows: refused by version.
#pragma once

#include <cstdint>

namespace mm::plan {
inline constexpr uint32_t kPlanSchemaVersion = 6;
}  // namespace mm::plan
