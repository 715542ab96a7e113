#include "runtime/src/weight_stream.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <tuple>

#include "codegen/reference/reference.h"

namespace mm::rt {

namespace {

using plan::DType;
using plan::WeightTransform;
using clock_type = std::chrono::steady_clock;

constexpr uint64_t kAlign = 256;
// Gaps between the plan's tensors up to this size are read through rather than skipped: one
// sequential request is cheaper than a seek and a new request.
constexpr uint64_t kReadThroughGap = uint64_t{1} << 20;
// Reader threads with O_DIRECT when LoadOptions::readers is 0.
constexpr int kDirectReaders = 4;
// Transform scratch of the device sink: two halves, each reused once the copies from it are done.
// 8 MiB: a whole expert matrix (w1, w3 or w2 of the full model: 2.4 MB) laid out in strips of 32
// columns goes to the device in one copy (PieceKind::STRIPS).
constexpr uint64_t kScratchHalf = uint64_t{8} << 20;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}
uint8_t* at(void* base, uint64_t off) { return static_cast<uint8_t*>(base) + off; }
std::string mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// "loading weights: 12.34 / 36.90 GB  1.72 GB/s  ETA 14 s" (decimal GB, as disks are rated).
class Progress {
 public:
  Progress(bool on, uint64_t total) : on_(on), total_(total), start_(clock_type::now()) {}
  void update(uint64_t done, bool final = false) {
    if (!on_) return;
    const auto now = clock_type::now();
    if (!final && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done / 1e9 / secs : 0.0;
    const double eta = rate > 0 ? (total_ - std::min(done, total_)) / 1e9 / rate : 0.0;
    std::fprintf(stderr, "\rloading weights: %6.2f / %.2f GB  %5.2f GB/s  ETA %3.0f s ", done / 1e9, total_ / 1e9,
                 rate, eta);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  void abandon() {
    if (on_ && last_ != clock_type::time_point{}) std::fprintf(stderr, "\n");
  }

 private:
  bool on_;
  uint64_t total_;
  clock_type::time_point start_, last_{};
};

void upcast_to_f32(const uint8_t* src, DType dt, uint64_t n, float* dst) {
  for (uint64_t i = 0; i < n; ++i) {
    if (dt == DType::F32) {
      std::memcpy(dst + i, src + 4 * i, 4);
    } else {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      dst[i] = dt == DType::F16 ? ref::f16_to_f32(v) : ref::bf16_to_f32(v);
    }
  }
}

// ---- Sinks ----------------------------------------------------------------------------------

class HostSink final : public LoadSink {
 public:
  Expected<uint8_t*> staging(uint64_t bytes) override {
    void* p = std::aligned_alloc(kDirectAlign, align_up(bytes, kDirectAlign));
    if (!p) return Error::internal("out of host memory allocating a " + mib(bytes) + " staging buffer");
    bufs_.emplace_back(static_cast<uint8_t*>(p));
    held_ += bytes;
    return bufs_.back().get();
  }
  Status copy(void* dst, const uint8_t* src, uint64_t n) override {
    std::memcpy(dst, src, n);
    return Status::success();
  }
  Status copy_rows(void* dst, uint64_t dst_pitch, const uint8_t* src, uint64_t row_bytes, uint64_t rows) override {
    for (uint64_t r = 0; r < rows; ++r) std::memcpy(at(dst, r * dst_pitch), src + r * row_bytes, row_bytes);
    return Status::success();
  }
  uint64_t scratch_limit() const override { return kScratchHalf; }
  Expected<uint8_t*> scratch(uint64_t n) override {
    if (scratch_.size() < n) scratch_.resize(n);
    return scratch_.data();
  }
  Status retire(uint8_t*) override { return Status::success(); }
  Expected<bool> reclaim(uint8_t*, bool) override { return true; }
  Status finish() override { return Status::success(); }
  uint64_t held_bytes() const override { return held_ + scratch_.capacity(); }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, Free>> bufs_;
  std::vector<uint8_t> scratch_;
  uint64_t held_ = 0;
};

class DeviceSink final : public LoadSink {
 public:
  DeviceSink(Device& dev, const cu::Symbols* sym) : dev_(dev), sym_(sym) {}
  ~DeviceSink() override {
    (void)dev_.synchronize();
    for (auto& [p, b] : bufs_) {
      if (b.event) sym_->cuEventDestroy_v2(b.event);
      (void)dev_.unregister_host(p);
      std::free(p);
    }
    for (Half& h : halves_) {
      if (h.event) sym_->cuEventDestroy_v2(h.event);
      (void)dev_.free_host(h.base);
    }
  }
  Status init() {
    for (Half& h : halves_) {
      auto p = dev_.alloc_host(kScratchHalf);
      if (!p) return Error::internal("cannot allocate " + mib(kScratchHalf) + " of pinned scratch memory: " + p.error().message);
      h.base = static_cast<uint8_t*>(*p);
      MM_CU(sym_, cuEventCreate, &h.event, cu::CU_EVENT_DEFAULT);
    }
    return Status::success();
  }
  // Ordinary aligned memory, page-locked with cuMemHostRegister: the readers' O_DIRECT requests
  // pin its pages like any user buffer (memory from cuMemAllocHost is a driver mapping, which
  // direct I/O may refuse with EFAULT), and the copies from it are asynchronous.
  Expected<uint8_t*> staging(uint64_t bytes) override {
    const uint64_t size = align_up(bytes, kDirectAlign);
    uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, size));
    if (!p) return Error::internal("out of host memory allocating a " + mib(bytes) + " staging buffer");
    if (Status st = dev_.register_host(p, size); !st) {
      std::free(p);
      return Error::internal("cannot page-lock " + mib(bytes) + " of staging memory: " + st.error().message);
    }
    Buf b{nullptr, false};
    if (const cu::CUresult rc = sym_->cuEventCreate(&b.event, cu::CU_EVENT_DEFAULT); rc != cu::CUDA_SUCCESS) {
      (void)dev_.unregister_host(p);
      std::free(p);
      return cu::call_error("cuEventCreate", rc, __FILE__, __LINE__);
    }
    bufs_[p] = b;
    held_ += size;
    return p;
  }
  Status copy(void* dst, const uint8_t* src, uint64_t n) override {
    return n ? dev_.copy_to_device_async(dst, src, n) : Status::success();
  }
  Status copy_rows(void* dst, uint64_t dst_pitch, const uint8_t* src, uint64_t row_bytes, uint64_t rows) override {
    return dev_.copy_rows_to_device_async(dst, dst_pitch, src, row_bytes, rows);
  }
  uint64_t scratch_limit() const override { return kScratchHalf; }
  Expected<uint8_t*> scratch(uint64_t n) override {
    if (n > kScratchHalf) return Error::internal("scratch request of " + std::to_string(n) + " bytes exceeds the limit");
    Half* h = &halves_[cur_];
    if (h->fill + n > kScratchHalf) {
      // The copies reading this half are queued: mark their end, move to the other half and wait
      // for the copies that last read it.
      MM_CU(sym_, cuEventRecord, h->event, dev_.stream());
      h->pending = true;
      cur_ ^= 1;
      h = &halves_[cur_];
      if (h->pending) MM_CU(sym_, cuEventSynchronize, h->event);
      h->pending = false;
      h->fill = 0;
    }
    uint8_t* p = h->base + h->fill;
    h->fill += align_up(n, 64);
    return p;
  }
  Status retire(uint8_t* buf) override {
    Buf& b = bufs_.at(buf);
    MM_CU(sym_, cuEventRecord, b.event, dev_.stream());
    b.pending = true;
    return Status::success();
  }
  Expected<bool> reclaim(uint8_t* buf, bool wait) override {
    Buf& b = bufs_.at(buf);
    if (!b.pending) return true;
    if (wait) {
      MM_CU(sym_, cuEventSynchronize, b.event);
    } else {
      const cu::CUresult rc = sym_->cuEventQuery(b.event);
      if (rc == cu::CUDA_ERROR_NOT_READY) return false;
      if (rc != cu::CUDA_SUCCESS) return cu::call_error("cuEventQuery", rc, __FILE__, __LINE__);
    }
    b.pending = false;
    return true;
  }
  Status finish() override { return dev_.synchronize(); }
  uint64_t held_bytes() const override { return held_ + 2 * kScratchHalf; }

