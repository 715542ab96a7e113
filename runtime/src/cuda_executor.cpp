#include "runtime/src/cuda_executor.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "codegen/reference/reference.h"

namespace mm::rt {

namespace {

using plan::InputSlot;
using plan::OperandKind;

constexpr uint64_t kAlign = 256;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr uint64_t kStepMul = 0x9E3779B97F4A7C15ull;  // SAMPLE: splitmix64(STEP * kStepMul + row)
constexpr int kSlots = kInputSlots;

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
std::string gib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GiB", bytes / kGiB);
  return b;
}
std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / kMiB);
  return b;
}

}  // namespace

void CallStats::add(const CallTiming& t) {
  ++calls;
  tokens += t.tokens;
  gpu_ms += t.gpu_ms;
  wall_ms += t.wall_ms;
}

Expected<std::unique_ptr<CudaExecutor>> CudaExecutor::create(std::shared_ptr<const Plan> plan,
                                                             const CudaOptions& opts) {
  // A tensor-parallel plan needs NCCL between the GPUs, which this backend does not have yet
  // (docs/parallel.md); the host backend runs it.
  if (plan->ranks() > 1)
    return Error::bad_input("plan is sharded tp=" + std::to_string(plan->tp()) + " ep=" +
                            std::to_string(plan->ep()) +
                            "; the cuda backend runs unsharded plans only for now (run it with "
                            "--device host, or compile without --tp and --ep)");
  std::unique_ptr<CudaExecutor> ex(new CudaExecutor());
  ex->plan_ = std::move(plan);
  if (Status st = ex->init(opts); !st) return st.error();
  return ex;
}

Expected<std::unique_ptr<Executor>> make_cuda_executor(std::shared_ptr<const Plan> plan, const CudaOptions& opts) {
  auto ex = CudaExecutor::create(std::move(plan), opts);
  if (!ex) return ex.error();
  return std::unique_ptr<Executor>(std::move(*ex));
}

CudaExecutor::~CudaExecutor() { (void)free_all(); }

Status CudaExecutor::free_all() {
  if (!dev_) return Status::success();
  (void)dev_->synchronize();
  for (auto& [bucket, g] : graphs_) (void)dev_->destroy_graph(g);
  graphs_.clear();
  if (ev_start_) sym_->cuEventDestroy_v2(ev_start_);
  if (ev_end_) sym_->cuEventDestroy_v2(ev_end_);
  ev_start_ = ev_end_ = nullptr;
  for (void** p : {&weights_, &arena_, &io_dev_, &kv_mem_}) {
    (void)dev_->free(*p);
    *p = nullptr;
  }
  (void)dev_->free_host(io_host_);
  io_host_ = nullptr;
  for (Kernel& k : kernels_) (void)dev_->unload(k);
  kernels_.clear();
  return Status::success();
}

// Creation in steps: the options against the plan, the device and its kernel modules, the memory
// plan (KV blocks from what is free), the allocations, the weights, the launch table.
Status CudaExecutor::init(const CudaOptions& opts) {
  if (Status st = check_options(opts); !st) return st;
  if (Status st = open_device(opts); !st) return st;
  if (Status st = load_modules(); !st) return st;
  if (Status st = plan_memory(opts); !st) return st;
  if (Status st = allocate(); !st) return st;
  if (Status st = load_weights(opts); !st) return st;
  return build_launches();
}

