//===- ExecEnums.td - closed sets of the exec dialect ------*- tablegen -*-===//
//
// Kernel kinds come from the registry (codegen/kernels/kinds.def, through the generated
// ExecKernelKinds.td); weight dtypes and load-time transforms are the plan's (runtime/schemas/
// plan.fbs DType, WeightTransform), by the same names in lower case.
//
//===----------------------------------------------------------------------===//
#ifndef MM_EXEC_ENUMS_TD
#define MM_EXEC_ENUMS_TD

include "mlir/IR/EnumAttr.td"
include "ExecKernelKinds.td"

def Exec_KernelKindAttr : I32EnumAttr<"KernelKind",
    "a kernel kind of the registry (codegen/kernels/kinds.def)", Exec_KernelKindCases> {
  let cppNamespace = "::mm::exec";
}

def Exec_WeightDTypeAttr : I32EnumAttr<"WeightDType", "the element type of a device weight", [
    I32EnumAttrCase<"bf16", 0>, I32EnumAttrCase<"f16", 1>, I32EnumAttrCase<"f32", 2>,
    I32EnumAttrCase<"i32", 4>]> {
  let cppNamespace = "::mm::exec";
}

def Exec_TransformAttr : I32EnumAttr<"Transform",
    "how a device weight is made from checkpoint tensors at load time (plan.fbs WeightTransform)", [
    I32EnumAttrCase<"copy", 0>, I32EnumAttrCase<"concat_n", 1>, I32EnumAttrCase<"stack_experts", 2>,
    I32EnumAttrCase<"stack_experts_w13", 3>, I32EnumAttrCase<"upcast_f32", 4>,
    I32EnumAttrCase<"check_zeros", 5>]> {
  let cppNamespace = "::mm::exec";
}

def Exec_WeightRoleAttr : I32EnumAttr<"WeightRole",
    "what a device weight is to the kernels that read it (plan.fbs WeightRole)", [
    I32EnumAttrCase<"other", 0>, I32EnumAttrCase<"qweight", 1>, I32EnumAttrCase<"scales", 2>,
    I32EnumAttrCase<"zeros", 3>, I32EnumAttrCase<"dense", 4>, I32EnumAttrCase<"embedding", 5>,
    I32EnumAttrCase<"norm", 6>, I32EnumAttrCase<"bias", 7>]> {
  let cppNamespace = "::mm::exec";
}

def Exec_QuantLayoutAttr : I32EnumAttr<"QuantLayout",
    "the device layout of a qweight's packed words (plan.fbs QuantLayout, kinds.def QL)", [
    I32EnumAttrCase<"rows", 0>, I32EnumAttrCase<"strips32", 1>]> {
  let cppNamespace = "::mm::exec";
}

#endif // MM_EXEC_ENUMS_TD
