#include "support/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mm {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string describe_file_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return kind_of(st.st_mode);
}

Expected<RegularFile> RegularFile::open(const std::string& path, const std::string& label) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. O_NOCTTY: a
  // terminal device must not become our controlling terminal. Both are harmless on regular files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return Error::bad_input(label + ": file not found (" + path + ")");
    return Error::bad_input(label + ": cannot open " + path + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Error::bad_input(label + ": cannot stat " + path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error::bad_input(label + ": " + path + " is " + kind_of(st.st_mode) +
                            ", expected a regular file");
  }
  // Regular files never block, but later readers should see ordinary blocking semantics.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return RegularFile(fd, static_cast<uint64_t>(st.st_size), path);
}

RegularFile::RegularFile(RegularFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), path_(std::move(other.path_)) {}

RegularFile& RegularFile::operator=(RegularFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
  }
  return *this;
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status RegularFile::read_at(uint64_t offset, void* dst, uint64_t n, const std::string& label) const {
  auto* out = static_cast<uint8_t*>(dst);
  uint64_t done = 0;
  while (done < n) {
    // pread takes at most SSIZE_MAX; 1 GiB chunks keep every platform happy.
    const size_t want = static_cast<size_t>(std::min<uint64_t>(n - done, uint64_t{1} << 30));
    const ssize_t r = ::pread(fd_, out + done, want, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      return Error::bad_input(label + ": read of " + path_ + " failed at byte " +
                              std::to_string(offset + done) + ": " + std::strerror(errno));
    if (r == 0)
      return Error::bad_input(label + ": " + path_ + " ends at byte " + std::to_string(offset + done) +
                              ", " + std::to_string(n - done) + " bytes short (truncated?)");
    done += static_cast<uint64_t>(r);
  }
  return Status::success();
}

Expected<std::string> read_regular_file(const std::string& path, const std::string& label,
                                        uint64_t max_bytes) {
  auto file = RegularFile::open(path, label);
  if (!file) return file.error();
  auto too_big = [&](uint64_t size) {
    return Error::bad_input(label + ": " + path + " is " + std::to_string(size) + " bytes, more than the " +
                            std::to_string(max_bytes) + "-byte limit for this kind of file");
  };
  if (file->size() > max_bytes) return too_big(file->size());
  // Read to the end rather than trusting the size from open: a file that grows meanwhile (or a
  // /proc file that reports 0) still stops at the limit.
  std::string data;
  data.resize(static_cast<size_t>(file->size()));
  uint64_t done = 0;
  for (;;) {
    if (done == data.size()) {
      if (done > max_bytes) return too_big(done);
      data.resize(static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(done * 2, 4096), max_bytes + 1)));
    }
    const ssize_t r = ::read(file->fd(), data.data() + done, data.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      return Error::bad_input(label + ": read of " + path + " failed: " + std::strerror(errno));
    if (r == 0) break;
    done += static_cast<uint64_t>(r);
  }
  if (done > max_bytes) return too_big(done);
  data.resize(static_cast<size_t>(done));
  return data;
}

}  // namespace mm
