// What the runtime knows about kernel kinds, all read from the registry (codegen/kernels/
// kinds.def): parameter parsing of a plan's KernelDef, the operand slots of a launch, and the host
// backend's dispatch to the C++ references.
#pragma once

#include <string>

#include "codegen/kernels/registry.h"
#include "codegen/reference/reference.h"
#include "runtime/schemas/plan_generated.h"
#include "support/status.h"

namespace mm::rt {

using RefParams = kernels::KernelParams;

// The registry's kind of a plan kind (both enums come from kinds.def, in the same order).
inline kernels::Kind registry_kind(plan::KernelKind k) { return static_cast<kernels::Kind>(k); }

// "GEMM_W4" etc.; "kind N" when out of range.
std::string kind_name(plan::KernelKind kind);

// Checks that `k` is a known kind whose parameters match the registry's declaration (names,
// ranges, rules) and returns them in the reference's struct. `where` names the kernel in messages
// (e.g. "kernels[3] 'gemm_w4_k3072_n8192_v0'").
Expected<RefParams> parse_kernel_params(const plan::KernelDef& k, const std::string& where);

// Operand slots a launch of this kind has (NONE fills those the parameters leave unused).
int expected_operand_count(plan::KernelKind kind);

// Calls the C++ reference of `kind` (host backend).
void run_reference(plan::KernelKind kind, const RefParams& params, const mm_kernel_args& args);

}  // namespace mm::rt
