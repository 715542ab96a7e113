// A 64-byte aligned host allocation (weights, arena, KV pools of the host backend), zero-initialized
// unless asked otherwise. Allocation failure is reported, never thrown.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace mm::rt {

class HostBuffer {
 public:
  HostBuffer() = default;
  // Returns false when the memory is not available. zero: false leaves the first `bytes` as the
  // allocator returned them (for buffers the caller overwrites whole, such as loaded weights: the
  // pages are then first touched by the writes, not by a memset that would only be overwritten).
  bool allocate(uint64_t bytes, bool zero = true) {
    size_ = 0;
    data_.reset();
    if (bytes == 0) return true;
    const uint64_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) return false;
    if (zero)
      std::memset(p, 0, rounded);
    else
      std::memset(static_cast<uint8_t*>(p) + bytes, 0, rounded - bytes);
    data_.reset(static_cast<uint8_t*>(p));
    size_ = bytes;
    return true;
  }
  uint8_t* data() const { return data_.get(); }
  uint64_t size() const { return size_; }

 private:
  struct Free { void operator()(uint8_t* p) const { std::free(p); } };
  std::unique_ptr<uint8_t, Free> data_;
  uint64_t size_ = 0;
};

}  // namespace mm::rt
