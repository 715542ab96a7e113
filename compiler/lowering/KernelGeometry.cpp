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

FailureOr<Geometry> kernelGeometry(MLIRContext *ctx, StringRef kind, DictionaryAttr params,
                                   Location loc) {
  auto k = mm::kernels::kind_from_name(std::string_view(kind.data(), kind.size()));
  if (!k)
    return emitError(loc) << "no kernel template implements kind '" << kind << "'";
  auto spec = mm::kernels::specialize(*k, toKernelParams(params));
  if (!spec.ok())
    return emitError(loc) << "cannot specialize " << kind << ": " << spec.error().message;
  Geometry g;
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
