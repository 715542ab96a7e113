// `mm-inspect PLAN [--json]` as a library call: header, model, targets, weights summary, kernels
// (kind, parameters, per-arch cubin sizes, registers/shared memory), programs (launches per
// layer) and the memory budget (weights, arena, KV bytes per token).
#pragma once

#include <ostream>
#include <string>

namespace mm::rt {

// Returns the exit code (0, or 1 for a plan that fails verification, message on `err`).
int inspect_command(const std::string& plan_path, bool json, std::ostream& out, std::ostream& err);

}  // namespace mm::rt