 private:
  struct Buf {
    cu::CUevent event;
    bool pending;
  };
  struct Half {
    uint8_t* base = nullptr;
    cu::CUevent event = nullptr;
    uint64_t fill = 0;
    bool pending = false;
  };
  Device& dev_;
  const cu::Symbols* sym_;
  std::map<uint8_t*, Buf> bufs_;
  Half halves_[2];
  int cur_ = 0;
  uint64_t held_ = 0;
};

// ---- The reading pipeline ---------------------------------------------------------------------

// What the consumer does with the bytes of one source tensor.
enum class PieceKind : uint8_t {
  CONTIG,  // to dst + offset in the tensor
  ROWS,    // row r of the tensor to dst + r * pitch (its columns of the destination rows)
  UPCAST,  // 16-bit or f32 elements to f32 at dst
  ZEROS,   // every 32-bit word must be 0x77777777; nothing is stored
  STRIPS,  // a packed int4 matrix in strips of 32 columns (plan.fbs QuantLayout STRIPS32): the
           // 128 bytes of strip s of row r to dst + s * pitch + r * 128
};

struct Piece {
  uint32_t shard = 0;
  uint64_t offset = 0, nbytes = 0;  // in the shard file
  PieceKind kind = PieceKind::CONTIG;
  uint8_t* dst = nullptr;
  uint64_t row_bytes = 0, pitch = 0;  // ROWS, STRIPS (pitch: the bytes of one output strip)
  uint64_t mrows = 0, mstride = 0;    // STRIPS: source rows per output matrix, bytes between them
  const plan::TensorRefDef* src = nullptr;
  // UPCAST, ZEROS: an element split across two chunks waits here for its other bytes.
  uint8_t carry[4] = {0, 0, 0, 0};
  uint32_t carry_n = 0;
  uint64_t end() const { return offset + nbytes; }
};

// A run of one shard read front to back; pieces [p0, p1) lie in it (sorted by offset).
struct Extent {
  uint32_t shard = 0;
  uint64_t begin = 0, end = 0;
  size_t p0 = 0, p1 = 0;
};

// One read: [begin, end) of an extent, inside one chunk-aligned window of the file, so the read
// [align_down(begin), align_up(end)) is at most one staging buffer.
struct Chunk {
  uint32_t extent = 0;
  uint64_t begin = 0, end = 0;
};

// The pieces of every weight. dst[i] is weight i's destination (null for CHECK_ZEROS).
Status plan_pieces(const Plan& plan, const ShardSet& shards, const std::vector<void*>& dst, std::vector<Piece>* out) {
  std::map<std::string_view, uint32_t> shard_of;
  for (size_t i = 0; i < shards.files.size(); ++i) shard_of[shards.files[i]] = static_cast<uint32_t>(i);
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  if (dst.size() != n)
    return Error::internal("weight loader: " + std::to_string(dst.size()) + " destinations for " + std::to_string(n) + " weights");
  for (size_t wi = 0; wi < n; ++wi) {
    const plan::WeightDef& w = *weights->Get(wi);
    const auto& srcs = *w.sources();
    const std::string name = w.name()->str();
    if (w.transform() != WeightTransform::CHECK_ZEROS && w.nbytes() > 0 && !dst[wi])
      return Error::internal("weight '" + name + "' has no destination");
    uint8_t* d = static_cast<uint8_t*>(dst[wi]);
    auto add = [&](const plan::TensorRefDef* s, PieceKind kind, uint64_t dst_off, uint64_t row_bytes, uint64_t pitch) {
      if (s->nbytes() == 0) return;
      Piece p;
      p.shard = shard_of.at(s->file()->string_view());
      p.offset = s->offset();
      p.nbytes = s->nbytes();
      p.kind = kind;
      p.dst = d ? d + dst_off : nullptr;
      p.row_bytes = row_bytes;
      p.pitch = pitch;
      p.src = s;
      out->push_back(p);
    };
    // A tensor-parallel rank's slice of a source (docs/parallel.md; COPY and CONCAT_N only, as
    // the plan reader checked): along dim 0 one contiguous range; along a later dim one piece per
    // index of the dims before it, each landing where the sliced tensor's row would.
    // `row_pitch` is the destination distance between those rows (0: back to back).
    auto sliced_bytes = [](const plan::TensorRefDef* s) {
      if (s->slice_dim() < 0) return s->nbytes();
      return s->nbytes() / static_cast<uint64_t>(s->shape()->Get(s->slice_dim())) *
             static_cast<uint64_t>(s->slice_len());
    };
    auto add_slice = [&](const plan::TensorRefDef* s, PieceKind kind, uint64_t dst_off, uint64_t row_bytes,
                         uint64_t pitch) {
      const int sd = s->slice_dim();
      if (sd < 0) return add(s, kind, dst_off, row_bytes, pitch);
      uint64_t outer = 1, inner = s->nbytes();
      for (int d = 0; d <= sd; ++d) {
        const uint64_t extent = static_cast<uint64_t>(s->shape()->Get(d));
        inner /= extent;
        if (d < sd) outer *= extent;
      }
      const uint64_t full = static_cast<uint64_t>(s->shape()->Get(sd)) * inner;
      const uint64_t part = static_cast<uint64_t>(s->slice_len()) * inner;
      const uint64_t start = static_cast<uint64_t>(s->slice_start()) * inner;
      if (s->nbytes() == 0) return;
      // ROWS pieces (a concatenation along the last dim) place each row at r * pitch.
      const uint64_t row_pitch = kind == PieceKind::ROWS ? pitch : part;
      if (sd == 0) {
        Piece p;
        p.shard = shard_of.at(s->file()->string_view());
        p.offset = s->offset() + start;
        p.nbytes = part;
        p.kind = kind;
        p.dst = d ? d + dst_off : nullptr;
        p.row_bytes = row_bytes;
        p.pitch = pitch;
        p.src = s;
        out->push_back(p);
        return;
      }
      for (uint64_t o = 0; o < outer; ++o) {
        Piece p;
        p.shard = shard_of.at(s->file()->string_view());
        p.offset = s->offset() + o * full + start;
        p.nbytes = part;
        p.kind = PieceKind::CONTIG;
        p.dst = d ? d + dst_off + o * row_pitch : nullptr;
        p.src = s;
        out->push_back(p);
      }
    };
    auto stacked = [&] {
      uint64_t off = 0;
      for (const plan::TensorRefDef* s : srcs) {
        add_slice(s, PieceKind::CONTIG, off, 0, 0);
        off += sliced_bytes(s);
      }
    };
    const uint64_t esize = plan_dtype_size(w.dtype());
    const auto* shape = w.shape();
    const size_t rank = shape ? shape->size() : 0;
    if (w.qlayout() == plan::QuantLayout::STRIPS32) {
      // The output matrices (one, or one per expert) are [KR, N] words laid out as [N/32][KR][32]:
      // strip s of output row r at s * KR * 128 + r * 128. A source adds its rows at row_off and its
      // columns at col_off (multiples of 32, checked by the plan reader), so its strips are
      // adjacent blocks of the output from strip col_off / 32 on.
      const uint64_t kr = static_cast<uint64_t>(shape->Get(rank - 2)), ncols = static_cast<uint64_t>(shape->Get(rank - 1));
      const uint64_t strip_pitch = kr * 128, matrix_bytes = kr * ncols * 4;
      // mrows: the source's rows per output matrix (a COPY of [E, K/8, N] holds E of them). The
      // source (or its dim-0 slice, the only one the reader allows here) is one piece, as add_slice
      // cuts it.
      auto cols_of = [](const plan::TensorRefDef* s) {
        return static_cast<uint64_t>(s->shape()->Get(s->shape()->size() - 1));
      };
      auto add_strips = [&](const plan::TensorRefDef* s, uint64_t matrix, uint64_t row_off, uint64_t col_off,
                            uint64_t mrows) {
        const size_t first = out->size();
        add_slice(s, PieceKind::STRIPS, matrix * matrix_bytes + (col_off / 32) * strip_pitch + row_off * 128,
                  cols_of(s) * 4, strip_pitch);
        for (size_t i = first; i < out->size(); ++i) {
          (*out)[i].mrows = mrows;
          (*out)[i].mstride = matrix_bytes;
        }
      };
      auto rows_of = [&](const plan::TensorRefDef* s) { return sliced_bytes(s) / (cols_of(s) * 4); };
      uint64_t row_off = 0, col_off = 0;
      for (size_t j = 0; j < srcs.size(); ++j) {
        const plan::TensorRefDef* s = srcs[j];
        switch (w.transform()) {
          case WeightTransform::STACK_EXPERTS: add_strips(s, j, 0, 0, kr); break;
          case WeightTransform::STACK_EXPERTS_W13: add_strips(s, j / 2, 0, (j % 2) * (ncols / 2), kr); break;
          case WeightTransform::CONCAT_N:
            add_strips(s, 0, row_off, col_off, rows_of(s));
            if (w.concat_axis() == 0)
              row_off += rows_of(s);
            else
              col_off += cols_of(s);
            break;
          default: add_strips(s, 0, 0, 0, kr); break;   // COPY (the reader allowed nothing else)
        }
      }
      continue;
    }
    switch (w.transform()) {
      case WeightTransform::CHECK_ZEROS:
        for (const plan::TensorRefDef* s : srcs) add(s, PieceKind::ZEROS, 0, 0, 0);
        break;
      case WeightTransform::UPCAST_F32:
        add(srcs[0], PieceKind::UPCAST, 0, 0, 0);
        break;
      case WeightTransform::COPY:
      case WeightTransform::STACK_EXPERTS:
        stacked();
        break;
      case WeightTransform::CONCAT_N: {
        // Along the first dimension (16-bit [N, K] matrices: contiguous) or the last
        // (qweight/scales [K', N_i]: each source's rows go to their columns), as the compiler
        // recorded it (concat_axis; the plan reader checked it).
        if (w.concat_axis() == 0) {
          stacked();
          break;
        }
        const uint64_t out_row = static_cast<uint64_t>(shape->Get(rank - 1)) * esize;
        uint64_t col = 0;
        for (const plan::TensorRefDef* s : srcs) {
          const bool cols = s->slice_dim() == static_cast<int>(rank) - 1;
          const uint64_t rb = static_cast<uint64_t>(cols ? s->slice_len() : s->shape()->Get(rank - 1)) * esize;
          add_slice(s, PieceKind::ROWS, col, rb, out_row);
          col += rb;
        }
        break;
      }
      case WeightTransform::STACK_EXPERTS_W13: {
        // Sources alternate w1_e, w3_e, each [R, I]; expert e becomes [R, 2I] = [w1_e | w3_e].
        const uint64_t out_row = static_cast<uint64_t>(shape->Get(rank - 1)) * esize;
        const uint64_t experts = static_cast<uint64_t>(shape->Get(0));
        const uint64_t expert_bytes = experts ? w.nbytes() / experts : 0;
        for (size_t j = 0; j < srcs.size(); ++j)
          add(srcs[j], PieceKind::ROWS, (j / 2) * expert_bytes + (j % 2) * (out_row / 2), out_row / 2, out_row);
        break;
      }
    }
  }
  return Status::success();
}

class Pipeline {
 public:
  Pipeline(const ShardSet& shards, std::vector<Piece> pieces, LoadSink& sink, const LoadOptions& o)
      : shards_(shards), pieces_(std::move(pieces)), sink_(sink), opts_(o),
        fs_(o.fs ? *o.fs : posix_shard_fs()), chunk_(align_up(std::max<uint64_t>(o.chunk_bytes, 1), kDirectAlign)) {}

