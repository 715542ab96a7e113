#include "runtime/src/weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "codegen/reference/reference.h"
#include "support/file_util.h"
#include "support/safetensors.h"

namespace mm::rt {

namespace {

using plan::DType;
using plan::WeightTransform;

std::string dtype_str(DType dt) { return plan_dtype_name(dt); }

// The plan's dtype of a safetensors dtype, if the plan has one.
bool to_plan_dtype(mm::DType dt, DType* out) {
  switch (dt) {
    case mm::DType::BF16: *out = DType::BF16; return true;
    case mm::DType::F16: *out = DType::F16; return true;
    case mm::DType::F32: *out = DType::F32; return true;
    case mm::DType::I32: *out = DType::I32; return true;
    case mm::DType::I64: *out = DType::I64; return true;
    case mm::DType::U8: *out = DType::U8; return true;
    case mm::DType::F8_E4M3: *out = DType::FP8_E4M3; return true;
    default: return false;
  }
}

std::string vec_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::vector<int64_t> shape_of(const flatbuffers::Vector<int64_t>* s) {
  return s ? std::vector<int64_t>(s->begin(), s->end()) : std::vector<int64_t>{};
}

}  // namespace

// Open shard files of one load.
class Shards {
 public:
  explicit Shards(std::string dir) : dir_(std::move(dir)) {}
  Expected<int> fd(const std::string& file) {
    auto it = files_.find(file);
    if (it != files_.end()) return it->second.fd();
    // A regular file only (support/file_util.h): a FIFO put in place of a shard after the headers
    // were checked must not block the loader.
    auto f = RegularFile::open(dir_ + "/" + file, "shard");
    if (!f) return f.error();
    const int fd = f->fd();
    files_.emplace(file, std::move(*f));
    return fd;
  }
  // Reads [offset, offset+n) of `file` into dst with large preads; the page cache behind the read
  // is dropped so a checkpoint larger than memory never pushes the machine into swap.
  Status read(const std::string& file, uint64_t offset, uint64_t n, void* dst) {
    auto f = fd(file);
    if (!f) return f.error();
    constexpr uint64_t kChunk = uint64_t{64} << 20;
    uint8_t* out = static_cast<uint8_t*>(dst);
    uint64_t done = 0;
    while (done < n) {
      const uint64_t want = std::min(kChunk, n - done);
      ssize_t r = ::pread(*f, out + done, want, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        return Error::bad_input(dir_ + "/" + file + ": read of " + std::to_string(want) +
                                " bytes at offset " + std::to_string(offset + done) + " failed (" +
                                (r == 0 ? std::string("unexpected end of file") : std::strerror(errno)) + ")");
      ::posix_fadvise(*f, static_cast<off_t>(offset + done), r, POSIX_FADV_DONTNEED);
      done += static_cast<uint64_t>(r);
      bytes_read_ += static_cast<uint64_t>(r);
    }
    return Status::success();
  }
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::string dir_;
  std::map<std::string, RegularFile> files_;
  uint64_t bytes_read_ = 0;
};

namespace {

class Progress {
 public:
  Progress(bool on, uint64_t total) : on_(on), total_(total), start_(clock::now()) {}
  void update(uint64_t done, bool final = false) {
    if (!on_) return;
    auto now = clock::now();
    if (!final && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double gib = 1024.0 * 1024.0 * 1024.0;
    const double rate = secs > 0 ? done / gib / secs : 0.0;
    const double eta = rate > 0 ? (total_ - done) / gib / rate : 0.0;
    std::fprintf(stderr, "\rloading weights: %.2f / %.2f GiB  %.2f GiB/s  ETA %.0f s   ",
                 done / gib, total_ / gib, rate, eta);
    if (final) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  using clock = std::chrono::steady_clock;
  bool on_;
  uint64_t total_;
  clock::time_point start_, last_{};
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

// Copies `rows` rows of `row_bytes` from src into dst rows of `dst_row_bytes` at `col_offset`.
void copy_columns(const uint8_t* src, uint64_t rows, uint64_t row_bytes, uint8_t* dst,
                  uint64_t dst_row_bytes, uint64_t col_offset) {
  for (uint64_t r = 0; r < rows; ++r)
    std::memcpy(dst + r * dst_row_bytes + col_offset, src + r * row_bytes, row_bytes);
}

Status load_one(const plan::WeightDef& w, Shards& shards, HostBuffer& out, std::vector<uint8_t>& tmp,
                const std::function<void()>& tick) {
  const auto& srcs = *w.sources();
  const size_t esize = plan_dtype_size(w.dtype());
  auto read_tmp = [&](const plan::TensorRefDef& s) -> Status {
    tmp.resize(s.nbytes());
    Status st = shards.read(s.file()->str(), s.offset(), s.nbytes(), tmp.data());
    tick();
    return st;
  };
  if (w.transform() == WeightTransform::CHECK_ZEROS) {
    for (const plan::TensorRefDef* s : srcs) {
      if (Status st = read_tmp(*s); !st) return st;
      for (uint64_t i = 0; i + 4 <= s->nbytes(); i += 4) {
        uint32_t v;
        std::memcpy(&v, tmp.data() + i, 4);
        if (v != 0x77777777u) {
          char hex[16];
          std::snprintf(hex, sizeof hex, "0x%08x", v);
          return Error::bad_input(s->file()->str() + ": tensor '" + s->name()->str() + "' word " +
                                  std::to_string(i / 4) + " is " + hex +
                                  "; symmetric int4 zero points must all be 0x77777777");
        }
      }
    }
    return Status::success();
  }
  if (!out.allocate(w.nbytes()))
    return Error::internal("out of host memory allocating " + std::to_string(w.nbytes()) +
                           " bytes for weight '" + w.name()->str() + "'");
  uint8_t* dst = out.data();
  const auto* shape = w.shape();
  const size_t r = shape->size();
  switch (w.transform()) {
    case WeightTransform::COPY: {
      Status st = shards.read(srcs[0]->file()->str(), srcs[0]->offset(), srcs[0]->nbytes(), dst);
      tick();
      return st;
    }
    case WeightTransform::UPCAST_F32: {
      if (Status st = read_tmp(*srcs[0]); !st) return st;
      upcast_to_f32(tmp.data(), srcs[0]->dtype(), w.nbytes() / 4, reinterpret_cast<float*>(dst));
      return Status::success();
    }
    case WeightTransform::CONCAT_N: {
      // Along the first dimension (16-bit [N, K] matrices: contiguous) or the last (quantized
      // qweight/scales [K', N]), as the compiler recorded (concat_axis; the plan reader checked it).
      if (w.concat_axis() == 0) {
        uint64_t off = 0;
        for (const plan::TensorRefDef* s : srcs) {
          if (Status st = shards.read(s->file()->str(), s->offset(), s->nbytes(), dst + off); !st)
            return st;
          tick();
          off += s->nbytes();
        }
        return Status::success();
      }
      const uint64_t out_row = static_cast<uint64_t>(shape->Get(r - 1)) * esize;
      const uint64_t rows = out_row ? w.nbytes() / out_row : 0;
      uint64_t col = 0;
      for (const plan::TensorRefDef* s : srcs) {
        if (Status st = read_tmp(*s); !st) return st;
        const uint64_t row_bytes = static_cast<uint64_t>(s->shape()->Get(r - 1)) * esize;
        copy_columns(tmp.data(), rows, row_bytes, dst, out_row, col);
        col += row_bytes;
      }
      return Status::success();
    }
    case WeightTransform::STACK_EXPERTS: {
      uint64_t off = 0;
      for (const plan::TensorRefDef* s : srcs) {
        if (Status st = shards.read(s->file()->str(), s->offset(), s->nbytes(), dst + off); !st)
          return st;
        tick();
        off += s->nbytes();
      }
      return Status::success();
    }
    case WeightTransform::STACK_EXPERTS_W13: {
      // Sources alternate w1_e, w3_e, each [R, I]; expert e becomes [R, 2I] = [w1_e | w3_e].
      const uint64_t out_row = static_cast<uint64_t>(shape->Get(r - 1)) * esize;
      const uint64_t half = out_row / 2;
      const uint64_t expert_bytes = w.nbytes() / static_cast<uint64_t>(shape->Get(0));
      const uint64_t rows = out_row ? expert_bytes / out_row : 0;
      for (size_t i = 0; i < srcs.size(); ++i) {
        if (Status st = read_tmp(*srcs[i]); !st) return st;
        copy_columns(tmp.data(), rows, half, dst + (i / 2) * expert_bytes, out_row,
                     (i % 2) * half);
      }
      return Status::success();
    }
    case WeightTransform::CHECK_ZEROS:
      break;
  }
  return Status::success();
}

}  // namespace

Status check_weights_dir(const Plan& plan, const std::string& dir) {
  const auto* weights = plan.def().weights();
  if (!weights) return Status::success();
  std::map<std::string, SafetensorsHeader> headers;
  for (const plan::WeightDef* w : *weights) {
    for (const plan::TensorRefDef* s : *w->sources()) {
      const std::string file = s->file()->str();
      auto it = headers.find(file);
      if (it == headers.end()) {
        auto h = read_safetensors_header(dir + "/" + file, file);
        if (!h)
          return Error::bad_input("weights directory " + dir + " does not match the plan " +
                                  plan.origin() + " (tensor '" + s->name()->str() + "'): " +
                                  h.error().message);
        it = headers.emplace(file, std::move(*h)).first;
      }
      const auto& tensors = it->second.tensors;
      const std::string name = s->name()->str();
      auto ti = std::lower_bound(tensors.begin(), tensors.end(), name,
                                 [](const TensorInfo& t, const std::string& n) { return t.name < n; });
      const std::string where = dir + "/" + file + ": tensor '" + name + "'";
      const std::string hint = " (the weights directory does not match the plan " + plan.origin() +
                               "; recompile the plan for this checkpoint)";
      if (ti == tensors.end() || ti->name != name)
        return Error::bad_input(where + " is missing" + hint);
      DType dt;
      const std::vector<int64_t> want_shape = shape_of(s->shape());
      if (!to_plan_dtype(ti->dtype, &dt) || dt != s->dtype() || ti->shape != want_shape)
        return Error::bad_input(where + " is " + std::string(mm::dtype_name(ti->dtype)) + " " +
                                vec_str(ti->shape) + ", the plan expects " + dtype_str(s->dtype()) +
                                " " + vec_str(want_shape) + hint);
      if (ti->offset != s->offset() || ti->nbytes != s->nbytes())
        return Error::bad_input(where + " occupies bytes [" + std::to_string(ti->offset) + ", +" +
                                std::to_string(ti->nbytes) + "), the plan expects [" +
                                std::to_string(s->offset()) + ", +" + std::to_string(s->nbytes()) +
                                ")" + hint);
    }
  }
  return Status::success();
}

Expected<std::unique_ptr<WeightLoader>> WeightLoader::open(const Plan& plan, const std::string& dir) {
  if (Status st = check_weights_dir(plan, dir); !st) return st.error();
  std::unique_ptr<WeightLoader> l(new WeightLoader());
  l->plan_ = &plan;
  l->shards_ = std::make_unique<Shards>(dir);
  const auto* weights = plan.def().weights();
  if (weights)
    for (const plan::WeightDef* w : *weights)
      for (const plan::TensorRefDef* s : *w->sources()) l->total_bytes_ += s->nbytes();
  return l;
}

WeightLoader::~WeightLoader() = default;

uint64_t WeightLoader::bytes_read() const { return shards_->bytes_read(); }

Status WeightLoader::load(size_t index, HostBuffer& out, const std::function<void()>& tick) {
  return load_one(*plan_->def().weights()->Get(index), *shards_, out, tmp_, tick);
}

Status WeightLoader::stream(size_t index, const Sink& sink) {
  const plan::WeightDef& w = *plan_->def().weights()->Get(index);
  const auto& srcs = *w.sources();
  const auto* shape = w.shape();
  const size_t r = shape->size();
  constexpr uint64_t kChunk = uint64_t{64} << 20;
  // Sources laid end to end (COPY, STACK_EXPERTS, CONCAT_N along the first dim): chunked reads.
  auto sequential = [&]() -> Status {
    uint64_t off = 0;
    for (const plan::TensorRefDef* s : srcs) {
      for (uint64_t done = 0; done < s->nbytes(); done += kChunk) {
        const uint64_t len = std::min(kChunk, s->nbytes() - done);
        tmp_.resize(len);
        if (Status st = shards_->read(s->file()->str(), s->offset() + done, len, tmp_.data()); !st) return st;
        if (Status st = sink(off + done, tmp_.data(), len); !st) return st;
      }
      off += s->nbytes();
    }
    return Status::success();
  };
  switch (w.transform()) {
    case WeightTransform::COPY:
    case WeightTransform::STACK_EXPERTS:
      return sequential();
    case WeightTransform::CONCAT_N: {
      if (w.concat_axis() == 0) return sequential();  // contiguous (plan's concat_axis)
      break;  // along the last dim: materialized whole below
    }
    case WeightTransform::STACK_EXPERTS_W13: {
      const size_t es = plan_dtype_size(w.dtype());
      const uint64_t out_row = static_cast<uint64_t>(shape->Get(r - 1)) * es, half = out_row / 2;
      const uint64_t expert_bytes = w.nbytes() / static_cast<uint64_t>(shape->Get(0));
      const uint64_t rows = out_row ? expert_bytes / out_row : 0;
      std::vector<uint8_t> block(expert_bytes);
      for (size_t i = 0; i < srcs.size(); ++i) {
        const plan::TensorRefDef& s = *srcs[i];
        tmp_.resize(s.nbytes());
        if (Status st = shards_->read(s.file()->str(), s.offset(), s.nbytes(), tmp_.data()); !st) return st;
        copy_columns(tmp_.data(), rows, half, block.data(), out_row, (i % 2) * half);
        if (i % 2 == 1)
          if (Status st = sink((i / 2) * expert_bytes, block.data(), expert_bytes); !st) return st;
      }
      return Status::success();
    }
    default:
      break;
  }
  HostBuffer whole;
  if (Status st = load(index, whole); !st) return st;
  return whole.size() ? sink(0, whole.data(), whole.size()) : Status::success();
}

Expected<HostWeights> load_host_weights(const Plan& plan, const std::string& dir, bool progress) {
  auto loader = WeightLoader::open(plan, dir);
  if (!loader) return loader.error();
  HostWeights hw;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  hw.buffers.resize(n);
  Progress bar(progress, (*loader)->total_source_bytes());
  auto tick = [&] { bar.update((*loader)->bytes_read()); };
  for (size_t i = 0; i < n; ++i) {
    if (Status st = (*loader)->load(i, hw.buffers[i], tick); !st) return st.error();
    hw.total_bytes += hw.buffers[i].size();
  }
  bar.update((*loader)->bytes_read(), true);
  return hw;
}

RandomWeightFiller::RandomWeightFiller(const Plan& plan, uint64_t seed) : plan_(&plan), seed_(seed) {}

void RandomWeightFiller::fill(size_t wi, uint64_t first, uint64_t count, void* out) const {
  const plan::WeightDef& w = *plan_->def().weights()->Get(wi);
  const uint64_t base = ref::splitmix64(seed_ ^ ref::splitmix64(wi + 1));
  const size_t es = plan_dtype_size(w.dtype());
  // The role and fan-in the compiler recorded decide the distribution.
  const plan::WeightRole role = w.role();
  const float inv_sqrt_k = 1.0f / std::sqrt(static_cast<float>(std::max<int64_t>(1, w.fan_in())));
  uint8_t* dst = static_cast<uint8_t*>(out);
  const DType dt = w.dtype();
  ref::parallel_for(static_cast<int64_t>(count), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      const uint64_t h = ref::splitmix64(base + first + static_cast<uint64_t>(j));
      const float u = static_cast<float>(h >> 40) / 16777216.0f;  // [0, 1)
      const float sym = 2.0f * u - 1.0f;                          // [-1, 1)
      float v = 0.0f;
      switch (role) {
        case plan::WeightRole::SCALES: {
          const float mag = (0.5f + u) * inv_sqrt_k / 4.6f;  // (q - 8) has std ~4.6
          v = ((h & 1) ? -mag : mag);
          break;
        }
        case plan::WeightRole::NORM: v = 1.0f + 0.1f * sym; break;
        case plan::WeightRole::DENSE: v = std::sqrt(3.0f) * inv_sqrt_k * sym; break;
        case plan::WeightRole::EMBEDDING: v = sym; break;
        case plan::WeightRole::BIAS: v = 0.05f * sym; break;
        default: v = 0.02f * sym; break;
      }
      uint8_t* d = dst + static_cast<uint64_t>(j) * es;
      switch (dt) {
        case DType::I32: case DType::U8: case DType::I64: case DType::FP8_E4M3:
          // Integer tensors (int4 nibbles): uniform random bits.
          std::memcpy(d, &h, es);
          break;
        case DType::F32: std::memcpy(d, &v, 4); break;
        case DType::F16: { uint16_t x = ref::f32_to_f16(v); std::memcpy(d, &x, 2); break; }
        case DType::BF16: { uint16_t x = ref::f32_to_bf16(v); std::memcpy(d, &x, 2); break; }
      }
    }
  });
}

Expected<HostWeights> random_host_weights(const Plan& plan, uint64_t seed) {
  HostWeights hw;
  const auto* weights = plan.def().weights();
  const size_t n = weights ? weights->size() : 0;
  hw.buffers.resize(n);
  RandomWeightFiller filler(plan, seed);
  for (size_t wi = 0; wi < n; ++wi) {
    const plan::WeightDef& w = *weights->Get(wi);
    if (w.transform() == WeightTransform::CHECK_ZEROS) continue;
    HostBuffer& buf = hw.buffers[wi];
    if (!buf.allocate(w.nbytes()))
      return Error::internal("out of host memory allocating " + std::to_string(w.nbytes()) +
                             " bytes for weight '" + w.name()->str() + "'");
    hw.total_bytes += w.nbytes();
    filler.fill(wi, 0, w.nbytes() / plan_dtype_size(w.dtype()), buf.data());
  }
  return hw;
}

}  // namespace mm::rt
