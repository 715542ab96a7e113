// What the runtime knows about each kernel kind of docs/kernels.md: the parameter names a
// KernelDef must carry, its operand count, and (host backend) how to call its C++ reference.
// One table indexed by KernelKind, guarded by a static_assert on the enum's count.
#pragma once

#include <string>
#include <variant>

#include "codegen/reference/reference.h"
#include "support/status.h"
#include "runtime/schemas/plan_generated.h"

namespace mm::rt {

using RefParams =
    std::variant<ref::EmbedParams, ref::RmsNormParams, ref::GemmW4Params, ref::GemmDenseParams,
                 ref::QkNormRopeKvParams, ref::AttentionParams, ref::RouteTopkParams,
                 ref::MoeAlignParams, ref::MoeW13Params, ref::MoeW2Params, ref::MoeCombineParams,
                 ref::SampleParams>;

// "GEMM_W4" etc.; "kind N" when out of range.
std::string kind_name(plan::KernelKind kind);

// Checks that `k` is a known kind carrying every parameter docs/kernels.md lists for it, with
// values in range (positive sizes, dtype codes), and returns them in the reference's struct.
// `where` names the kernel in messages (e.g. "kernels[3] 'gemm_w4_k3072_n8192_v0'").
Expected<RefParams> parse_kernel_params(const plan::KernelDef& k, const std::string& where);

// Operands a launch of this kernel must have (docs/kernels.md section 5; NONE fills unused slots).
int expected_operand_count(plan::KernelKind kind, const RefParams& params);

// Calls the C++ reference of `kind` (host backend).
void run_reference(plan::KernelKind kind, const RefParams& params, const mm_kernel_args& args);

}  // namespace mm::rt
