//===- Compile.cpp - `mmc compile` as a library call -----------------------===//
#include "compiler/pipeline/Compile.h"

#include "compiler/pipeline/Phases.h"
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
namespace {

const char *emitName(EmitKind kind) {
  switch (kind) {
  case EmitKind::Moe: return "moe";
  case EmitKind::MoeFused: return "moe-fused";
  case EmitKind::Exec: return "exec";
  case EmitKind::Cuda: return "cuda";
  case EmitKind::Plan: return "plan";
  }
  return "?";
}

} // namespace

int compileCommand(const CompileOptions &opts) {
  llvm::raw_ostream &err = llvm::errs();
  // The phases after moe-fused (exec lowering, CUDA emission, plan writing) are not part of
  // this build yet: say so instead of pretending.
  if (opts.emit != EmitKind::Moe && opts.emit != EmitKind::MoeFused) {
    err << "mmc compile: --emit=" << emitName(opts.emit) << " is not available in this build\n";
    return 3;
  }

  auto desc = mm::read_checkpoint(opts.modelDir);
  if (!desc) {
    err << "mmc compile: " << desc.error().message << "\n";
    return desc.error().exit_code();
  }

  // One thread: the passes are module-level and the build machine has two shared cores.
  MLIRContext context(MLIRContext::Threading::DISABLED);
  bool internal = false;  // diagnostics after a successful build are our bugs, not bad input
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
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
  if (opts.emit == EmitKind::MoeFused) {
    if (failed(fuseMoE(module->get())))
      return 3;
    if (opts.stats)
      printStats(module->get(), "moe-fused", err);
  }

  std::string errorMessage;
  auto output = openOutputFile(opts.output, &errorMessage);
  if (!output) {
    err << "mmc compile: cannot write '" << opts.output << "': " << errorMessage << "\n";
    return 1;
  }
  module->get()->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

} // namespace mm::compiler
