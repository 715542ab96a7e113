// NumPy .npy (format 1.0) writer for float32 [rows, cols] (mmrun --dump-logits).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/status.h"

namespace mm::rt {

// The .npy header (magic, version, dict, padding) for a little-endian float32 C-order array.
std::string npy_header_f32(const std::vector<int64_t>& shape);

// Writes `data` (rows * cols floats) to `path`.
Status write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols);

// Whether `path` can be created for writing (creates/truncates it); the error names the path.
Status check_writable(const std::string& path);

}  // namespace mm::rt
