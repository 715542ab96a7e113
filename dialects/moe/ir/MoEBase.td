//===- MoEBase.td - the moe dialect and its op/type base classes ---------===//
//
// The graph level of mmc: one func per program (prefill, decode) over activations that are builtin
// tensors with a dynamic token dimension. Weights are module-level `moe.weight` symbols bound to
// checkpoint tensor names; ops name them by symbol, so no tensor data ever enters the IR.
//
//===----------------------------------------------------------------------===//
#ifndef MM_MOE_BASE_TD
#define MM_MOE_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def MoE_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mm::moe";
  let summary = "Graph-level dialect for MiniMax-M2 style mixture-of-experts LLMs";
  let description = [{
    Activations are builtin ranked tensors whose leading dimension is the number of tokens
    (prefill) or the batch (decode), usually dynamic: `tensor<?x3072xbf16>`. Weights are
    `moe.weight` symbols at module level, typed `!moe.qweight<...>` (int4 group-quantized
    linear, GPTQ packing) or `!moe.dense_weight<...>` (16/32-bit tensor), each bound to a
    checkpoint tensor name; ops reference them with `@symbol` and verify shapes against them.
    Graph-level ops follow the model math one step at a time; the fused ops (`route_topk`,
    `dequant_gemm`, `expert_ffn`, `add_rms_norm`) are produced by the `mm-moe-fuse` passes.
  }];
  let useDefaultTypePrinterParser = 1;
}

// Every moe op: pure value semantics unless it says otherwise (kv_append writes the cache).
class MoE_Op<string mnemonic, list<Trait> traits = []>
    : Op<MoE_Dialect, mnemonic, traits>;

class MoE_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<MoE_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

#endif // MM_MOE_BASE_TD
