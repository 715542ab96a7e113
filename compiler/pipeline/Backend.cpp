//===- Backend.cpp - the phases after moe-fused ----------------------------===//
#include "compiler/pipeline/Backend.h"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "llvm/Support/raw_ostream.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

#include "codegen/kernels/specialize.h"
#include "codegen/nvrtc/nvrtc_compiler.h"
#include "compiler/lowering/Lowering.h"
#include "compiler/lowering/MoEToExec.h"
#include "dialects/exec/ir/ExecOps.h"
#include "dialects/exec/transforms/Passes.h"

using namespace mlir;

namespace mm::compiler {

PlanLimits planLimits(const CompileOptions &opts) {
  PlanLimits limits;
  limits.maxSeqLen = opts.maxSeqLen;
  limits.maxBatch = opts.maxBatch;
  limits.maxPrefillTokens = std::min<int64_t>(opts.maxPrefillTokens, opts.maxSeqLen);
  limits.kvDtype = opts.kvCacheDtype;
  limits.kvBlockSize = 16;
  limits.tp = static_cast<int>(opts.tp);
  limits.ep = static_cast<int>(opts.ep);
  return limits;
}

FailureOr<OwningOpRef<ModuleOp>> lowerToExec(ModuleOp fused, const CompileOptions &opts) {
  PlanLimits limits = planLimits(opts);
  LoweringOptions lo;
  lo.maxBatch = limits.maxBatch;
  lo.maxPrefillTokens = limits.maxPrefillTokens;
  lo.maxSeqLen = limits.maxSeqLen;
  lo.kvBlockSize = limits.kvBlockSize;
  lo.prefillTileRows = opts.prefillTileRows;
  lo.qweightStrips = opts.qweightLayout != "rows";
  lo.tp = opts.tp;
  lo.ep = opts.ep;
  auto exec = lowerMoEToExec(fused, lo);
  if (failed(exec))
    return failure();
  PassManager pm(fused.getContext());
  exec::ExecPlanMemoryOptions memOpts;
  memOpts.report = opts.stats;
  pm.addPass(exec::createExecPlanMemory(memOpts));
  if (failed(pm.run(exec->get())) || failed(verify(exec->get())))
    return failure();
  return exec;
}

// The CUDA source of an exec kernel from the parameters the lowering's specializer recorded
// (specialization itself ran once, in the lowering).
// A collective (ALL_REDUCE) is run by the backend's transport, never compiled (docs/parallel.md).
static bool isCollective(exec::KernelOp k) {
  return kernels::is_collective(
      kernels::kind_info(static_cast<kernels::Kind>(static_cast<uint32_t>(k.getKind()))));
}

static FailureOr<kernels::KernelSource> sourceOf(exec::KernelOp k) {
  auto kind = static_cast<kernels::Kind>(static_cast<uint32_t>(k.getKind()));
  auto src = kernels::kernel_source(kind, lowering::toKernelParams(k.getParams()));
  if (!src.ok())
    return k.emitOpError() << src.error().message;
  return std::move(src).value();
}

LogicalResult emitCuda(ModuleOp exec, llvm::raw_ostream &os) {
  for (exec::KernelOp k : exec.getOps<exec::KernelOp>()) {
    if (isCollective(k)) {
      os << "// ===== collective @" << k.getSymName() << " ("
         << exec::stringifyKernelKind(k.getKind()) << "): no CUDA source\n\n";
      continue;
    }
    auto src = sourceOf(k);
    if (failed(src))
      return failure();
    os << "// ===== kernel @" << k.getSymName() << " (" << exec::stringifyKernelKind(k.getKind())
       << ") entry " << src->entry << "\n"
       << src->source << "\n";
  }
  return success();
}

FailureOr<llvm::StringMap<CompiledKernel>>
compileKernels(ModuleOp exec, const std::vector<std::string> &targets,
               const std::string &cacheDir, llvm::raw_ostream *stats) {
  struct Job {
    std::string symbol;
    kernels::KernelSource src;
  };
  std::vector<Job> jobs;
  for (exec::KernelOp k : exec.getOps<exec::KernelOp>()) {
    if (isCollective(k))
      continue;
    auto src = sourceOf(k);
    if (failed(src))
      return failure();
    jobs.push_back({k.getSymName().str(), std::move(*src)});
  }
  codegen::NvrtcOptions nvOpts;
  nvOpts.archs = targets;
  nvOpts.cache_dir = cacheDir;
  codegen::NvrtcCompiler compiler(nvOpts);
  std::vector<Expected<std::shared_ptr<const codegen::NvrtcResult>>> results(
      jobs.size(), Error::internal("not compiled"));
  // NVRTC is thread-safe; kernels compile independently (a 2-core build machine halves the wall
  // time of the 62-layer plan this way).
  std::atomic<size_t> next{0};
  unsigned threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i = next++; i < jobs.size(); i = next++)
        results[i] = compiler.compile(jobs[i].src.entry, jobs[i].src.source);
    });
  for (auto &t : pool)
    t.join();

  // A cache that cannot be written costs the next compile its speed, never this one its result.
  if (std::string warning = compiler.cache_warning(); !warning.empty())
    llvm::errs() << "mmc compile: warning: " << warning << " (kernels compiled without it)\n";
  if (stats)
    *stats << "kernels: " << compiler.cached() << " distinct sources x " << targets.size() << " archs: "
           << compiler.disk_hits() << " read from the kernel cache, " << compiler.nvrtc_runs()
           << " compiled by NVRTC (cache: " << (cacheDir.empty() ? std::string("off") : cacheDir) << ")\n";

  llvm::StringMap<CompiledKernel> out;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].ok())
      return emitError(exec.getLoc())
             << "NVRTC failed for kernel @" << jobs[i].symbol << ": " << results[i].error().message;
    const codegen::NvrtcResult &r = **results[i];
    CompiledKernel ck;
    ck.entry = jobs[i].src.entry;
    ck.ptx = r.ptx;
    ck.ptxArch = r.ptx_arch;
    ck.sourceHash = r.source_hash;
    for (const codegen::NvrtcBinary &b : r.binaries)
      ck.binaries.push_back({b.arch, b.cubin, b.registers, b.shared_bytes, b.local_bytes});
    out[jobs[i].symbol] = std::move(ck);
  }
  return out;
}

