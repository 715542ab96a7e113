#include "runtime/src/cuda_executor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "runtime/src/host_buffer.h"
#include "runtime/src/weights.h"

namespace mm::rt {

namespace {

constexpr uint64_t kStagingBytes = uint64_t{64} << 20;

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  return buf;
}

// ceil((mul * dims[dim] + add) / div), or the constant add / div when dim == -1.
int64_t eval_dim(const plan::DimExprDef& e, const mm_kernel_args& args) {
  const int64_t v = e.dim() < 0 ? e.add() : e.mul() * args.dim[e.dim()] + e.add();
  return (v + e.div() - 1) / e.div();
}

}  // namespace

CudaExecutor::~CudaExecutor() {
  if (!device_) return;
  (void)device_->synchronize();
  for (Kernel& k : kernels_) (void)device_->unload(k);
  for (void* p : owned_) (void)device_->free(p);
}

Expected<std::unique_ptr<CudaExecutor>> CudaExecutor::create(std::shared_ptr<const Plan> plan,
                                                             const std::string& weights,
                                                             uint64_t seed, int64_t kv_blocks,
                                                             bool progress) {
  std::unique_ptr<CudaExecutor> ex(new CudaExecutor());
  auto dev = Device::open(0);
  if (!dev) return dev.error();
  ex->device_ = std::move(*dev);
  ex->plan_ = plan;
  ex->kv_blocks_ = kv_blocks;
  const DeviceInfo& info = ex->device_->info();
  if (Status st = check_plan_arch(*plan, info.cc_major, info.cc_minor); !st) return st.error();

  const auto& def = plan->def();
  const auto& m = *def.model();
  const auto& lim = *def.limits();

  // Memory budget before allocating anything: weights + arena + KV + inputs.
  uint64_t weight_bytes = 0;
  if (def.weights())
    for (const plan::WeightDef* w : *def.weights())
      if (w->transform() != plan::WeightTransform::CHECK_ZEROS) weight_bytes += w->nbytes();
  const bool fp8 = lim.kv_dtype() == plan::DType::FP8_E4M3;
  const uint64_t kv_rows = static_cast<uint64_t>(kv_blocks) * lim.kv_block_size() * m.num_kv_heads();
  const uint64_t kv_pool = kv_rows * m.head_dim() * (fp8 ? 1 : 2);
  const uint64_t kv_bytes = m.num_layers() * (2 * kv_pool + (fp8 ? 2 * kv_rows * 4 : 0));
  const uint64_t need = weight_bytes + plan->max_arena_bytes() + kv_bytes;
  auto free_bytes = ex->device_->free_memory();
  if (!free_bytes) return free_bytes.error();
  if (need > *free_bytes)
    return Error::internal("the plan needs " + mib(need) + " of device memory (weights " + mib(weight_bytes) +
                           ", arena " + mib(plan->max_arena_bytes()) + ", KV cache " + mib(kv_bytes) + ") but " +
                           info.name + " has " + mib(*free_bytes) + " free; lower --max-seq-len or use a "
                           "device with more memory");

  // Kernels.
  if (def.kernels())
    for (const plan::KernelDef* k : *def.kernels()) {
      KernelImage img;
      img.name = k->name()->str();
      if (k->binaries())
        for (const plan::BinaryDef* b : *k->binaries())
          img.cubins.emplace_back(b->arch()->str(),
                                  std::string_view(reinterpret_cast<const char*>(b->cubin()->data()), b->cubin()->size()));
      if (k->ptx()) img.ptx = k->ptx()->string_view();
      if (k->ptx_arch()) img.ptx_arch = k->ptx_arch()->str();
      auto kern = ex->device_->load(img);
      if (!kern) return kern.error();
      ex->kernels_.push_back(*kern);
      if (k->dynamic_shared_bytes() > 48 * 1024)
        if (Status st = ex->device_->set_dynamic_shared(ex->kernels_.back(), k->dynamic_shared_bytes()); !st)
          return st.error();
    }

  auto alloc = [&](uint64_t bytes, void** out) -> Status {
    auto p = ex->device_->alloc(std::max<uint64_t>(bytes, 256));
    if (!p) return p.error();
    ex->owned_.push_back(*p);
    *out = *p;
    return ex->device_->memset(*p, 0, std::max<uint64_t>(bytes, 256));
  };
  if (Status st = alloc(plan->max_arena_bytes(), &ex->arena_); !st) return st.error();
  ex->kv_.assign(static_cast<size_t>(m.num_layers()) * 4, nullptr);
  for (int64_t layer = 0; layer < m.num_layers(); ++layer)
    for (int which = 0; which < 4; ++which) {
      if (which >= 2 && !fp8) continue;
      if (Status st = alloc(which < 2 ? kv_pool : kv_rows * 4, &ex->kv_[layer * 4 + which]); !st) return st.error();
    }
  // Program inputs at the plan's limits (docs/kernels.md section 2).
  int64_t max_t = 1;
  for (const plan::ProgramDef* p : *def.programs()) max_t = std::max<int64_t>(max_t, p->max_tokens());
  const int64_t max_r = lim.max_batch();
  const uint64_t sizes[11] = {
      static_cast<uint64_t>(max_t) * 4, static_cast<uint64_t>(max_t) * 4, static_cast<uint64_t>(max_t) * 4,
      static_cast<uint64_t>(lim.max_batch() * plan->max_blocks_per_seq()) * 4,
      static_cast<uint64_t>(max_r) * 4, static_cast<uint64_t>(max_r) * 4, static_cast<uint64_t>(max_r) * 4,
      static_cast<uint64_t>(max_r) * 4, static_cast<uint64_t>(max_r) * 8,
      static_cast<uint64_t>(max_r * m.vocab_size()) * 4, static_cast<uint64_t>(max_r) * 4};
  for (int i = 0; i < 11; ++i) {
    ex->input_bytes_[i] = sizes[i];
    if (Status st = alloc(sizes[i], &ex->inputs_[i]); !st) return st.error();
  }
  if (Status st = ex->load_weights(weights, seed, progress); !st) return st.error();
  return ex;
}

