#include "runtime/tooling/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mm::rt {

std::string npy_header_f32(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";
  // magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  const uint16_t len = static_cast<uint16_t>(dict.size());
  h += static_cast<char>(len & 0xff);
  h += static_cast<char>(len >> 8);
  return h + dict;
}

Status check_writable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Error::bad_input(path + ": cannot write (" + std::strerror(errno) + ")");
  std::fclose(f);
  return Status::success();
}

Status write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Error::bad_input(path + ": cannot write (" + std::strerror(errno) + ")");
  const std::string h = npy_header_f32({rows, cols});
  bool ok = std::fwrite(h.data(), 1, h.size(), f) == h.size();
  const size_t n = static_cast<size_t>(rows * cols);
  ok = ok && (n == 0 || std::fwrite(data, sizeof(float), n, f) == n);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Error::bad_input(path + ": write failed (" + std::strerror(errno) + ")");
  return Status::success();
}

}  // namespace mm::rt
