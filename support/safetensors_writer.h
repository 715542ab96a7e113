// Writes safetensors files the way the Python `safetensors` library does (the library every
// Hugging Face checkpoint goes through): an 8-byte little-endian header length, a JSON header
// whose first key is "__metadata__" and whose tensors are listed in data order, padded with
// spaces to a multiple of 8 bytes, then the tensor data, ordered by element size (largest first)
// and then by name. The header is laid out first so data can be written later from any thread
// (pwrite at known offsets) or not at all (a sparse file of the right size).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/dtype.h"
#include "support/status.h"

namespace mm {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
};

// Bytes of one entry's data; 0 for a negative dimension (plan_safetensors rejects those).
uint64_t safetensors_entry_bytes(const SafetensorsEntry& entry);

struct SafetensorsLayout {
  std::string header;             // the JSON text, space-padded to a multiple of 8 bytes
  std::vector<uint64_t> offsets;  // absolute file offset of each entry's data, in input order
  std::vector<uint64_t> nbytes;   // data bytes of each entry, in input order
  std::vector<size_t> data_order; // input indices in the order their data sits in the file
  uint64_t file_size = 0;         // 8 + header.size() + all data
};

// Lays out one file. Fails on duplicate or empty names, negative dimensions or a byte count that
// overflows 64 bits (each named).
Expected<SafetensorsLayout> plan_safetensors(const std::vector<SafetensorsEntry>& entries,
                                             const std::map<std::string, std::string>& metadata);

// One safetensors file being written: create() writes the length prefix and the header and sizes
// the file (the data region is a hole until written); write_data() may be called concurrently
// from several threads for disjoint entries.
class SafetensorsFileWriter {
 public:
  SafetensorsFileWriter() = default;
  SafetensorsFileWriter(const SafetensorsFileWriter&) = delete;
  SafetensorsFileWriter& operator=(const SafetensorsFileWriter&) = delete;
  SafetensorsFileWriter(SafetensorsFileWriter&& other) noexcept;
  SafetensorsFileWriter& operator=(SafetensorsFileWriter&& other) noexcept;
  ~SafetensorsFileWriter();

  static Expected<SafetensorsFileWriter> create(const std::string& path, SafetensorsLayout layout);

  // Writes `size` bytes at `offset_in_entry` inside the data of entry `index`.
  Status write_data(size_t index, uint64_t offset_in_entry, const void* data, uint64_t size) const;
  // Flushes and closes; reports write errors the kernel deferred.
  Status close();

  const SafetensorsLayout& layout() const { return layout_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  SafetensorsLayout layout_;
  int fd_ = -1;
};

}  // namespace mm