  Status run(WeightLoadStats* stats);

 private:
  struct File {
    std::unique_ptr<ShardFile> buffered, direct;
    std::atomic<bool> direct_ok{false};
  };

  void cut();
  Status open_files();
  void reader();
  Status read_chunk(size_t idx, uint8_t* buf);
  Status consume(size_t idx, const uint8_t* buf);
  Status piece_bytes(Piece& p, const uint8_t* src, uint64_t off, uint64_t n);
  Status give_back(uint8_t* buf);

  const ShardSet& shards_;
  std::vector<Piece> pieces_;
  LoadSink& sink_;
  LoadOptions opts_;
  ShardFs& fs_;
  const uint64_t chunk_;
  std::vector<Extent> extents_;
  std::vector<size_t> first_live_;   // per extent: pieces before it ended before the current chunk
  std::vector<Chunk> chunks_;
  std::unique_ptr<File[]> files_;
  std::atomic<uint64_t> bytes_read_{0};

  // Shared with the readers, under mu_.
  std::mutex mu_;
  std::condition_variable free_cv_, ready_cv_;
  std::vector<uint8_t*> free_;
  std::map<size_t, uint8_t*> ready_;
  size_t next_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  size_t failed_idx_ = 0;
  Error error_;
};

void Pipeline::cut() {
  std::sort(pieces_.begin(), pieces_.end(), [](const Piece& a, const Piece& b) {
    return std::tie(a.shard, a.offset, a.nbytes) < std::tie(b.shard, b.offset, b.nbytes);
  });
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    if (!extents_.empty() && extents_.back().shard == p.shard && p.offset <= extents_.back().end + kReadThroughGap) {
      extents_.back().end = std::max(extents_.back().end, p.end());
      extents_.back().p1 = i + 1;
    } else {
      extents_.push_back(Extent{p.shard, p.offset, p.end(), i, i + 1});
    }
  }
  first_live_.resize(extents_.size());
  for (size_t e = 0; e < extents_.size(); ++e) {
    first_live_[e] = extents_[e].p0;
    for (uint64_t b = extents_[e].begin; b < extents_[e].end;) {
      const uint64_t window_end = align_down(b, chunk_) + chunk_;
      const uint64_t end = std::min(window_end, extents_[e].end);
      chunks_.push_back(Chunk{static_cast<uint32_t>(e), b, end});
      b = end;
    }
  }
}

