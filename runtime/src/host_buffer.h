// Host memory of the host backend. HostBuffer: page-aligned memory that reads as zeros, mapped
// anonymously so that only the pages a kernel touches cost time and memory (a plan's arena is
// sized for its largest prefill chunk; a decode touches a few MiB of it, and a tensor-parallel
// plan on the host has one arena per rank). GrowableBuffer: address space reserved for a maximum
// size and committed from the front as it is needed (the KV pools, sized by the context actually
// used rather than the plan's limit). Allocation failure is reported, never thrown.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace mm::rt {

// reserve(max) maps `max` bytes of inaccessible address space (PROT_NONE: not counted against
// the machine's memory); commit(n) makes the first n bytes readable and writable. The kernel
// hands out zeroed pages on first touch, so untouched committed bytes cost nothing either, and
// the base pointer never moves: offsets computed by the executors stay valid while it grows.
class GrowableBuffer {
 public:
  GrowableBuffer() = default;
  GrowableBuffer(GrowableBuffer&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), reserved_(std::exchange(o.reserved_, 0)),
        committed_(std::exchange(o.committed_, 0)) {}
  GrowableBuffer& operator=(GrowableBuffer&& o) noexcept {
    if (this != &o) {
      release();
      base_ = std::exchange(o.base_, nullptr);
      reserved_ = std::exchange(o.reserved_, 0);
      committed_ = std::exchange(o.committed_, 0);
    }
    return *this;
  }
  GrowableBuffer(const GrowableBuffer&) = delete;
  GrowableBuffer& operator=(const GrowableBuffer&) = delete;
  ~GrowableBuffer() { release(); }

  // False when the address space is not available.
  bool reserve(uint64_t max_bytes) {
    release();
    if (max_bytes == 0) return true;
    const uint64_t bytes = round_up(max_bytes);
    void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<uint8_t*>(p);
    reserved_ = bytes;
    return true;
  }
  // Makes [0, bytes) usable (bytes <= the reservation). False when the memory is not available.
  bool commit(uint64_t bytes) {
    if (bytes <= committed_) return true;
    if (bytes > reserved_) return false;
    const uint64_t want = round_up(bytes);
    if (::mprotect(base_ + committed_, want - committed_, PROT_READ | PROT_WRITE) != 0) return false;
    committed_ = want;
    return true;
  }
  uint8_t* data() const { return base_; }
  uint64_t committed() const { return committed_; }
  uint64_t reserved() const { return reserved_; }

 private:
  static uint64_t round_up(uint64_t n) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    return (n + page - 1) / page * page;
  }
  void release() {
    if (base_) ::munmap(base_, reserved_);
    base_ = nullptr;
    reserved_ = committed_ = 0;
  }
  uint8_t* base_ = nullptr;
  uint64_t reserved_ = 0, committed_ = 0;
};

// A GrowableBuffer committed whole at once.
class HostBuffer {
 public:
  // Returns false when the memory is not available. The pages are the kernel's zero pages until
  // first written, so a buffer the caller overwrites whole (loaded weights) is touched once.
  bool allocate(uint64_t bytes) {
    size_ = 0;
    if (!buf_.reserve(bytes) || !buf_.commit(bytes)) return false;
    size_ = bytes;
    return true;
  }
  uint8_t* data() const { return buf_.data(); }
  uint64_t size() const { return size_; }

 private:
  GrowableBuffer buf_;
  uint64_t size_ = 0;
};

}  // namespace mm::rt