Status CudaExecutor::load_weights(const std::string& weights, uint64_t seed, bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto* defs = plan_->def().weights();
  const size_t n = defs ? defs->size() : 0;
  weights_.assign(n, nullptr);
  auto staging = device_->alloc_host(kStagingBytes);
  if (!staging) return staging.error();
  uint8_t* stage = static_cast<uint8_t*>(*staging);
  // Copies host bytes to the device through the pinned buffer (a plain pageable copy would pin
  // pages on the fly and be several times slower).
  auto upload = [&](void* dst, const uint8_t* src, uint64_t bytes) -> Status {
    for (uint64_t off = 0; off < bytes; off += kStagingBytes) {
      const uint64_t len = std::min(kStagingBytes, bytes - off);
      std::memcpy(stage, src + off, len);
      if (Status st = device_->copy_to_device(static_cast<uint8_t*>(dst) + off, stage, len); !st) return st;
    }
    return Status::success();
  };
  std::unique_ptr<WeightLoader> loader;
  std::unique_ptr<RandomWeightFiller> filler;
  if (weights == "random") {
    filler = std::make_unique<RandomWeightFiller>(*plan_, seed);
  } else {
    auto l = WeightLoader::open(*plan_, weights);
    if (!l) {
      (void)device_->free_host(stage);
      return l.error();
    }
    loader = std::move(*l);
  }
  Status result = Status::success();
  for (size_t i = 0; i < n && result; ++i) {
    const plan::WeightDef& w = *defs->Get(i);
    if (w.transform() != plan::WeightTransform::CHECK_ZEROS) {
      auto p = device_->alloc(std::max<uint64_t>(w.nbytes(), 256));
      if (!p) { result = p.error(); break; }
      owned_.push_back(*p);
      weights_[i] = *p;
    }
    if (filler) {
      if (!weights_[i]) continue;
      const size_t es = plan_dtype_size(w.dtype());
      for (uint64_t off = 0; off < w.nbytes() && result; off += kStagingBytes) {
        const uint64_t len = std::min(kStagingBytes, w.nbytes() - off);
        filler->fill(i, off / es, len / es, stage);
        result = device_->copy_to_device(static_cast<uint8_t*>(weights_[i]) + off, stage, len);
      }
    } else {
      uint8_t* dst = static_cast<uint8_t*>(weights_[i]);
      result = loader->stream(i, [&](uint64_t off, const uint8_t* data, uint64_t len) -> Status {
        if (!dst) return Status::success();  // CHECK_ZEROS: verified only
        stats_.weight_bytes += len;
        return upload(dst + off, data, len);
      });
      if (progress) {
        std::fprintf(stderr, "\rloading weights: %.2f / %.2f GiB   ", loader->bytes_read() / 1073741824.0,
                     loader->total_source_bytes() / 1073741824.0);
        std::fflush(stderr);
      }
    }
    if (filler && weights_[i]) stats_.weight_bytes += w.nbytes();
  }
  if (progress && loader) std::fprintf(stderr, "\n");
  (void)device_->free_host(stage);
  stats_.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

Status CudaExecutor::run(const std::string& program, const CallDims& dims, const CallIo& io) {
  const auto& def = plan_->def();
  const plan::ProgramDef& prog = plan_->program(program);
  const int64_t V = def.model()->vocab_size();
  const void* host_in[9] = {io.tokens, io.positions, io.seq_slots, io.block_tables, io.logit_rows,
                            io.temperature, io.top_k, io.top_p, io.seed};
  const uint64_t in_bytes[9] = {static_cast<uint64_t>(dims.T) * 4, static_cast<uint64_t>(dims.T) * 4,
                                static_cast<uint64_t>(dims.T) * 4, input_bytes_[3],
                                static_cast<uint64_t>(dims.R) * 4, static_cast<uint64_t>(dims.R) * 4,
                                static_cast<uint64_t>(dims.R) * 4, static_cast<uint64_t>(dims.R) * 4,
                                static_cast<uint64_t>(dims.R) * 8};
  for (int i = 0; i < 9; ++i)
    if (Status st = device_->copy_to_device_async(inputs_[i], host_in[i], in_bytes[i]); !st) return st;
  mm_kernel_args args{};
  args.dim[MM_DIM_T] = dims.T;
  args.dim[MM_DIM_R] = dims.R;
  args.dim[MM_DIM_S] = dims.S;
  args.dim[MM_DIM_CTX] = dims.CTX;
  args.dim[MM_DIM_STEP] = dims.STEP;
  if (prog.launches())
    for (const plan::LaunchDef* l : *prog.launches()) {
      for (int i = 0; i < MM_MAX_PTRS; ++i) args.ptr[i] = nullptr;
      const auto& ops = *l->operands();
      for (size_t i = 0; i < ops.size(); ++i) {
        const plan::OperandDef& o = *ops[i];
        switch (o.kind()) {
          case plan::OperandKind::ARENA: args.ptr[i] = static_cast<uint8_t*>(arena_) + o.offset(); break;
          case plan::OperandKind::WEIGHT: args.ptr[i] = weights_[o.index()]; break;
          case plan::OperandKind::INPUT: args.ptr[i] = inputs_[static_cast<int>(o.slot())]; break;
          case plan::OperandKind::KV:
            args.ptr[i] = kv_[o.index() * 4 + (static_cast<int>(o.slot()) - static_cast<int>(plan::InputSlot::KV_K))];
            break;
          case plan::OperandKind::NONE: break;
        }
      }
      const plan::KernelDef& k = *def.kernels()->Get(l->kernel());
      Dim3 grid, block;
      unsigned* g[3] = {&grid.x, &grid.y, &grid.z};
      bool empty = false;
      if (l->grid())
        for (size_t d = 0; d < l->grid()->size(); ++d) {
          const int64_t v = eval_dim(*l->grid()->Get(d), args);
          if (v <= 0) empty = true;
          *g[d] = static_cast<unsigned>(std::max<int64_t>(v, 1));
        }
      if (empty) continue;  // nothing to do at these dims (e.g. no rows)
      unsigned* bl[3] = {&block.x, &block.y, &block.z};
      if (k.block_dims())
        for (size_t d = 0; d < std::min<size_t>(3, k.block_dims()->size()); ++d)
          *bl[d] = static_cast<unsigned>(std::max(1, k.block_dims()->Get(d)));
      if (Status st = device_->launch(kernels_[l->kernel()], grid, block, k.dynamic_shared_bytes(), args); !st)
        return Error::internal(st.error().message + " (program '" + program + "', launch " +
                               (l->note() ? l->note()->str() : std::string()) + ")");
    }
  if (io.logits)
    if (Status st = device_->copy_to_host_async(io.logits, inputs_[9], static_cast<uint64_t>(dims.R * V) * 4); !st)
      return st;
  if (io.sampled)
    if (Status st = device_->copy_to_host_async(io.sampled, inputs_[10], static_cast<uint64_t>(dims.R) * 4); !st)
      return st;
  return device_->synchronize();
}

}  // namespace mm::rt