Status Pipeline::open_files() {
  files_.reset(new File[shards_.files.size()]);
  for (size_t i = 0; i < shards_.files.size(); ++i) {
    auto b = fs_.open(shards_.path(i), false);
    if (!b) return b.error();
    files_[i].buffered = std::move(*b);
    if (opts_.io == IoMode::BUFFERED) continue;
    auto d = fs_.open(shards_.path(i), true);
    if (d) {
      files_[i].direct = std::move(*d);
      files_[i].direct_ok = true;
    } else if (opts_.io == IoMode::DIRECT || d.error().kind != ErrorKind::Usage) {
      return Error::bad_input(d.error().message + (opts_.io == IoMode::DIRECT ? " (direct I/O was asked for)" : ""));
    }
  }
  return Status::success();
}

void Pipeline::reader() {
  for (;;) {
    uint8_t* buf = nullptr;
    size_t idx = 0;
    {
      std::unique_lock<std::mutex> lk(mu_);
      // A buffer first, then the next chunk: every chunk handed out is being read, so the
      // consumer never waits for a chunk nobody can read.
      free_cv_.wait(lk, [&] { return stop_ || next_ >= chunks_.size() || !free_.empty(); });
      if (stop_ || next_ >= chunks_.size()) return;
      buf = free_.back();
      free_.pop_back();
      idx = next_++;
    }
    Status st = read_chunk(idx, buf);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (st.ok()) {
        ready_[idx] = buf;
      } else {
        if (!failed_ || idx < failed_idx_) {
          error_ = st.error();
          failed_idx_ = idx;
        }
        failed_ = stop_ = true;
        free_.push_back(buf);
      }
    }
    ready_cv_.notify_all();
    if (!st.ok()) free_cv_.notify_all();
  }
}