Status CudaExecutor::check_options(const CudaOptions& opts) {
  const Plan& plan = *plan_;
  const auto& def = plan.def();
  const auto& m = *def.model();
  const auto& lim = *def.limits();
  max_batch_ = lim.max_batch();
  max_blocks_ = plan.max_blocks_per_seq();
  vocab_ = m.vocab_size();
  if (opts.max_seqs <= 0 || opts.max_seqs > max_batch_)
    return Error::bad_input("max sequences " + std::to_string(opts.max_seqs) + " is outside the plan's max_batch [1, " +
                            std::to_string(max_batch_) + "] (" + plan.origin() + ")");
  if (opts.max_seq_len < 0) return Error::usage("--max-seq-len must be positive");
  if (opts.max_seq_len > lim.max_seq_len())
    return Error::bad_input("--max-seq-len " + std::to_string(opts.max_seq_len) + " exceeds the plan's limit " +
                            std::to_string(lim.max_seq_len()) + " (recompile with mmc compile --max-seq-len)");
  if (!(opts.gpu_memory_utilization > 0.0 && opts.gpu_memory_utilization <= 1.0))
    return Error::usage("--gpu-memory-utilization must be in (0, 1], got " + std::to_string(opts.gpu_memory_utilization));
  if (!opts.host_weights && opts.weights.empty()) return Error::usage("--weights DIR|random is required");
  max_seqs_ = opts.max_seqs;
  use_graphs_ = opts.cuda_graphs;
  const char* pdl_env = std::getenv("MM_CUDA_PDL");
  use_pdl_ = opts.pdl && !(pdl_env && std::string(pdl_env) == "0");
  const plan::ProgramDef& prefill = plan.program("prefill");
  const plan::ProgramDef& decode = plan.program("decode");
  decode_max_ = std::min<int64_t>(max_batch_, decode.max_tokens());
  max_tokens_ = std::max<int64_t>({prefill.max_tokens(), decode.max_tokens(), 1});
  max_rows_ = std::max<int64_t>(1, decode_max_);
  for (int64_t b = 1; b < decode_max_; b *= 2) buckets_.push_back(b);
  if (decode_max_ >= 1) buckets_.push_back(decode_max_);
  return Status::success();
}

Status CudaExecutor::open_device(const CudaOptions& opts) {
  auto dev = Device::open(opts.device);
  if (!dev) return dev.error();
  dev_ = std::move(*dev);
  auto sym = cu::symbols();
  if (!sym) return sym.error();
  sym_ = *sym;
  const DeviceInfo& info = dev_->info();
  if (Status st = check_plan_arch(*plan_, info.cc_major, info.cc_minor); !st) return st;
  if (info.cc_major < 9) use_pdl_ = false;   // griddepcontrol and the launch attribute are sm_90+
  return Status::success();
}

Status CudaExecutor::load_modules() {
  const auto& def = plan_->def();
  const DeviceInfo& info = dev_->info();
  const size_t nk = def.kernels() ? def.kernels()->size() : 0;
  for (size_t i = 0; i < nk; ++i) {
    const plan::KernelDef& k = *def.kernels()->Get(i);
    KernelImage img;
    img.name = k.name()->str();
    if (k.binaries())
      for (const plan::BinaryDef* b : *k.binaries())
        if (b->cubin())
          img.cubins.emplace_back(b->arch()->str(),
                                  std::string_view(reinterpret_cast<const char*>(b->cubin()->data()), b->cubin()->size()));
    if (k.ptx()) img.ptx = k.ptx()->string_view();
    if (k.ptx_arch()) img.ptx_arch = k.ptx_arch()->str();
    auto kernel = dev_->load(img);
    if (!kernel) {
      Error e = kernel.error();
      if (e.message.find("OUT_OF_MEMORY") != std::string::npos) {
        auto now = dev_->free_memory();
        e = Error::bad_input("out of device memory on " + info.name + " loading kernel " + img.name + " (" +
                             (now ? gib(*now) : std::string("unknown")) + " free): " + e.message);
      }
      return e;
    }
    kernels_.push_back(*kernel);
    const int smem = k.dynamic_shared_bytes();
    if (smem > info.max_shared_optin)
      return Error::bad_input("kernel " + img.name + " asks for " + std::to_string(smem) +
                              " bytes of dynamic shared memory; " + info.name + " allows " +
                              std::to_string(info.max_shared_optin));
    if (smem > 48 * 1024)
      if (Status st = dev_->set_dynamic_shared(kernels_.back(), smem); !st) return st;
  }
  return Status::success();
}