void printExecStats(ModuleOp exec, llvm::raw_ostream &os) {
  size_t kernels = 0, weights = 0;
  for (Operation &op : *exec.getBody()) {
    kernels += isa<exec::KernelOp>(op);
    weights += isa<exec::WeightOp>(op);
  }
  os << "exec: " << kernels << " kernel specializations, " << weights << " device weights\n";
  for (exec::ProgramOp prog : exec.getOps<exec::ProgramOp>()) {
    std::map<int64_t, size_t> perLayer, moePerLayer;
    size_t total = 0, buffers = 0;
    for (Operation &op : prog.getBody().front()) {
      if (isa<exec::BufferOp>(op)) {
        ++buffers;
        continue;
      }
      auto l = cast<exec::LaunchOp>(op);
      ++total;
      int64_t layer = l.getLayer() ? *l.getLayer() : -1;
      ++perLayer[layer];
      StringRef note = l.getNote() ? *l.getNote() : "";
      if (note.starts_with("route") || note.starts_with("router") || note.starts_with("moe_"))
        ++moePerLayer[layer];
    }
    size_t maxLayer = 0, maxMoe = 0;
    for (auto &[layer, n] : perLayer)
      if (layer >= 0)
        maxLayer = std::max(maxLayer, n);
    for (auto &[layer, n] : moePerLayer)
      if (layer >= 0)
        maxMoe = std::max(maxMoe, n);
    os << "exec @" << prog.getSymName() << ": " << total << " launches, " << maxLayer
       << " per layer (MoE block " << maxMoe << "), " << perLayer[-1] << " outside layers, "
       << buffers << " buffers, arena " << prog.getArenaBytes().value_or(0) << " bytes\n";
  }
}

} // namespace mm::compiler
