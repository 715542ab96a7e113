//===- Phases.cpp - the compile phases as MLIR-level functions ------------===//
#include "compiler/pipeline/Phases.h"

#include <map>

#include "dialects/moe/ir/MoEOps.h"
#include "dialects/moe/transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "models/minimax_m2/Builder.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace mm::compiler {

FailureOr<OwningOpRef<ModuleOp>> buildMoE(MLIRContext &context, const mm::ModelDesc &desc,
                                         const CompileOptions &opts) {
  minimax_m2::BuildOptions build;
  build.kvCacheDtype = opts.kvCacheDtype;
  auto module = minimax_m2::buildMoEModule(context, desc, build);
  if (failed(module))
    return failure();
  if (failed(verify(module->get())))
    return failure();
  return module;
}

LogicalResult fuseMoE(ModuleOp module) {
  PassManager pm(module.getContext());
  moe::buildFusePipeline(pm);
  return pm.run(module);
}

void printStats(ModuleOp module, StringRef phase, llvm::raw_ostream &os) {
  size_t weights = 0;
  for (Operation &op : *module.getBody()) {
    if (isa<moe::WeightOp>(op)) {
      ++weights;
      continue;
    }
    auto fn = dyn_cast<func::FuncOp>(op);
    if (!fn)
      continue;
    std::map<std::string, size_t> counts;
    size_t total = 0;
    fn.walk([&](Operation *inner) {
      if (inner == fn.getOperation())
        return;
      ++counts[inner->getName().getStringRef().str()];
      ++total;
    });
    os << phase << " @" << fn.getName() << ": " << total << " ops (";
    bool first = true;
    for (auto &[name, count] : counts) {
      os << (first ? "" : ", ") << name << " " << count;
      first = false;
    }
    os << ")\n";
  }
  os << phase << " weights: " << weights << " symbols\n";
}

} // namespace mm::compiler
