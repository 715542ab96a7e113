// `mmc check MODEL_DIR`: read and validate a checkpoint, print a summary (layers, experts, top-k,
// heads, quant scheme, tensor count, bytes by category, warnings) or the errors.
#pragma once

#include <ostream>
#include <string>

namespace mm {

// Returns the process exit code (design.md section 6): 0 ok, 1 bad input, 3 internal error.
int check_command(const std::string& model_dir, std::ostream& out, std::ostream& err);

}  // namespace mm