Status CudaExecutor::plan_memory(const CudaOptions& opts) {
  const Plan& plan = *plan_;
  const auto& lim = *plan.def().limits();
  const DeviceInfo& info = dev_->info();
  layout_ = weight_layout(plan);
  weights_bytes_ = layout_.total_bytes;
  arena_bytes_ = plan.max_arena_bytes();
  kv_ = kv_layout(plan.def());
  const int64_t layers = kv_.layers;
  const uint64_t per_block = kv_.bytes_per_block();  // all layers, all pools
  // Runtime inputs/outputs (docs/kernels.md section 2) at fixed addresses; block_tables has one
  // row more than the plan's max_batch: the dummy sequence that pads decode buckets.
  std::array<uint64_t, kSlots> slot_bytes{};
  const uint64_t T = static_cast<uint64_t>(max_tokens_), R = static_cast<uint64_t>(max_rows_);
  slot_bytes[static_cast<int>(InputSlot::TOKENS)] = 4 * T;
  slot_bytes[static_cast<int>(InputSlot::POSITIONS)] = 4 * T;
  slot_bytes[static_cast<int>(InputSlot::SEQ_SLOTS)] = 4 * T;
  slot_bytes[static_cast<int>(InputSlot::BLOCK_TABLES)] = 4 * static_cast<uint64_t>((max_batch_ + 1) * max_blocks_);
  slot_bytes[static_cast<int>(InputSlot::LOGIT_ROWS)] = 4 * R;
  slot_bytes[static_cast<int>(InputSlot::TEMPERATURE)] = 4 * R;
  slot_bytes[static_cast<int>(InputSlot::TOP_K)] = 4 * R;
  slot_bytes[static_cast<int>(InputSlot::TOP_P)] = 4 * R;
  slot_bytes[static_cast<int>(InputSlot::SEED)] = 8 * R;
  slot_bytes[static_cast<int>(InputSlot::LOGITS)] = 4 * R * static_cast<uint64_t>(vocab_);
  slot_bytes[static_cast<int>(InputSlot::SAMPLED)] = 4 * R;
  io_bytes_ = 0;
  for (int s = 0; s < kSlots; ++s) {
    slot_off_[s] = io_bytes_;
    io_bytes_ += align_up(slot_bytes[s]);
  }

  auto free_mem = dev_->free_memory();
  if (!free_mem) return free_mem.error();
  const uint64_t free_b = *free_mem;
  // Left free for what the driver allocates behind our back: graph instantiation, kernel
  // local-memory stacks, module images.
  const uint64_t reserve = std::max<uint64_t>(uint64_t{256} << 20, info.total_bytes / 100);
  const uint64_t fixed = weights_bytes_ + arena_bytes_ + io_bytes_;
  const std::string where = info.name + " (GPU " + std::to_string(info.ordinal) + ")";
  auto oom = [&](uint64_t kv, const std::string& kv_what, const std::string& hint) {
    return Error::bad_input("out of device memory on " + where + ": the plan " + plan.origin() + " needs weights " +
                            gib(weights_bytes_) + " + activation arena " + mib(arena_bytes_) + " + inputs " +
                            mib(io_bytes_) + " + KV cache " + gib(kv) + " (" + kv_what + ") + " + mib(reserve) +
                            " driver reserve = " + gib(fixed + kv + reserve) + ", but only " + gib(free_b) +
                            " is free; " + hint);
  };
  const std::string fewer = fixed + reserve > free_b
                                ? "the weights alone do not fit: use a device with more memory or compile fewer layers"
                                : "lower --max-seq-len or the number of sequences";
  int64_t blocks = 0;
  if (opts.max_seq_len > 0) {
    blocks = kv_.blocks_for(max_seqs_, opts.max_seq_len);
    const uint64_t kv = static_cast<uint64_t>(blocks + 1) * per_block;
    const std::string what = std::to_string(blocks) + " blocks of " + std::to_string(lim.kv_block_size()) +
                             " tokens x " + std::to_string(layers) + " layers for --max-seq-len " +
                             std::to_string(opts.max_seq_len) + " x " + std::to_string(max_seqs_) + " sequences";
    if (fixed + kv + reserve > free_b) return oom(kv, what, fewer);
    max_seq_len_ = opts.max_seq_len;
  } else {
    const uint64_t one = static_cast<uint64_t>(max_seqs_ + 1) * per_block;  // one block per sequence
    const std::string what = "at least one block per sequence";
    if (fixed + one + reserve > free_b) return oom(one, what, fewer);
    const uint64_t left = free_b - fixed - reserve;
    const uint64_t budget = std::min<uint64_t>(left, static_cast<uint64_t>(opts.gpu_memory_utilization * (free_b - fixed)));
    blocks = static_cast<int64_t>(budget / per_block) - 1;
    blocks = std::min<int64_t>(blocks, max_seqs_ * max_blocks_);
    if (blocks < max_seqs_)
      return oom(one, what, "raise --gpu-memory-utilization (" + std::to_string(opts.gpu_memory_utilization) + ")");
    max_seq_len_ = std::min<int64_t>(lim.max_seq_len(), blocks / max_seqs_ * lim.kv_block_size());
  }
  if (blocks + 1 > std::numeric_limits<int32_t>::max())
    return Error::bad_input("the KV cache would hold " + std::to_string(blocks) + " blocks; block ids are 32-bit");
  kv_blocks_ = blocks;
  // One block more than the sequences use: the scratch block of the dummy sequence that pads
  // decode buckets.
  kv_pool_bytes_ = align_up(static_cast<uint64_t>(blocks + 1) * kv_.pool_bytes_per_block);
  kv_scale_bytes_ = align_up(static_cast<uint64_t>(blocks + 1) * kv_.scale_bytes_per_block);
  kv_bytes_ = static_cast<uint64_t>(layers) * (2 * kv_pool_bytes_ + 2 * kv_scale_bytes_);
  return Status::success();
}

