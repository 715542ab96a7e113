#include "runtime/src/shard_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace mm::rt {

namespace {

class PosixFile final : public ShardFile {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  int64_t read_at(void* dst, uint64_t n, uint64_t offset) override {
    for (;;) {
      const ssize_t r = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (r >= 0) return r;
      if (errno != EINTR) return -errno;
    }
  }
  void drop_cache(uint64_t offset, uint64_t n) override {
    ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
  }

 private:
  int fd_;
};

class PosixFs final : public ShardFs {
 public:
  Expected<std::unique_ptr<ShardFile>> open(const std::string& path, bool direct) override {
    // O_NONBLOCK: a FIFO put in place of a shard must not block the loader in open() (it has no
    // effect on a regular file); anything but a regular file is refused by name.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (direct ? O_DIRECT : 0));
    if (fd < 0) {
      const int e = errno;
      const std::string msg = path + ": cannot open shard" + (direct ? " with O_DIRECT" : "") + ": " + std::strerror(e);
      return direct && e == EINVAL ? Error::usage(msg) : Error::bad_input(msg);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Error::bad_input(path + ": shard is not a regular file");
    }
    // Buffered reads go front to back: let the kernel read ahead generously.
    if (!direct) ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<ShardFile>(new PosixFile(fd));
  }
};

}  // namespace

ShardFs& posix_shard_fs() {
  static PosixFs fs;
  return fs;
}

Expected<double> page_cache_share(const ShardSet& shards, bool drop) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t total = 0, resident = 0;
  std::vector<unsigned char> vec;
  for (size_t i = 0; i < shards.files.size(); ++i) {
    const std::string path = shards.path(i);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::bad_input(path + ": cannot open shard: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      continue;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (drop) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return Error::internal(path + ": cannot map the shard to count its cached pages: " + std::strerror(errno));
    vec.assign((size + page - 1) / page, 0);
    const int rc = ::mincore(map, size, vec.data());
    ::munmap(map, size);
    if (rc != 0) return Error::internal(path + ": mincore failed: " + std::strerror(errno));
    for (unsigned char v : vec) resident += (v & 1) ? page : 0;
    total += size;
  }
  return total ? std::min(1.0, static_cast<double>(resident) / static_cast<double>(total)) : 0.0;
}

Expected<SequentialRead> read_sequential(const ShardSet& shards) {
  constexpr uint64_t kBlock = uint64_t{8} << 20;
  std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, kBlock)), &std::free);
  if (!buf) return Error::internal("cannot allocate the 8 MiB read buffer");
  SequentialRead r;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < shards.files.size(); ++i) {
    const std::string path = shards.path(i);
    auto f = posix_shard_fs().open(path, false);
    if (!f) return f.error();
    uint64_t off = 0;
    for (;;) {
      const int64_t got = (*f)->read_at(buf.get(), kBlock, off);
      if (got < 0)
        return Error::bad_input(path + ": read of " + std::to_string(kBlock) + " bytes at offset " + std::to_string(off) +
                                " failed: " + std::strerror(static_cast<int>(-got)));
      if (got == 0) break;
      (*f)->drop_cache(off, static_cast<uint64_t>(got));
      off += static_cast<uint64_t>(got);
    }
    r.bytes += off;
    ++r.files;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace mm::rt
