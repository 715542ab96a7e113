//===- ExecBase.td - the exec dialect ----------------------*- tablegen -*-===//
#ifndef MM_EXEC_BASE_TD
#define MM_EXEC_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Exec_Dialect : Dialect {
  let name = "exec";
  let cppNamespace = "::mm::exec";
  let summary = "Launch-level IR: the plan as IR";
  let description = [{
    The `exec` dialect is what the runtime executes, written as IR: kernel specializations
    (a kind of docs/kernels.md plus its named constants), weights by reference (checkpoint tensor
    names and a load-time transform), and programs (`prefill`, `decode`) that are ordered lists of
    launches. A launch names a kernel, a grid as formulas over the call's dynamic dims and its
    operands in the kernel's pointer order: arena buffers, weights, runtime inputs, KV pools.
    Buffers are program-local byte ranges of one arena; `exec-plan-memory` gives them offsets.

    ```mlir
    exec.weight @l0.qkv.qweight {category = "attention", dtype = "i32", shape = array<i64: 32, 512>,
        sources = ["model.layers.0.self_attn.q_proj.qweight", "model.layers.0.self_attn.k_proj.qweight",
                   "model.layers.0.self_attn.v_proj.qweight"], transform = "concat_n"}
    exec.kernel @gemm_w4_0 {kind = "GEMM_W4", params = {G = 128 : i64, K = 256 : i64, N = 512 : i64}}
    exec.program @decode attributes {max_tokens = 16 : i64} {
      exec.buffer @x {size = 8192 : i64}
      exec.buffer @qkv {size = 16384 : i64}
      exec.launch @gemm_w4_0 grid [#exec.dim<1>, #exec.dim<T, 1, 0, 1>, #exec.dim<1>]
          operands [#exec.buf<@x>, #exec.weight<@l0.qkv.qweight>, #exec.weight<@l0.qkv.scales>,
                    #exec.buf<@qkv>] {layer = 0 : i64}
    }
    ```
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Exec_Op<string mnemonic, list<Trait> traits = []> : Op<Exec_Dialect, mnemonic, traits>;
class Exec_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Exec_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // MM_EXEC_BASE_TD