Status CudaExecutor::allocate() {
  const auto& def = plan_->def();
  const DeviceInfo& info = dev_->info();
  const std::string where = info.name + " (GPU " + std::to_string(info.ordinal) + ")";
  const int64_t layers = kv_.layers;
  auto alloc = [&](uint64_t bytes, const std::string& what, void** out) -> Status {
    auto p = dev_->alloc(bytes);
    if (!p) {
      auto now = dev_->free_memory();
      return Error::bad_input("out of device memory on " + where + " allocating " + what + " (" + gib(bytes) +
                              ") with " + (now ? gib(*now) : std::string("an unknown amount")) +
                              " free: " + p.error().message);
    }
    *out = *p;
    return Status::success();
  };
  if (Status st = alloc(weights_bytes_, "the weights", &weights_); !st) return st;
  if (Status st = alloc(arena_bytes_, "the activation arena", &arena_); !st) return st;
  if (Status st = alloc(io_bytes_, "the runtime inputs/outputs", &io_dev_); !st) return st;
  if (Status st = alloc(kv_bytes_, "the KV cache (" + std::to_string(kv_blocks_) + " blocks x " + std::to_string(layers) + " layers)", &kv_mem_); !st)
    return st;
  auto host = dev_->alloc_host(io_bytes_);
  if (!host) return Error::internal("cannot allocate " + mib(io_bytes_) + " of pinned host memory for the inputs: " + host.error().message);
  io_host_ = static_cast<uint8_t*>(*host);
  std::memset(io_host_, 0, io_bytes_);
  for (int s = 0; s < kSlots; ++s) {
    slot_dev_[s] = static_cast<uint8_t*>(io_dev_) + slot_off_[s];
    slot_host_[s] = io_host_ + slot_off_[s];
  }
  weight_ptrs_.assign(layout_.offsets.size(), nullptr);
  for (size_t i = 0; i < layout_.offsets.size(); ++i)
    if (def.weights()->Get(i)->transform() != plan::WeightTransform::CHECK_ZEROS)
      weight_ptrs_[i] = static_cast<uint8_t*>(weights_) + layout_.offsets[i];
  kv_ptrs_.assign(static_cast<size_t>(layers) * 4, nullptr);
  uint64_t off = 0;
  for (int64_t l = 0; l < layers; ++l)
    for (int which = 0; which < 4; ++which) {
      const uint64_t bytes = which < 2 ? kv_pool_bytes_ : kv_scale_bytes_;
      if (bytes) kv_ptrs_[l * 4 + which] = static_cast<uint8_t*>(kv_mem_) + off;
      off += bytes;
    }
  // Zeroed once so that nothing ever reads uninitialized bits (rows past a sequence's end are
  // masked by the kernels, but an fp8 NaN pattern there would still be a trap for a new kernel).
  if (Status st = dev_->memset_async(kv_mem_, 0, kv_bytes_); !st) return st;
  if (Status st = dev_->memset_async(io_dev_, 0, io_bytes_); !st) return st;
  // The dummy sequence's block-table row: every entry is the scratch block.
  int32_t* dummy = reinterpret_cast<int32_t*>(slot_host_[static_cast<int>(InputSlot::BLOCK_TABLES)]) + max_batch_ * max_blocks_;
  std::fill(dummy, dummy + max_blocks_, static_cast<int32_t>(kv_blocks_));
  if (Status st = dev_->copy_to_device_async(static_cast<int32_t*>(input(InputSlot::BLOCK_TABLES)) + max_batch_ * max_blocks_,
                                             dummy, 4 * static_cast<uint64_t>(max_blocks_));
      !st)
    return st;
  if (Status st = dev_->synchronize(); !st) return st;
  MM_CU(sym_, cuEventCreate, &ev_start_, cu::CU_EVENT_DEFAULT);
  MM_CU(sym_, cuEventCreate, &ev_end_, cu::CU_EVENT_DEFAULT);
  return Status::success();
}