Status Pipeline::read_chunk(size_t idx, uint8_t* buf) {
  const Chunk& c = chunks_[idx];
  const uint32_t shard = extents_[c.extent].shard;
  File& f = files_[shard];
  const uint64_t a0 = align_down(c.begin, kDirectAlign), a1 = align_up(c.end, kDirectAlign);
  const uint64_t need = c.end - a0;
  uint64_t got = 0;
  while (got < need) {
    const uint64_t off = a0 + got, want = a1 - off;
    // O_DIRECT needs the offset, length and address aligned; after an unaligned short read the
    // rest of the request goes through the page cache.
    const bool direct = f.direct_ok.load(std::memory_order_relaxed) && got % kDirectAlign == 0;
    ShardFile& file = direct ? *f.direct : *f.buffered;
    const int64_t r = file.read_at(buf + got, want, off);
    if ((r == -EINVAL || r == -EFAULT) && direct && opts_.io == IoMode::AUTO) {
      // The filesystem takes O_DIRECT at open but not these requests (some network filesystems),
      // or the memory cannot be pinned for direct I/O: this shard is read through the page cache
      // from now on.
      f.direct_ok = false;
      continue;
    }
    if (r < 0)
      return Error::bad_input(shards_.path(shard) + ": read of " + std::to_string(want) + " bytes at offset " +
                              std::to_string(off) + " failed: " + std::strerror(static_cast<int>(-r)) +
                              (direct ? " (O_DIRECT)" : ""));
    if (r == 0)
      return Error::bad_input(shards_.path(shard) + ": short read: the file ends at offset " + std::to_string(off) +
                              ", the plan's tensors extend to offset " + std::to_string(c.end) +
                              " (truncated or changed since the check)");
    got += static_cast<uint64_t>(r);
  }
  // Dropping the pages just read keeps a checkpoint larger than memory from pushing a
  // unified-memory machine into swap (design.md section 3).
  f.buffered->drop_cache(a0, got);
  bytes_read_ += got;
  return Status::success();
}

Status Pipeline::give_back(uint8_t* buf) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    free_.push_back(buf);
  }
  free_cv_.notify_one();
  return Status::success();
}

