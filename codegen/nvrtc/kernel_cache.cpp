#include "codegen/nvrtc/kernel_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "support/file_util.h"
#include "support/hash.h"

namespace mm::codegen {
namespace {

// Entry layout (little-endian, as written by this machine; a foreign entry fails the checks):
//   "MMKCACH1" | u64 key bytes | key | i32 registers, shared, local, spill | u64 cubin bytes | cubin
//   | u64 ptx bytes | ptx | u64 FNV-1a of everything before it
constexpr char kMagic[8] = {'M', 'M', 'K', 'C', 'A', 'C', 'H', '1'};

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_i32(std::string& out, int32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

// Bounds-checked reads over an entry's bytes: any read past the end fails the whole parse.
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool u64(uint64_t* v) { return raw(v, sizeof *v); }
  bool i32(int* v) {
    int32_t x = 0;
    if (!raw(&x, sizeof x)) return false;
    *v = x;
    return true;
  }
  bool bytes(uint64_t n, std::string* out) {
    if (n > s_.size() - pos_) return false;
    out->assign(s_, pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  bool raw(void* dst, size_t n) {
    if (n > s_.size() - pos_) return false;
    std::memcpy(dst, s_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = digits[v & 15];
  return s;
}

}  // namespace

std::string KernelCache::path_of(const std::string& key) const {
  // Two FNV-1a hashes with different offsets: 128 bits of name, and the stored key is compared
  // on every load anyway.
  return dir_ + "/" + hex64(fnv1a64(key)) + hex64(fnv1a64(key, 0x84222325cbf29ce4ull)) + ".kernel";
}

std::optional<CachedKernel> KernelCache::load(const std::string& key) const {
  const std::string path = path_of(key);
  auto file = read_regular_file(path, "kernel cache entry", kMaxEntryBytes);
  if (!file.ok()) return std::nullopt;
  const std::string& s = *file;
  if (s.size() < sizeof kMagic + 8 || std::memcmp(s.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  uint64_t sum = 0;
  std::memcpy(&sum, s.data() + s.size() - 8, 8);
  if (sum != fnv1a64(std::string_view(s).substr(0, s.size() - 8))) return std::nullopt;
  const std::string body = s.substr(sizeof kMagic, s.size() - sizeof kMagic - 8);
  Reader r(body);
  uint64_t n = 0;
  std::string stored_key, cubin;
  CachedKernel k;
  if (!r.u64(&n) || !r.bytes(n, &stored_key) || stored_key != key) return std::nullopt;
  NvrtcBinary& b = k.binary;
  if (!r.i32(&b.registers) || !r.i32(&b.shared_bytes) || !r.i32(&b.local_bytes) || !r.i32(&b.spill_bytes))
    return std::nullopt;
  if (!r.u64(&n) || !r.bytes(n, &cubin) || cubin.empty()) return std::nullopt;
  if (!r.u64(&n) || !r.bytes(n, &k.ptx) || r.pos() != body.size()) return std::nullopt;
  b.cubin.assign(cubin.begin(), cubin.end());
  return k;
}

Status KernelCache::store(const std::string& key, const CachedKernel& kernel) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error::internal("kernel cache " + dir_ + ": cannot create the directory: " + ec.message());
  std::string out(kMagic, sizeof kMagic);
  put_u64(out, key.size());
  out += key;
  const NvrtcBinary& b = kernel.binary;
  put_i32(out, b.registers);
  put_i32(out, b.shared_bytes);
  put_i32(out, b.local_bytes);
  put_i32(out, b.spill_bytes);
  put_u64(out, b.cubin.size());
  out.append(reinterpret_cast<const char*>(b.cubin.data()), b.cubin.size());
  put_u64(out, kernel.ptx.size());
  out += kernel.ptx;
  put_u64(out, fnv1a64(out));

  // A name no other writer uses (process id + a counter), renamed over the entry when complete.
  static std::atomic<uint64_t> counter{0};
  const std::string path = path_of(key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Error::internal("kernel cache " + tmp + ": cannot create: " + std::strerror(errno));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t w = ::write(fd, out.data() + done, out.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = w < 0 ? std::strerror(errno) : "short write";
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error::internal("kernel cache " + tmp + ": cannot write: " + why);
    }
    done += static_cast<size_t>(w);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Error::internal("kernel cache " + path + ": cannot store: " + why);
  }
  return Status::success();
}

std::string default_kernel_cache_dir() {
  if (const char* v = std::getenv("MMC_KERNEL_CACHE")) {
    const std::string s = v;
    if (s.empty() || s == "off" || s == "0") return "";
    return s;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg == '/') return std::string(xdg) + "/mmc/kernels";
  if (const char* home = std::getenv("HOME"); home && *home == '/') return std::string(home) + "/.cache/mmc/kernels";
  return "";
}

}  // namespace mm::codegen
