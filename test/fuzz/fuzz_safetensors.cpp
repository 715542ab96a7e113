// The safetensors shard reader (support/safetensors.h) on hostile files. Input byte 0 picks the
// form: even - the rest is the whole file (length prefix, header, data); odd - the rest is the
// header JSON, given the length prefix and a 16 MiB data region of zeros, so that mutations of a
// real header keep passing the prefix checks and reach every tensor check.
#include <cstdint>
#include <string>

#include "support/safetensors.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mm::fuzz::MemFile file("shard");
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string bytes;
  uint64_t zeros = 0;
  if (data[0] % 2 == 0) {
    bytes.assign(rest);
  } else {
    const uint64_t n = rest.size();
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    bytes.append(rest);
    zeros = uint64_t{16} << 20;
  }
  auto h = mm::read_safetensors_header(file.set(bytes, zeros), "fuzz.safetensors");
  if (h.ok()) {
    // What the reader promises of an accepted header: sorted unique names, data inside the file,
    // no two tensors overlapping.
    const uint64_t file_size = bytes.size() + zeros;
    for (size_t i = 0; i < h->tensors.size(); ++i) {
      const mm::TensorInfo& t = h->tensors[i];
      FUZZ_CHECK(t.offset >= h->data_start && t.offset + t.nbytes <= file_size);
      if (i > 0) FUZZ_CHECK(h->tensors[i - 1].name < t.name);
    }
  } else {
    FUZZ_CHECK(!h.error().message.empty());
  }
  return 0;
}