// Calls fn(elements, count, first element index) over the whole `es`-byte elements of the piece
// bytes [off, off + n), completing an element split by a chunk boundary from the piece's carry.
template <class Fn>
Status for_elements(Piece& p, const uint8_t* src, uint64_t off, uint64_t n, uint32_t es, Fn fn) {
  if (p.carry_n) {
    const uint64_t m = std::min<uint64_t>(es - p.carry_n, n);
    std::memcpy(p.carry + p.carry_n, src, m);
    p.carry_n += static_cast<uint32_t>(m);
    src += m;
    off += m;
    n -= m;
    if (p.carry_n < es) return Status::success();
    p.carry_n = 0;
    if (Status st = fn(p.carry, uint64_t{1}, off / es - 1); !st) return st;
  }
  const uint64_t whole = n / es * es;
  if (whole)
    if (Status st = fn(src, whole / es, off / es); !st) return st;
  if (n > whole) {
    std::memcpy(p.carry, src + whole, n - whole);
    p.carry_n = static_cast<uint32_t>(n - whole);
  }
  return Status::success();
}

Status Pipeline::piece_bytes(Piece& p, const uint8_t* src, uint64_t off, uint64_t n) {
  switch (p.kind) {
    case PieceKind::CONTIG:
      return sink_.copy(p.dst + off, src, n);
    case PieceKind::ROWS: {
      const uint64_t rb = p.row_bytes;
      uint64_t row = off / rb, col = off % rb;
      while (n > 0) {
        if (col != 0 || n < rb) {  // part of a row (at a chunk boundary): contiguous in dst
          const uint64_t m = std::min(rb - col, n);
          if (Status st = sink_.copy(p.dst + row * p.pitch + col, src, m); !st) return st;
          src += m;
          n -= m;
          col += m;
          if (col == rb) {
            col = 0;
            ++row;
          }
        } else {
          const uint64_t rows = n / rb;
          if (Status st = sink_.copy_rows(p.dst + row * p.pitch, p.pitch, src, rb, rows); !st) return st;
          src += rows * rb;
          n -= rows * rb;
          row += rows;
        }
      }
      return Status::success();
    }
    case PieceKind::STRIPS: {
      // Bytes [off, off + n) of the source matrix (rows of rb bytes): partial rows at a chunk
      // boundary go 128-byte segment by segment; whole rows are transposed into scratch, strip-major,
      // blocks of rows at a time, one copy per strip (one for the block when it covers every row of
      // the output strip: the strips are then adjacent).
      const uint64_t rb = p.row_bytes, strips = rb / 128;
      // Source row R is row R % mrows of output matrix R / mrows.
      auto row_dst = [&](uint64_t row) { return p.dst + (row / p.mrows) * p.mstride + (row % p.mrows) * 128; };
      auto segments = [&](uint64_t o, uint64_t m) -> Status {   // within one row
        while (m > 0) {
          const uint64_t row = o / rb, c = o % rb, take = std::min(m, 128 - c % 128);
          if (Status st = sink_.copy(row_dst(row) + (c / 128) * p.pitch + c % 128, src, take); !st) return st;
          src += take;
          o += take;
          m -= take;
        }
        return Status::success();
      };
      if (off % rb != 0) {
        const uint64_t m = std::min(n, rb - off % rb);
        if (Status st = segments(off, m); !st) return st;
        off += m;
        n -= m;
      }
      const uint64_t block = std::max<uint64_t>(1, sink_.scratch_limit() / rb);
      while (n >= rb) {
        // Rows of one output matrix at a time.
        const uint64_t row = off / rb, rows = std::min({n / rb, block, p.mrows - row % p.mrows});
        auto out = sink_.scratch(rows * rb);
        if (!out) return out.error();
        for (uint64_t s = 0; s < strips; ++s)
          for (uint64_t r = 0; r < rows; ++r) std::memcpy(*out + (s * rows + r) * 128, src + r * rb + s * 128, 128);
        if (row % p.mrows == 0 && rows * 128 == p.pitch) {
          if (Status st = sink_.copy(row_dst(row), *out, rows * rb); !st) return st;
        } else {
          for (uint64_t s = 0; s < strips; ++s)
            if (Status st = sink_.copy(row_dst(row) + s * p.pitch, *out + s * rows * 128, rows * 128); !st) return st;
        }
        src += rows * rb;
        off += rows * rb;
        n -= rows * rb;
      }
      return n > 0 ? segments(off, n) : Status::success();
    }
    case PieceKind::UPCAST: {
      const DType dt = p.src->dtype();
      const uint32_t es = static_cast<uint32_t>(plan_dtype_size(dt));
      const uint64_t per = sink_.scratch_limit() / 4;
      return for_elements(p, src, off, n, es, [&](const uint8_t* e, uint64_t count, uint64_t first) -> Status {
        for (uint64_t i = 0; i < count; i += per) {
          const uint64_t m = std::min(per, count - i);
          auto out = sink_.scratch(m * 4);
          if (!out) return out.error();
          upcast_to_f32(e + i * es, dt, m, reinterpret_cast<float*>(*out));
          if (Status st = sink_.copy(p.dst + (first + i) * 4, *out, m * 4); !st) return st;
        }
        return Status::success();
      });
    }
    case PieceKind::ZEROS:
      // Symmetric int4 zero points: every word must be 0x77777777 (docs/kernels.md section 3).
      return for_elements(p, src, off, n, 4, [&](const uint8_t* e, uint64_t count, uint64_t first) -> Status {
        for (uint64_t i = 0; i < count; ++i) {
          uint32_t v;
          std::memcpy(&v, e + 4 * i, 4);
          if (v != 0x77777777u) {
            char hex[16];
            std::snprintf(hex, sizeof hex, "0x%08x", v);
            return Error::bad_input(shards_.path(p.shard) + ": tensor '" + p.src->name()->str() + "' word " +
                                    std::to_string(first + i) + " is " + hex +
                                    "; symmetric int4 zero points must all be 0x77777777");
          }
        }
        return Status::success();
      });
  }
  return Error::internal("unknown piece kind");
}

