// The safetensors header of one shard, read and checked as hostile input: the 8-byte length
// prefix, the JSON header, every tensor's dtype/shape/offsets against the data region. The tensor
// data itself is never read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "support/dtype.h"
#include "support/status.h"

namespace mm {

// One tensor of a shard: what its header says (the data stays in the file).
struct TensorInfo {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
  std::string file;         // shard file name relative to the model directory
  uint64_t offset = 0;      // absolute byte offset of the data inside the shard file
  uint64_t nbytes = 0;
};


// Largest header we accept. The Rust safetensors crate refuses headers above 100 MB; the
// real target's largest shard header is well under 1 MB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsHeader {
  std::string file;  // shard file name (relative to the model dir)
  uint64_t file_size = 0;
  uint64_t data_start = 0;                      // 8 + header length
  std::vector<TensorInfo> tensors;              // sorted by name; offsets absolute in the file
  std::map<std::string, std::string> metadata;  // "__metadata__" (string -> string)
};

// Checks the header JSON of a shard whose file is `file_size` bytes long and whose header is
// `header_len` bytes. `file` names the shard in messages and in TensorInfo::file.
Expected<SafetensorsHeader> parse_safetensors_header(std::string_view header_json,
                                                     uint64_t header_len, uint64_t file_size,
                                                     const std::string& file);

// Reads the length prefix and header of `path` (never the data) and checks them.
Expected<SafetensorsHeader> read_safetensors_header(const std::string& path,
                                                    const std::string& file);

}  // namespace mm