Status CudaExecutor::load_weights(const CudaOptions& opts) {
  const Plan& plan = *plan_;
  if (opts.host_weights) {
    if (Status st = upload_host_weights(*dev_, plan, *opts.host_weights, weight_ptrs_, &load_); !st) return st;
  } else if (opts.weights == "random") {
    if (Status st = random_weights_to_device(*dev_, plan, opts.seed, weight_ptrs_, &load_); !st) return st;
  } else {
    auto sink = make_device_sink(*dev_);
    if (!sink) return sink.error();
    LoadOptions lo = opts.load;
    lo.progress = opts.progress;
    if (Status st = stream_weights(plan, opts.weights, weight_ptrs_, **sink, lo, &load_); !st) return st;
  }
  return Status::success();
}

Status CudaExecutor::build_launches() {
  const auto& def = plan_->def();
  // MM_CUDA_SKIP_KINDS=KIND,KIND: leaves the decode program's launches of those kernel kinds out.
  // A timing ablation only (what a step costs without them); the results are wrong.
  const char* skip_env = std::getenv("MM_CUDA_SKIP_KINDS");
  const std::string skip = skip_env ? "," + std::string(skip_env) + "," : "";
  OperandTable table;
  table.arena = arena_;
  table.weights = weight_ptrs_;
  for (int s = 0; s < kSlots; ++s) table.inputs[s] = slot_dev_[s];
  table.kv = kv_ptrs_;
  for (const plan::ProgramDef* prog : *def.programs()) {
    std::vector<Launch>& out = programs_[prog->name()->str()];
    if (!prog->launches()) continue;
    const bool decode = prog->name()->str() == "decode";
    for (const plan::LaunchDef* l : *prog->launches()) {
      const plan::KernelDef& k = *def.kernels()->Get(l->kernel());
      if (decode && !skip.empty() && !out.empty() &&
          skip.find("," + std::string(plan::EnumNameKernelKind(k.kind())) + ",") != std::string::npos)
        continue;
      Launch L;
      L.def = l;
      L.kernel = l->kernel();
      L.note = l->note() ? l->note()->str() : k.name()->str();
      L.pdl = use_pdl_ && l->pdl();
      const auto* bd = k.block_dims();
      unsigned dims[3] = {1, 1, 1};
      for (size_t i = 0; bd && i < std::min<size_t>(3, bd->size()); ++i) {
        if (bd->Get(i) <= 0) return Error::bad_input("kernel " + k.name()->str() + " has block dimension " + std::to_string(bd->Get(i)));
        dims[i] = static_cast<unsigned>(bd->Get(i));
      }
      if (static_cast<uint64_t>(dims[0]) * dims[1] * dims[2] > 1024)
        return Error::bad_input("kernel " + k.name()->str() + " has more than 1024 threads per block");
      L.block = Dim3{dims[0], dims[1], dims[2]};
      L.smem = k.dynamic_shared_bytes();
      bind_launch(*l, table, &L.args);
      out.push_back(L);
    }
  }
  return Status::success();
}

