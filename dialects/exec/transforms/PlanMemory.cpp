//===- PlanMemory.cpp - liveness-based arena offsets ------------------------===//
//
// Every activation of a program lives in one arena. Two buffers may share bytes when no launch
// sees both alive, which is what keeps a 62-layer decode arena the size of a few layers.
//
//===----------------------------------------------------------------------===//
#include "dialects/exec/transforms/Passes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"

namespace mm::exec {
#define GEN_PASS_DEF_EXECPLANMEMORY
#include "dialects/exec/transforms/Passes.h.inc"
} // namespace mm::exec

using namespace mlir;
using namespace mm::exec;

namespace {

struct Interval {
  BufferOp buffer;
  int64_t first = -1, last = -1;
  int64_t offset = 0;
};

LogicalResult planProgram(ProgramOp program, int64_t alignment, bool report) {
  llvm::SmallVector<Interval> intervals;
  llvm::DenseMap<StringRef, size_t> index;
  for (BufferOp buf : program.getBody().front().getOps<BufferOp>()) {
    index[buf.getSymName()] = intervals.size();
    intervals.push_back({buf});
  }
  int64_t launchIdx = 0;
  for (LaunchOp launch : program.getBody().front().getOps<LaunchOp>()) {
    for (Attribute a : launch.getOperands()) {
      auto buf = dyn_cast<BufAttr>(a);
      if (!buf)
        continue;
      auto it = index.find(buf.getName());
      if (it == index.end())
        return launch.emitOpError() << "names undeclared buffer '" << buf.getName() << "'";
      Interval &iv = intervals[it->second];
      if (iv.first < 0)
        iv.first = launchIdx;
      iv.last = launchIdx;
    }
    ++launchIdx;
  }
  for (Interval &iv : intervals)
    if (iv.first < 0)
      return iv.buffer.emitOpError() << "is never used by a launch of program '"
                                     << program.getSymName() << "'";

  // Largest first, then by first use: a classic greedy that is near-optimal for the
  // short-lived, similarly-sized activations of a transformer layer.
  llvm::SmallVector<Interval *> order;
  for (Interval &iv : intervals)
    order.push_back(&iv);
  llvm::stable_sort(order, [](Interval *a, Interval *b) {
    if (a->buffer.getSize() != b->buffer.getSize())
      return a->buffer.getSize() > b->buffer.getSize();
    return a->first < b->first;
  });
  llvm::SmallVector<Interval *> placed;
  int64_t peak = 0, total = 0;
  for (Interval *iv : order) {
    int64_t size = iv->buffer.getSize();
    total += size;
    // Conflicting placed buffers, sorted by offset; take the first gap that fits.
    llvm::SmallVector<Interval *> conflicts;
    for (Interval *p : placed)
      if (p->first <= iv->last && iv->first <= p->last)
        conflicts.push_back(p);
    llvm::sort(conflicts, [](Interval *a, Interval *b) { return a->offset < b->offset; });
    int64_t offset = 0;
    for (Interval *c : conflicts) {
      if (offset + size <= c->offset)
        break;
      int64_t end = c->offset + c->buffer.getSize();
      offset = std::max(offset, (end + alignment - 1) / alignment * alignment);
    }
    iv->offset = offset;
    peak = std::max(peak, offset + size);
    placed.push_back(iv);
  }
  Builder b(program.getContext());
  for (Interval &iv : intervals)
    iv.buffer.setOffsetAttr(b.getI64IntegerAttr(iv.offset));
  int64_t arena = (peak + alignment - 1) / alignment * alignment;
  program.setArenaBytesAttr(b.getI64IntegerAttr(arena));
  if (report)
    program.emitRemark() << "program '" << program.getSymName() << "': arena peak " << arena
                         << " bytes for " << intervals.size() << " buffers totalling " << total
                         << " bytes";
  return success();
}

struct ExecPlanMemoryPass : public mm::exec::impl::ExecPlanMemoryBase<ExecPlanMemoryPass> {
  using ExecPlanMemoryBase::ExecPlanMemoryBase;
  void runOnOperation() override {
    if (alignment <= 0 || (alignment & (alignment - 1)) != 0) {
      getOperation().emitError() << "exec-plan-memory: alignment must be a power of two, got "
                                 << alignment;
      return signalPassFailure();
    }
    for (ProgramOp program : getOperation().getOps<ProgramOp>())
      if (failed(planProgram(program, alignment, report)))
        return signalPassFailure();
  }
};

} // namespace
