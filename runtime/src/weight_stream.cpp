#include "runtime/src/weight_stream.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "codegen/reference/reference.h"

namespace mm::rt {

namespace {

using plan::DType;
using plan::WeightTransform;
using clock_type = std::chrono::steady_clock;

constexpr uint64_t kAlign = 256;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}
uint8_t* at(void* base, uint64_t off) { return static_cast<uint8_t*>(base) + off; }

// Open shard files of one load; pread in the caller's chunks, page cache dropped behind.
class ShardReader {
 public:
  explicit ShardReader(std::string dir) : dir_(std::move(dir)) {}
  ~ShardReader() {
    for (auto& [name, fd] : fds_) ::close(fd);
  }
  Status read(const std::string& file, uint64_t offset, uint64_t n, void* dst) {
    int fd = -1;
    if (auto it = fds_.find(file); it != fds_.end()) {
      fd = it->second;
    } else {
      const std::string path = dir_ + "/" + file;
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Error::bad_input(path + ": cannot open shard: " + std::strerror(errno));
      // The whole shard is read once front to back: tell the kernel to read ahead generously.
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      fds_[file] = fd;
    }
    uint8_t* out = static_cast<uint8_t*>(dst);
    uint64_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        return Error::bad_input(dir_ + "/" + file + ": read of " + std::to_string(n - done) +
                                " bytes at offset " + std::to_string(offset + done) + " failed (" +
                                (r == 0 ? std::string("unexpected end of file") : std::strerror(errno)) + ")");
      done += static_cast<uint64_t>(r);
    }
    // Dropping the pages just read keeps a checkpoint larger than memory from pushing a
    // unified-memory machine into swap (design.md section 3).
    ::posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
    bytes_ += n;
    return Status::success();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string dir_;
  std::map<std::string, int> fds_;
  uint64_t bytes_ = 0;
};

class Progress {
 public:
  Progress(bool on, uint64_t total) : on_(on), total_(total), start_(clock_type::now()) {}
  void update(uint64_t done, bool final = false) {
    if (!on_) return;
    const auto now = clock_type::now();
    if (!final && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done / kGiB / secs : 0.0;
    const double eta = rate > 0 ? (total_ - std::min(done, total_)) / kGiB / rate : 0.0;
    std::fprintf(stderr, "\rloading weights: %6.2f / %.2f GiB  %5.2f GiB/s  ETA %3.0f s ", done / kGiB,
                 total_ / kGiB, rate, eta);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool on_;
  uint64_t total_;
  clock_type::time_point start_, last_{};
};

// ---- The device sink ----------------------------------------------------------------------

class DeviceSink final : public WeightSink {
 public:
  DeviceSink(Device& dev, const cu::Symbols* sym, uint64_t chunk) : dev_(dev), sym_(sym), chunk_(chunk) {}
  ~DeviceSink() override {
    (void)dev_.synchronize();
    for (Buf& b : bufs_) {
      if (b.event) sym_->cuEventDestroy_v2(b.event);
      (void)dev_.free_host(b.host);
    }
  }
  Status init(int count) {
    for (int i = 0; i < count; ++i) {
      auto p = dev_.alloc_host(chunk_);
      if (!p) return Error::internal("cannot allocate " + std::to_string(chunk_ >> 20) +
                                     " MiB of pinned staging memory: " + p.error().message);
      bufs_.push_back(Buf{static_cast<uint8_t*>(*p), nullptr, false});
      MM_CU(sym_, cuEventCreate, &bufs_.back().event, cu::CU_EVENT_DEFAULT);
    }
    return Status::success();
  }
  uint64_t chunk_bytes() const override { return chunk_; }
  uint64_t held_bytes() const override { return chunk_ * bufs_.size(); }
  Expected<uint8_t*> reserve(uint64_t n) override {
    if (n > chunk_) return Error::internal("staging request of " + std::to_string(n) + " bytes exceeds the chunk");
    if (fill_ + n > chunk_) {
      // Seal the current buffer (its copies complete at this event) and move to the next one,
      // waiting for the copies that last used it.
      MM_CU(sym_, cuEventRecord, bufs_[cur_].event, dev_.stream());
      bufs_[cur_].pending = true;
      cur_ = (cur_ + 1) % bufs_.size();
      if (bufs_[cur_].pending) MM_CU(sym_, cuEventSynchronize, bufs_[cur_].event);
      bufs_[cur_].pending = false;
      fill_ = 0;
    }
    uint8_t* p = bufs_[cur_].host + fill_;
    fill_ += align_up(n, 64);
    return p;
  }
  Status submit(uint8_t* region, uint64_t n, void* dst) override {
    if (n == 0) return Status::success();
    return dev_.copy_to_device_async(dst, region, n);
  }
  Status finish() override { return dev_.synchronize(); }

 private:
  struct Buf {
    uint8_t* host;
    cu::CUevent event;
    bool pending;
  };
  Device& dev_;
  const cu::Symbols* sym_;
  uint64_t chunk_;
  std::vector<Buf> bufs_;
  size_t cur_ = 0;
  uint64_t fill_ = 0;
};

// ---- Streaming with transforms --------------------------------------------------------------

class Streamer {
 public:
  Streamer(const std::string& dir, WeightSink& sink, Progress& bar)
      : reader_(dir), sink_(sink), bar_(bar), scratch_(sink.chunk_bytes()) {}

  uint64_t bytes_read() const { return reader_.bytes(); }
  uint64_t scratch_bytes() const { return scratch_.size(); }

  // Bytes [offset, offset + n) of `file` to dst, in chunks.
  Status contiguous(const std::string& file, uint64_t offset, uint64_t n, uint8_t* dst) {
    const uint64_t chunk = sink_.chunk_bytes();
    for (uint64_t done = 0; done < n;) {
      const uint64_t m = std::min(chunk, n - done);
      auto p = sink_.reserve(m);
      if (!p) return p.error();
      if (Status st = reader_.read(file, offset + done, m, *p); !st) return st;
      if (Status st = sink_.submit(*p, m, dst + done); !st) return st;
      done += m;
      bar_.update(reader_.bytes());
    }
    return Status::success();
  }

  // A matrix of `rows` rows whose destination row is the concatenation of the sources' rows
  // (source i contributes row_bytes[i] per row, its rows contiguous in the file): batches of
  // rows are read per source into the scratch buffer and composed in a staging region.
  struct Part {
    const plan::TensorRefDef* src;
    uint64_t row_bytes;
  };
  Status interleave(const std::string& weight, const std::vector<Part>& parts, uint64_t rows, uint8_t* dst) {
    uint64_t out_row = 0;
    for (const Part& p : parts) out_row += p.row_bytes;
    const uint64_t chunk = sink_.chunk_bytes();
    if (out_row == 0 || rows == 0) return Status::success();
    if (out_row > chunk)
      return Error::internal("weight '" + weight + "': a row of " + std::to_string(out_row) +
                             " bytes does not fit the " + std::to_string(chunk) + "-byte staging chunk");
    const uint64_t batch = chunk / out_row;
    for (uint64_t r0 = 0; r0 < rows; r0 += batch) {
      const uint64_t nr = std::min(batch, rows - r0);
      auto region = sink_.reserve(nr * out_row);
      if (!region) return region.error();
      uint64_t col = 0;
      for (const Part& p : parts) {
        if (Status st = reader_.read(p.src->file()->str(), p.src->offset() + r0 * p.row_bytes,
                                     nr * p.row_bytes, scratch_.data());
            !st)
          return st;
        for (uint64_t r = 0; r < nr; ++r)
          std::memcpy(*region + r * out_row + col, scratch_.data() + r * p.row_bytes, p.row_bytes);
        col += p.row_bytes;
      }
      if (Status st = sink_.submit(*region, nr * out_row, dst + r0 * out_row); !st) return st;
      bar_.update(reader_.bytes());
    }
    return Status::success();
  }

  // A 16-bit or f32 source converted to f32.
  Status upcast(const plan::TensorRefDef& s, uint8_t* dst) {
    const uint64_t es = plan_dtype_size(s.dtype());
    const uint64_t n = s.nbytes() / es;
    const uint64_t per = sink_.chunk_bytes() / 4;
    for (uint64_t i0 = 0; i0 < n; i0 += per) {
      const uint64_t m = std::min(per, n - i0);
      if (Status st = reader_.read(s.file()->str(), s.offset() + i0 * es, m * es, scratch_.data()); !st) return st;
      auto region = sink_.reserve(m * 4);
      if (!region) return region.error();
      float* out = reinterpret_cast<float*>(*region);
      for (uint64_t i = 0; i < m; ++i) {
        if (s.dtype() == DType::F32) {
          std::memcpy(out + i, scratch_.data() + 4 * i, 4);
        } else {
          uint16_t v;
          std::memcpy(&v, scratch_.data() + 2 * i, 2);
          out[i] = s.dtype() == DType::F16 ? ref::f16_to_f32(v) : ref::bf16_to_f32(v);
        }
      }
      if (Status st = sink_.submit(*region, m * 4, dst + i0 * 4); !st) return st;
      bar_.update(reader_.bytes());
    }
    return Status::success();
  }

  // Symmetric int4 zero points: every word must be 0x77777777 (docs/kernels.md section 3).
  Status check_zeros(const plan::TensorRefDef& s) {
    const uint64_t chunk = scratch_.size() / 4 * 4;
    for (uint64_t done = 0; done < s.nbytes();) {
      const uint64_t m = std::min(chunk, s.nbytes() - done);
      if (Status st = reader_.read(s.file()->str(), s.offset() + done, m, scratch_.data()); !st) return st;
      for (uint64_t i = 0; i + 4 <= m; i += 4) {
        uint32_t v;
        std::memcpy(&v, scratch_.data() + i, 4);
        if (v != 0x77777777u) {
          char hex[16];
          std::snprintf(hex, sizeof hex, "0x%08x", v);
          return Error::bad_input(s.file()->str() + ": tensor '" + s.name()->str() + "' word " +
                                  std::to_string((done + i) / 4) + " is " + hex +
                                  "; symmetric int4 zero points must all be 0x77777777");
        }
      }
      done += m;
      bar_.update(reader_.bytes());
    }
    return Status::success();
  }

  Status weight(const plan::WeightDef& w, uint8_t* dst) {
    const auto& srcs = *w.sources();
    const uint64_t esize = plan_dtype_size(w.dtype());
    const auto* shape = w.shape();
    const size_t rank = shape ? shape->size() : 0;
    const std::string name = w.name()->str();
    switch (w.transform()) {
      case WeightTransform::CHECK_ZEROS:
        for (const plan::TensorRefDef* s : srcs)
          if (Status st = check_zeros(*s); !st) return st;
        return Status::success();
      case WeightTransform::UPCAST_F32:
        return upcast(*srcs[0], dst);
      case WeightTransform::COPY:
      case WeightTransform::STACK_EXPERTS:
        return stacked(srcs, dst);
      case WeightTransform::CONCAT_N: {
        // Along the first dimension (16-bit [N, K] matrices: contiguous) or the last
        // (qweight/scales [K', N_i]: rows composed), as the plan's concat_axis says.
        if (w.concat_axis() == 0) return stacked(srcs, dst);
        const uint64_t out_row = static_cast<uint64_t>(shape->Get(rank - 1)) * esize;
        std::vector<Part> parts;
        for (const plan::TensorRefDef* s : srcs)
          parts.push_back({s, static_cast<uint64_t>(s->shape()->Get(rank - 1)) * esize});
        return interleave(name, parts, out_row ? w.nbytes() / out_row : 0, dst);
      }
      case WeightTransform::STACK_EXPERTS_W13: {
        // Sources alternate w1_e, w3_e, each [R, I]; expert e becomes [R, 2I] = [w1_e | w3_e].
        const uint64_t out_row = static_cast<uint64_t>(shape->Get(rank - 1)) * esize;
        const uint64_t experts = static_cast<uint64_t>(shape->Get(0));
        const uint64_t expert_bytes = experts ? w.nbytes() / experts : 0;
        const uint64_t rows = out_row ? expert_bytes / out_row : 0;
        for (uint64_t e = 0; e < experts; ++e) {
          const std::vector<Part> parts = {{srcs[2 * e], out_row / 2}, {srcs[2 * e + 1], out_row / 2}};
          if (Status st = interleave(name, parts, rows, dst + e * expert_bytes); !st) return st;
        }
        return Status::success();
      }
    }
    return Error::internal("weight '" + name + "': unknown transform");
  }

 private:
  // Sources laid end to end in the destination; neighbours that are also adjacent in the same
  // file are read as one range (experts are usually stored in order).
  Status stacked(const flatbuffers::Vector<flatbuffers::Offset<plan::TensorRefDef>>& srcs, uint8_t* dst) {
    uint64_t off = 0;
    size_t i = 0;
    while (i < srcs.size()) {
      const plan::TensorRefDef* first = srcs[i];
      uint64_t n = first->nbytes();
      size_t j = i + 1;
      while (j < srcs.size() && srcs[j]->file()->string_view() == first->file()->string_view() &&
             srcs[j]->offset() == first->offset() + n) {
        n += srcs[j]->nbytes();
        ++j;
      }
      if (Status st = contiguous(first->file()->str(), first->offset(), n, dst + off); !st) return st;
      off += n;
      i = j;
    }
    return Status::success();
  }

  ShardReader reader_;
  WeightSink& sink_;
  Progress& bar_;
  std::vector<uint8_t> scratch_;
};

}  // namespace

WeightLayout weight_layout(const Plan& plan) {
  WeightLayout l;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  l.offsets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const plan::WeightDef& w = *weights->Get(i);
    l.offsets[i] = l.total_bytes;
    if (w.transform() != WeightTransform::CHECK_ZEROS) l.total_bytes += align_up(w.nbytes(), kAlign);
  }
  return l;
}

Expected<std::unique_ptr<WeightSink>> make_device_sink(Device& dev, uint64_t chunk, int buffers) {
  auto sym = cu::symbols();
  if (!sym) return sym.error();
  auto sink = std::make_unique<DeviceSink>(dev, *sym, std::max<uint64_t>(chunk, 1 << 20));
  if (Status st = sink->init(std::max(buffers, 2)); !st) return st.error();
  return std::unique_ptr<WeightSink>(std::move(sink));
}

Status stream_weights(const Plan& plan, const std::string& dir, const std::vector<void*>& dst,
                      WeightSink& sink, bool progress, WeightLoadStats* stats) {
  const auto t0 = clock_type::now();
  const int64_t rss0 = current_rss_kib();
  if (Status st = check_weights_dir(plan, dir); !st) return st;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  uint64_t total = 0, device_bytes = 0;
  for (size_t i = 0; i < n; ++i)
    for (const plan::TensorRefDef* s : *weights->Get(i)->sources()) total += s->nbytes();
  Progress bar(progress, total);
  Streamer streamer(dir, sink, bar);
  for (size_t i = 0; i < n; ++i) {
    const plan::WeightDef& w = *weights->Get(i);
    if (w.transform() != WeightTransform::CHECK_ZEROS && !dst[i])
      return Error::internal("weight '" + w.name()->str() + "' has no destination");
    if (Status st = streamer.weight(w, static_cast<uint8_t*>(dst[i])); !st) {
      (void)sink.finish();
      if (progress) std::fprintf(stderr, "\n");
      return st;
    }
    if (w.transform() != WeightTransform::CHECK_ZEROS) device_bytes += w.nbytes();
  }
  if (Status st = sink.finish(); !st) return st;
  bar.update(streamer.bytes_read(), true);
  if (stats) {
    stats->source = "checkpoint";
    stats->file_bytes = streamer.bytes_read();
    stats->device_bytes = device_bytes;
    stats->staging_bytes = sink.held_bytes() + streamer.scratch_bytes();
    stats->seconds = seconds_since(t0);
    stats->rss_before_kib = rss0;
    stats->peak_rss_kib = peak_rss_kib();
  }
  return Status::success();
}

Status random_weights_to_device(Device& dev, const Plan& plan, uint64_t seed,
                                const std::vector<void*>& dst, WeightLoadStats* stats) {
  const auto t0 = clock_type::now();
  const int64_t rss0 = current_rss_kib();
  auto sym = cu::symbols();
  if (!sym) return sym.error();
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  const RandomWeightFiller filler(plan, seed);
  // One tile of random elements per (role, dtype, K), uploaded twice back to back so that a
  // copy of up to kTile bytes may start at any 64-byte phase of it: weights sharing a role get
  // different phases, so experts and layers do not all hold the same values.
  constexpr uint64_t kTile = uint64_t{4} << 20;
  using Key = std::tuple<int, DType, int64_t>;
  std::map<Key, void*> tiles;
  std::vector<uint8_t> host(2 * kTile);
  Status result = Status::success();
  uint64_t device_bytes = 0;
  for (size_t wi = 0; wi < n && result.ok(); ++wi) {
    const plan::WeightDef& w = *weights->Get(wi);
    if (w.transform() == WeightTransform::CHECK_ZEROS || w.nbytes() == 0) continue;
    const Key key{filler.role(wi), w.dtype(), filler.k(wi)};
    auto it = tiles.find(key);
    if (it == tiles.end()) {
      filler.fill(wi, 0, kTile / plan_dtype_size(w.dtype()), host.data());
      std::memcpy(host.data() + kTile, host.data(), kTile);
      auto p = dev.alloc(2 * kTile);
      if (!p) { result = p.error(); break; }
      it = tiles.emplace(key, *p).first;
      if (Status st = dev.copy_to_device(*p, host.data(), 2 * kTile); !st) { result = st; break; }
    }
    for (uint64_t off = 0, k = 0; off < w.nbytes(); off += kTile, ++k) {
      const uint64_t m = std::min(kTile, w.nbytes() - off);
      const uint64_t phase = ref::splitmix64(seed + wi * 0x10001 + k) % (kTile / 64) * 64;
      if (Status st = dev.copy_device(at(dst[wi], off), at(it->second, phase), m); !st) { result = st; break; }
    }
    device_bytes += w.nbytes();
  }
  // Device-to-device cuMemcpy runs on the legacy default stream, which the executor's
  // non-blocking stream does not wait for: wait here, before the tiles are freed.
  if (const cu::CUresult rc = (*sym)->cuStreamSynchronize(nullptr); rc != cu::CUDA_SUCCESS && result.ok())
    result = cu::call_error("cuStreamSynchronize", rc, __FILE__, __LINE__);
  for (auto& [key, p] : tiles) (void)dev.free(p);
  if (!result.ok()) return result;
  if (stats) {
    stats->source = "random";
    stats->file_bytes = 0;
    stats->device_bytes = device_bytes;
    stats->staging_bytes = host.size();
    stats->seconds = seconds_since(t0);
    stats->rss_before_kib = rss0;
    stats->peak_rss_kib = peak_rss_kib();
  }
  return Status::success();
}

Status upload_host_weights(Device& dev, const Plan& plan, const HostWeights& hw,
                           const std::vector<void*>& dst, WeightLoadStats* stats) {
  const auto t0 = clock_type::now();
  const int64_t rss0 = current_rss_kib();
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  if (hw.buffers.size() != n)
    return Error::internal("host weights hold " + std::to_string(hw.buffers.size()) +
                           " buffers, the plan has " + std::to_string(n) + " weights");
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const plan::WeightDef& w = *weights->Get(i);
    if (w.transform() == WeightTransform::CHECK_ZEROS) continue;
    if (hw.buffers[i].size() != w.nbytes())
      return Error::internal("host weight '" + w.name()->str() + "' has " + std::to_string(hw.buffers[i].size()) +
                             " bytes, the plan expects " + std::to_string(w.nbytes()));
    if (Status st = dev.copy_to_device(dst[i], hw.buffers[i].data(), w.nbytes()); !st) return st;
    bytes += w.nbytes();
  }
  if (stats) {
    stats->source = "host";
    stats->device_bytes = bytes;
    stats->seconds = seconds_since(t0);
    stats->rss_before_kib = rss0;
    stats->peak_rss_kib = peak_rss_kib();
  }
  return Status::success();
}

int64_t peak_rss_kib() {
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_maxrss);  // KiB on Linux
}

int64_t current_rss_kib() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return static_cast<int64_t>(resident) * (::sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace mm::rt