Status CudaExecutor::launch_program(const std::vector<Launch>& launches, const int64_t* dims) {
  for (const Launch& L : launches) {
    mm_kernel_args args = L.args;
    for (int i = 0; i < MM_MAX_DIMS; ++i) args.dim[i] = dims[i];
    const std::array<int64_t, 3> g = launch_grid(*L.def, dims);
    if (g[0] > std::numeric_limits<int32_t>::max() || g[1] > 65535 || g[2] > 65535)
      return Error::internal("launch " + L.note + ": grid (" + std::to_string(g[0]) + ", " + std::to_string(g[1]) +
                             ", " + std::to_string(g[2]) + ") exceeds the device's limits");
    const Dim3 grid{static_cast<unsigned>(g[0]), static_cast<unsigned>(g[1]), static_cast<unsigned>(g[2])};
    if (Status st = dev_->launch(kernels_[L.kernel], grid, L.block, L.smem, args, L.pdl); !st) {
      Error e = st.error();
      e.message += " (launch " + L.note + ")";
      return e;
    }
  }
  return Status::success();
}

Expected<cu::CUgraphExec> CudaExecutor::graph_for(size_t bucket) {
  if (auto it = graphs_.find(bucket); it != graphs_.end()) return it->second;
  const int64_t B = buckets_[bucket];
  int64_t dims[MM_MAX_DIMS] = {0};
  dims[MM_DIM_T] = B;
  dims[MM_DIM_R] = B;
  dims[MM_DIM_S] = B;
  dims[MM_DIM_CTX] = plan_->def().limits()->max_seq_len();
  dims[MM_DIM_STEP] = 0;
  auto capture = [&]() -> Expected<cu::CUgraphExec> {
    if (Status st = dev_->begin_capture(); !st) return st.error();
    Status st = launch_program(programs_["decode"], dims);
    auto exec = dev_->end_capture();   // always ends the capture, so the stream stays usable
    if (!st) {
      if (exec) (void)dev_->destroy_graph(*exec);
      return st.error();
    }
    return exec;
  };
  auto exec = capture();
  if (!exec && use_pdl_) {
    // A driver that cannot capture programmatic launches into a graph: capture plain ones (the
    // kernels' waits are then no-ops) rather than fail the call.
    pdl_fallback_ = exec.error().message;
    use_pdl_ = false;
    for (auto& [name, launches] : programs_)
      for (Launch& L : launches) L.pdl = false;
    exec = capture();
  }
  if (!exec) return exec.error();
  graphs_[bucket] = *exec;
  return *exec;
}

