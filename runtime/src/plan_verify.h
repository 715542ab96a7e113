// The semantic half of plan verification (docs/reliability.md, "Plan verifier"): after the reader
// has checked a plan's structure (flatbuffer, checksum, indices, operand counts, ranges inside the
// arena, kernel parameters against the registry), this checks that the numbers agree with each
// other, so that no plan makes a kernel touch memory outside what it binds: every operand's buffer
// is large enough for what its kernel reads or writes (codegen/kernels/extents.h), arena operands
// are 16-byte aligned, KV pools are bound where the kernel indexes blocks and have the plan's KV
// layout, kernel parameters agree with the model table and limits, and arena_bytes is what the
// program's buffers need. Both backends load through plan_reader, so both get these checks.
#pragma once

#include <string>
#include <vector>

#include "runtime/schemas/plan_generated.h"
#include "runtime/src/kernel_table.h"
#include "support/status.h"

namespace mm::rt {

// Arena operands start at multiples of this (the widest vectorized access of the kernels, 16-byte
// loads and stores, and the base the arena is allocated at).
inline constexpr uint64_t kArenaOperandAlignment = 16;
// Largest arena a plan may ask for: beyond the memory of any device or host we run on, so a larger
// value is a corrupted or crafted plan, not a resource problem.
inline constexpr uint64_t kMaxArenaBytes = uint64_t{1} << 40;

// `params[i]` are the parsed parameters of kernels[i]. Errors are BadInput, prefixed by `origin`,
// and name the program, launch (index and note), operand and field at fault.
Status verify_plan_semantics(const plan::PlanDef& def, const std::vector<RefParams>& params,
                             const std::string& origin);

}  // namespace mm::rt