Status Pipeline::consume(size_t idx, const uint8_t* buf) {
  const Chunk& c = chunks_[idx];
  const Extent& e = extents_[c.extent];
  const uint8_t* data = buf + (c.begin - align_down(c.begin, kDirectAlign));
  size_t& first = first_live_[c.extent];
  while (first < e.p1 && pieces_[first].end() <= c.begin) ++first;
  for (size_t i = first; i < e.p1 && pieces_[i].offset < c.end; ++i) {
    Piece& p = pieces_[i];
    const uint64_t lo = std::max(p.offset, c.begin), hi = std::min(p.end(), c.end);
    if (lo >= hi) continue;
    if (Status st = piece_bytes(p, data + (lo - c.begin), lo - p.offset, hi - lo); !st) return st;
  }
  return Status::success();
}

Status Pipeline::run(WeightLoadStats* stats) {
  cut();
  if (Status st = open_files(); !st) return st;
  const size_t n = chunks_.size();
  // O_DIRECT: several requests in flight keep the device busy. Through the page cache one reader
  // going front to back is faster: the kernel's readahead keeps requests in flight, and several
  // threads reading one file at interleaved offsets defeat it (measured: 4 readers at half the
  // rate of 1).
  bool all_direct = true;
  for (size_t i = 0; i < shards_.files.size(); ++i) all_direct = all_direct && files_[i].direct_ok;
  const int want = opts_.readers > 0 ? opts_.readers : all_direct ? kDirectReaders : 1;
  const int readers = static_cast<int>(std::clamp<size_t>(static_cast<size_t>(want), 1, std::max<size_t>(n, 1)));
  const int buffers = static_cast<int>(std::clamp<size_t>(
      static_cast<size_t>(opts_.buffers > 0 ? opts_.buffers : readers + 2), 1, std::max<size_t>(n, 1)));
  for (int i = 0; i < buffers; ++i) {
    auto b = sink_.staging(chunk_);
    if (!b) return b.error();
    free_.push_back(*b);
  }
  uint64_t total = 0;
  for (const Chunk& c : chunks_) total += c.end - c.begin;
  Progress bar(opts_.progress, total);

  std::vector<std::thread> threads;
  Status result = Status::success();
  try {
    for (int i = 0; i < readers; ++i) threads.emplace_back([this] { reader(); });
  } catch (const std::system_error& e) {
    result = Error::internal(std::string("cannot start a weight reader thread: ") + e.what());
  }

  std::deque<uint8_t*> pending;  // retired by the consumer, copies maybe still running
  uint64_t done = 0;
  for (size_t idx = 0; idx < n && result.ok(); ++idx) {
    uint8_t* buf = nullptr;
    while (!buf && result.ok()) {
      {
        // After a failed read the chunks before it are still read (they were handed out before
        // it): the error reported is the first in file order, whatever the threads' timing.
        std::unique_lock<std::mutex> lk(mu_);
        if (failed_ && failed_idx_ <= idx) {
          result = error_;
          break;
        }
        if (auto it = ready_.find(idx); it != ready_.end()) {
          buf = it->second;
          ready_.erase(it);
          break;
        }
        if (pending.empty()) {
          ready_cv_.wait(lk, [&] { return (failed_ && failed_idx_ <= idx) || ready_.count(idx) > 0; });
          continue;
        }
      }
      // Nothing to consume yet: wait for the oldest copies so their buffer can take a read.
      auto r = sink_.reclaim(pending.front(), true);
      if (!r) {
        result = r.error();
        break;
      }
      (void)give_back(pending.front());
      pending.pop_front();
    }
    if (!buf) break;
    result = consume(idx, buf);
    if (result.ok()) result = sink_.retire(buf);
    pending.push_back(buf);
    while (result.ok() && !pending.empty()) {
      auto r = sink_.reclaim(pending.front(), false);
      if (!r) {
        result = r.error();
        break;
      }
      if (!*r) break;
      (void)give_back(pending.front());
      pending.pop_front();
    }
    done += chunks_[idx].end - chunks_[idx].begin;
    bar.update(done);
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  free_cv_.notify_all();
  for (std::thread& t : threads) t.join();
  // Every copy ends before the staging buffers can be freed (the sink owns them).
  if (Status st = sink_.finish(); !st && result.ok()) result = st;
  if (result.ok())
    for (const Piece& p : pieces_)
      if (p.carry_n) result = Error::internal("tensor '" + p.src->name()->str() + "' ended inside an element");
  if (!result.ok()) {
    bar.abandon();
    return result;
  }
  bar.update(done, true);
  if (stats) {
    stats->file_bytes = bytes_read_;
    stats->readers = readers;
    stats->files = 0;
    stats->direct_files = 0;
    for (size_t i = 0; i < shards_.files.size(); ++i) {
      ++stats->files;
      if (files_[i].direct_ok) ++stats->direct_files;
    }
    stats->staging_bytes = sink_.held_bytes();
  }
  return Status::success();
}

Status stream_checked(const Plan& plan, const std::string& dir, const std::vector<void*>& dst, LoadSink& sink,
                      const LoadOptions& options, WeightLoadStats* stats) {
  const ShardSet shards = plan_shards(plan, dir);
  std::vector<Piece> pieces;
  if (Status st = plan_pieces(plan, shards, dst, &pieces); !st) return st;
  Pipeline pipeline(shards, std::move(pieces), sink, options);
  return pipeline.run(stats);
}

// Runs `body` (the reads) while check_weights_dir parses the shard headers on another thread:
// parsing the headers of a 62-layer checkpoint (108,255 tensors) takes seconds of one core, which
// need not hold the disk up. A failed check is the error reported (the reads of a directory that
// does not match the plan fail too, less clearly).
Status while_checking(const Plan& plan, const std::string& dir, const std::function<Status()>& body) {
  Status check = Status::success();
  std::thread checker;
  try {
    checker = std::thread([&] { check = check_weights_dir(plan, dir); });
  } catch (const std::system_error&) {
    check = check_weights_dir(plan, dir);  // no thread to spare: check first
    if (!check.ok()) return check;
  }
  Status st = body();
  if (checker.joinable()) checker.join();
  if (!check.ok()) return check;
  return st;
}

void finish_stats(const Plan& plan, clock_type::time_point t0, int64_t rss0, WeightLoadStats* stats) {
  if (!stats) return;
  stats->source = "checkpoint";
  stats->device_bytes = 0;
  if (const auto* weights = plan.def().weights())
    for (const plan::WeightDef* w : *weights)
      if (w->transform() != WeightTransform::CHECK_ZEROS) stats->device_bytes += w->nbytes();
  stats->seconds = seconds_since(t0);
  stats->rss_before_kib = rss0;
  stats->peak_rss_kib = peak_rss_kib();
}

}  // namespace