Status CudaExecutor::run(const std::string& program, const CallDims& dims, const CallIo& io) {
  const auto t0 = std::chrono::steady_clock::now();
  auto pit = programs_.find(program);
  if (pit == programs_.end()) return Error::usage("the plan has no program '" + program + "'");
  const bool decode = program == "decode";
  const int64_t T = dims.T, R = dims.R;
  const int64_t limit = decode ? decode_max_ : plan_->program(program).max_tokens();
  if (T <= 0 || T > limit || T > max_tokens_)
    return Error::bad_input(program + " call with " + std::to_string(T) + " tokens; the plan takes 1.." + std::to_string(limit));
  if (R <= 0 || R > max_rows_ || R > T)
    return Error::bad_input(program + " call with " + std::to_string(R) + " logit rows for " + std::to_string(T) + " tokens");

  // Decode through a graph: the smallest bucket holding the batch.
  const bool graph = decode && use_graphs_ && R == T;
  size_t bucket = 0;
  int64_t Tp = T, Rp = R;
  if (graph) {
    while (buckets_[bucket] < T) ++bucket;
    Tp = Rp = buckets_[bucket];
  }

  // Inputs into the pinned mirror; padded rows are the dummy sequence.
  auto host_i32 = [&](InputSlot s) { return reinterpret_cast<int32_t*>(slot_host_[static_cast<int>(s)]); };
  int32_t* tokens = host_i32(InputSlot::TOKENS);
  int32_t* positions = host_i32(InputSlot::POSITIONS);
  int32_t* seq_slots = host_i32(InputSlot::SEQ_SLOTS);
  int32_t* rows = host_i32(InputSlot::LOGIT_ROWS);
  int32_t* top_k = host_i32(InputSlot::TOP_K);
  float* temperature = reinterpret_cast<float*>(slot_host_[static_cast<int>(InputSlot::TEMPERATURE)]);
  float* top_p = reinterpret_cast<float*>(slot_host_[static_cast<int>(InputSlot::TOP_P)]);
  uint64_t* seed = reinterpret_cast<uint64_t*>(slot_host_[static_cast<int>(InputSlot::SEED)]);
  std::memcpy(tokens, io.tokens, 4 * T);
  std::memcpy(positions, io.positions, 4 * T);
  std::memcpy(seq_slots, io.seq_slots, 4 * T);
  std::memcpy(rows, io.logit_rows, 4 * R);
  std::memcpy(temperature, io.temperature, 4 * R);
  std::memcpy(top_k, io.top_k, 4 * R);
  std::memcpy(top_p, io.top_p, 4 * R);
  std::memcpy(seed, io.seed, 8 * R);
  for (int64_t t = T; t < Tp; ++t) {
    tokens[t] = 0;
    positions[t] = 0;
    seq_slots[t] = static_cast<int32_t>(max_batch_);
  }
  for (int64_t r = R; r < Rp; ++r) {
    rows[r] = static_cast<int32_t>(r);
    temperature[r] = 0.0f;
    top_k[r] = 0;
    top_p[r] = 1.0f;
    seed[r] = 0;
  }
  if (graph)  // the graph was captured with STEP = 0 (see the header)
    for (int64_t r = 0; r < R; ++r)
      seed[r] ^= ref::splitmix64(static_cast<uint64_t>(dims.STEP) * kStepMul + static_cast<uint64_t>(r)) ^
                 ref::splitmix64(static_cast<uint64_t>(r));
  // Block tables: only the rows of the sequences in this call are read by the kernels.
  int32_t lo = std::numeric_limits<int32_t>::max(), hi = -1;
  for (int64_t t = 0; t < T; ++t) {
    lo = std::min(lo, io.seq_slots[t]);
    hi = std::max(hi, io.seq_slots[t]);
  }
  if (lo < 0 || hi >= max_batch_)
    return Error::bad_input("sequence slot " + std::to_string(lo < 0 ? lo : hi) + " outside the plan's [0, " +
                            std::to_string(max_batch_) + ")");
  const uint64_t bt_off = static_cast<uint64_t>(lo) * max_blocks_;
  const uint64_t bt_n = static_cast<uint64_t>(hi - lo + 1) * max_blocks_;
  int32_t* bt_host = host_i32(InputSlot::BLOCK_TABLES) + bt_off;
  std::memcpy(bt_host, io.block_tables + bt_off, 4 * bt_n);

  cu::CUgraphExec exec = nullptr;
  if (graph) {
    auto g = graph_for(bucket);   // captured before this call's copies are queued
    if (!g) return g.error();
    exec = *g;
  }

  MM_CU(sym_, cuEventRecord, ev_start_, dev_->stream());
  auto up = [&](InputSlot s, uint64_t bytes) {
    return dev_->copy_to_device_async(slot_dev_[static_cast<int>(s)], slot_host_[static_cast<int>(s)], bytes);
  };
  for (auto [s, bytes] : {std::pair{InputSlot::TOKENS, 4 * Tp}, {InputSlot::POSITIONS, 4 * Tp},
                          {InputSlot::SEQ_SLOTS, 4 * Tp}, {InputSlot::LOGIT_ROWS, 4 * Rp},
                          {InputSlot::TEMPERATURE, 4 * Rp}, {InputSlot::TOP_K, 4 * Rp},
                          {InputSlot::TOP_P, 4 * Rp}, {InputSlot::SEED, 8 * Rp}})
    if (Status st = up(s, static_cast<uint64_t>(bytes)); !st) return st;
  if (Status st = dev_->copy_to_device_async(static_cast<int32_t*>(input(InputSlot::BLOCK_TABLES)) + bt_off, bt_host, 4 * bt_n); !st)
    return st;

  if (graph) {
    if (Status st = dev_->launch_graph(exec); !st) return st;
  } else {
    int64_t d[MM_MAX_DIMS] = {0};
    d[MM_DIM_T] = T;
    d[MM_DIM_R] = R;
    d[MM_DIM_S] = dims.S;
    d[MM_DIM_CTX] = dims.CTX;
    d[MM_DIM_STEP] = dims.STEP;
    if (Status st = launch_program(pit->second, d); !st) return st;
  }

  uint8_t* logits_host = slot_host_[static_cast<int>(InputSlot::LOGITS)];
  uint8_t* sampled_host = slot_host_[static_cast<int>(InputSlot::SAMPLED)];
  const uint64_t logit_bytes = 4 * static_cast<uint64_t>(R) * static_cast<uint64_t>(vocab_);
  if (io.logits)
    if (Status st = dev_->copy_to_host_async(logits_host, input(InputSlot::LOGITS), logit_bytes); !st) return st;
  if (Status st = dev_->copy_to_host_async(sampled_host, input(InputSlot::SAMPLED), 4 * R); !st) return st;
  MM_CU(sym_, cuEventRecord, ev_end_, dev_->stream());
  if (Status st = dev_->synchronize(); !st) {
    Error e = st.error();
    e.message = program + " call failed on " + dev_->info().name + ": " + e.message;
    return e;
  }
  float ms = 0.0f;
  MM_CU(sym_, cuEventElapsedTime_v2, &ms, ev_start_, ev_end_);
  if (io.logits) std::memcpy(io.logits, logits_host, logit_bytes);
  if (io.sampled) std::memcpy(io.sampled, sampled_host, 4 * R);

  last_.gpu_ms = ms;
  last_.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  last_.tokens = T;
  last_.graph = graph;
  stats_[program].add(last_);
  return Status::success();
}

CallStats CudaExecutor::stats(const std::string& program) const {
  auto it = stats_.find(program);
  return it == stats_.end() ? CallStats{} : it->second;
}

std::string CudaExecutor::summary() const {
  const DeviceInfo& info = dev_->info();
  char line[512];
  std::snprintf(line, sizeof line,
                "cuda %s (%s): weights %.2f GiB (%s, %.2f s, peak RSS %.0f MiB), KV %.2f GiB (%lld blocks, "
                "max_seq_len %lld x %lld), arena %.1f MiB, decode graphs %s, programmatic launches %s",
                info.name.c_str(), info.arch().c_str(), weights_bytes_ / kGiB, load_.source.c_str(), load_.seconds,
                load_.peak_rss_kib / 1024.0, kv_bytes_ / kGiB, static_cast<long long>(kv_blocks_),
                static_cast<long long>(max_seq_len_), static_cast<long long>(max_seqs_), arena_bytes_ / kMiB,
                use_graphs_ ? "on" : "off", use_pdl_ ? "on" : "off");
  std::string out = line;
  if (!pdl_fallback_.empty()) out += " (graph capture refused them: " + pdl_fallback_ + ")";
  return out;
}

}  // namespace mm::rt
