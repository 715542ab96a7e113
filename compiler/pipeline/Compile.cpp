//===- Compile.cpp - `mmc compile` as a library call -----------------------===//
#include "compiler/pipeline/Compile.h"

#include "compiler/pipeline/Phases.h"
#include "compiler/pipeline/Backend.h"
#include "codegen/nvrtc/nvrtc_compiler.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Support/FileUtilities.h"
#include "models/minimax_m2/Builder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace mm::compiler {
int compileCommand(const CompileOptions &opts) {
  llvm::raw_ostream &err = llvm::errs();
  if (opts.tp > 1 && opts.ep > 1 && opts.ep != opts.tp) {
    // One rank layout (docs/parallel.md): expert parallelism reuses the tensor-parallel ranks.
    err << "mmc compile: --ep " << opts.ep << " with --tp " << opts.tp
        << ": the experts split over the tensor-parallel ranks, so --ep must be 1 or equal --tp\n";
    return 2;
  }
  auto desc = mm::read_checkpoint(opts.modelDir);
  if (!desc) {
    err << "mmc compile: " << desc.error().message << "\n";
    return desc.error().exit_code();
  }
  if (opts.tp > 1) {
    // Attention splits by heads (a rank owns whole kv heads and the q heads that share them),
    // and o_proj by rows in whole quantization groups (docs/parallel.md).
    const auto &hp = desc->hp;
    const int64_t group = desc->quant.group_size;
    const std::string cfg = opts.modelDir + "/config.json";
    if (hp.num_kv_heads % opts.tp != 0 || hp.num_heads % opts.tp != 0) {
      err << "mmc compile: --tp " << opts.tp << " must divide the attention heads of " << cfg
          << " (num_attention_heads " << hp.num_heads << ", num_key_value_heads "
          << hp.num_kv_heads << ")\n";
      return 1;
    }
    if ((hp.num_heads / opts.tp * hp.head_dim) % group != 0) {
      err << "mmc compile: --tp " << opts.tp << ": each rank's o_proj rows ("
          << hp.num_heads / opts.tp << " heads x head_dim " << hp.head_dim
          << ") must be whole quantization groups of " << group << " (" << cfg << ")\n";
      return 1;
    }
  }
  if (opts.ep > 1) {
    // Experts split by id in equal ranges over the ranks (docs/parallel.md); with --tp they are
    // the same ranks (a different --ep was refused above, exit 2).
    const std::string cfg = opts.modelDir + "/config.json";
    if (desc->hp.num_experts % opts.ep != 0) {
      err << "mmc compile: --ep " << opts.ep << " must divide the number of experts of " << cfg
          << " (num_local_experts " << desc->hp.num_experts << ")\n";
      return 1;
    }
  }
  if (opts.emit == EmitKind::Plan || opts.emit == EmitKind::Cuda) {
    for (const std::string &t : opts.targets)
      if (codegen::parse_sm(t) < 0) {
        err << "mmc compile: --target '" << t << "' is not an arch like sm_90 or sm_121\n";
        return 2;
      }
    if (opts.targets.empty()) {
      err << "mmc compile: --target names no arch\n";
      return 2;
    }
  }

  // One thread: the passes are module-level and the build machine has two shared cores.
  MLIRContext context(MLIRContext::Threading::DISABLED);
  bool internal = false;  // diagnostics after a successful build are our bugs, not bad input
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Remark) {
      err << "mmc compile: " << diag << "\n";
      return success();
    }
    err << "mmc compile: " << (internal ? "internal error: " : "") << diag.getLocation() << ": "
        << diag << "\n";
    for (Diagnostic &note : diag.getNotes())
      err << "  note: " << note.getLocation() << ": " << note << "\n";
    return success();
  });

  minimax_m2::BuildOptions build;
  build.kvCacheDtype = opts.kvCacheDtype;
  auto module = minimax_m2::buildMoEModule(context, *desc, build);
  if (failed(module))
    return 1;
  internal = true;
  if (failed(verify(module->get())))
    return 3;
  if (opts.stats)
    printStats(module->get(), "moe", err);

  OwningOpRef<ModuleOp> printed;
  ModuleOp result = module->get();
  std::vector<uint8_t> planBytes;
  std::string cuda;
  if (opts.emit != EmitKind::Moe) {
    if (failed(fuseMoE(module->get())))
      return 3;
    if (opts.stats)
      printStats(module->get(), "moe-fused", err);
  }
  if (opts.emit == EmitKind::Exec || opts.emit == EmitKind::Cuda || opts.emit == EmitKind::Plan) {
    auto exec = lowerToExec(module->get(), opts);
    if (failed(exec))
      return 3;
    if (opts.stats)
      printExecStats(exec->get(), err);
    printed = std::move(*exec);
    result = printed.get();
  }
  if (opts.emit == EmitKind::Cuda) {
    llvm::raw_string_ostream os(cuda);
    if (failed(emitCuda(result, os)))
      return 3;
  }
  if (opts.emit == EmitKind::Plan) {
    auto kernels = compileKernels(result, opts.targets, opts.kernelCache, opts.stats ? &err : nullptr);
    if (failed(kernels))
      return 3;
    auto plan = writePlan(result, *desc, planLimits(opts), opts.targets, *kernels);
    if (failed(plan))
      return 3;
    planBytes = std::move(*plan);
    if (opts.stats)
      err << "plan: " << planBytes.size() << " bytes, " << kernels->size() << " kernels x "
          << opts.targets.size() << " archs\n";
  }

  std::string errorMessage;
  auto output = openOutputFile(opts.output, &errorMessage);
  if (!output) {
    err << "mmc compile: cannot write '" << opts.output << "': " << errorMessage << "\n";
    return 1;
  }
  if (opts.emit == EmitKind::Plan)
    output->os().write(reinterpret_cast<const char *>(planBytes.data()), planBytes.size());
  else if (opts.emit == EmitKind::Cuda)
    output->os() << cuda;
  else
    result->print(output->os());
  if (opts.emit != EmitKind::Plan && opts.emit != EmitKind::Cuda)
    output->os() << "\n";
  output->keep();
  return 0;
}

} // namespace mm::compiler