Expected<IoMode> parse_io_mode(const std::string& text) {
  if (text.empty() || text == "auto") return IoMode::AUTO;
  if (text == "direct") return IoMode::DIRECT;
  if (text == "buffered") return IoMode::BUFFERED;
  return Error::usage("weight I/O mode must be auto, direct or buffered, got '" + text + "'");
}

const char* io_mode_name(IoMode mode) {
  switch (mode) {
    case IoMode::AUTO: return "auto";
    case IoMode::DIRECT: return "direct";
    case IoMode::BUFFERED: return "buffered";
  }
  return "?";
}

std::unique_ptr<LoadSink> make_host_sink() { return std::make_unique<HostSink>(); }

Expected<std::unique_ptr<LoadSink>> make_device_sink(Device& dev) {
  auto sym = cu::symbols();
  if (!sym) return sym.error();
  auto sink = std::make_unique<DeviceSink>(dev, *sym);
  if (Status st = sink->init(); !st) return st.error();
  return std::unique_ptr<LoadSink>(std::move(sink));
}

ShardSet plan_shards(const Plan& plan, const std::string& dir) {
  ShardSet s;
  s.dir = dir;
  if (const auto* weights = plan.def().weights())
    for (const plan::WeightDef* w : *weights)
      for (const plan::TensorRefDef* src : *w->sources()) s.files.push_back(src->file()->str());
  std::sort(s.files.begin(), s.files.end());
  s.files.erase(std::unique(s.files.begin(), s.files.end()), s.files.end());
  return s;
}

Status stream_weights(const Plan& plan, const std::string& dir, const std::vector<void*>& dst, LoadSink& sink,
                      const LoadOptions& options, WeightLoadStats* stats) {
  const auto t0 = clock_type::now();
  const int64_t rss0 = current_rss_kib();
  if (Status st = while_checking(plan, dir, [&] { return stream_checked(plan, dir, dst, sink, options, stats); }); !st)
    return st;
  finish_stats(plan, t0, rss0, stats);
  return Status::success();
}

Expected<HostWeights> load_host_weights(const Plan& plan, const std::string& dir, const LoadOptions& options,
                                        WeightLoadStats* stats) {
  const auto t0 = clock_type::now();
  const int64_t rss0 = current_rss_kib();
  HostWeights hw;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  hw.buffers.resize(n);
  std::vector<void*> dst(n, nullptr);
  for (size_t i = 0; i < n; ++i) {
    const plan::WeightDef& w = *weights->Get(i);
    if (w.transform() == WeightTransform::CHECK_ZEROS) continue;
    if (!hw.buffers[i].allocate(w.nbytes()))
      return Error::internal("out of host memory allocating " + std::to_string(w.nbytes()) + " bytes for weight '" +
                             w.name()->str() + "'");
    dst[i] = hw.buffers[i].data();
    hw.total_bytes += w.nbytes();
  }
  // The memory is not touched before the reads write it: a wrong directory costs nothing.
  auto sink = make_host_sink();
  if (Status st = while_checking(plan, dir, [&] { return stream_checked(plan, dir, dst, *sink, options, stats); }); !st)
    return st.error();
  finish_stats(plan, t0, rss0, stats);
  return hw;
}

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
