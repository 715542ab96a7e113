//===- KernelGeometry.cpp - block/grid of a specialization from codegen -----===//
//
// The tiling of a kernel belongs to its template (codegen/kernels), so the lowering asks the
// specializer for block dims, shared memory and grid formulas instead of guessing them.
//
//===----------------------------------------------------------------------===//
#include "compiler/lowering/Lowering.h"

#include "codegen/kernels/specialize.h"

using namespace mlir;

namespace mm::compiler::lowering {

mm::kernels::Params toKernelParams(DictionaryAttr params) {
  mm::kernels::Params out;
  for (NamedAttribute p : params) {
    std::string name = p.getName().str();
    if (auto i = dyn_cast<IntegerAttr>(p.getValue()))
      out.ints[name] = i.getInt();
    else if (auto f = dyn_cast<FloatAttr>(p.getValue()))
      out.floats[name] = f.getValueAsDouble();
  }
  return out;
}

DictionaryAttr toParamsAttr(MLIRContext *ctx, const mm::kernels::Params &params) {
  SmallVector<NamedAttribute> attrs;
  Builder b(ctx);
  for (const auto &[name, v] : params.ints)
    attrs.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(v)));
  for (const auto &[name, v] : params.floats)
    attrs.push_back(b.getNamedAttr(name, b.getF64FloatAttr(v)));
  return DictionaryAttr::get(ctx, attrs);
}

FailureOr<Geometry> kernelGeometry(MLIRContext *ctx, mm::kernels::Kind kind, DictionaryAttr params,
                                   Location loc) {
  auto spec = mm::kernels::specialize(kind, toKernelParams(params));
  if (!spec.ok())
    return emitError(loc) << "cannot specialize: " << spec.error().message;
  Geometry g;
  g.params = toParamsAttr(ctx, spec->params);
  for (int i = 0; i < 3; ++i) {
    g.block[i] = spec->block[i];
    const mm::kernels::DimExpr &d = spec->grid[i];
    StringRef dim = d.dim < 0 ? StringRef() : mm::exec::dynamicDimNames()[d.dim];
    g.grid[i] = mm::exec::DimAttr::get(ctx, dim, d.dim < 0 ? 0 : d.mul, d.add, d.div);
  }
  g.smem = spec->dynamic_shared_bytes;
  return g;
}

} // namespace mm::compiler::lowering
