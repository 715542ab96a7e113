//===- ExecOps.td - exec dialect attributes and ops --------*- tablegen -*-===//
#ifndef MM_EXEC_OPS_TD
#define MM_EXEC_OPS_TD

include "dialects/exec/ir/ExecBase.td"
include "dialects/exec/ir/ExecEnums.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

def Exec_DimAttr : Exec_Attr<"Dim", "dim"> {
  let summary = "a launch-grid formula over one dynamic dim";
  let description = [{
    `value = ceil((mul * dims[dim] + add) / div)` where `dim` names a dynamic dimension of the
    call (`T`, `R`, `S`, `CTX`, `STEP`; docs/kernels.md section 1) or is empty for a constant.

    ```mlir
    #exec.dim<"T", 1, 15, 16>   // ceil((T + 15) / 16)
    #exec.dim<"", 0, 4, 1>      // the constant 4
    ```
  }];
  let parameters = (ins StringRefParameter<>:$dim, "int64_t":$mul, "int64_t":$add,
                        "int64_t":$div);
  let assemblyFormat = "`<` $dim `,` $mul `,` $add `,` $div `>`";
  let genVerifyDecl = 1;
}

def Exec_BufAttr : Exec_Attr<"Buf", "buf"> {
  let summary = "launch operand: an arena buffer of the enclosing program";
  let description = "`#exec.buf<\"qkv\">` names an `exec.buffer` of the program.";
  let parameters = (ins StringRefParameter<>:$name);
  let assemblyFormat = "`<` $name `>`";
}

def Exec_WeightRefAttr : Exec_Attr<"WeightRef", "weight"> {
  let summary = "launch operand: a device weight";
  let description = "`#exec.weight<\"l0.qkv.qweight\">` names a module-level `exec.weight`.";
  let parameters = (ins StringRefParameter<>:$name);
  let assemblyFormat = "`<` $name `>`";
}

def Exec_InputAttr : Exec_Attr<"Input", "input"> {
  let summary = "launch operand: a runtime input or output of the program call";
  let description = [{
    One of `tokens`, `positions`, `seq_slots`, `block_tables`, `logit_rows`, `temperature`,
    `top_k`, `top_p`, `seed`, `logits`, `sampled` (docs/kernels.md section 2).
  }];
  let parameters = (ins StringRefParameter<>:$name);
  let assemblyFormat = "`<` $name `>`";
  let genVerifyDecl = 1;
}

def Exec_KvAttr : Exec_Attr<"Kv", "kv"> {
  let summary = "launch operand: a KV-cache pool of one layer";
  let description = "`#exec.kv<3, \"k\">`; pools are `k`, `v`, `k_scale`, `v_scale`.";
  let parameters = (ins "int64_t":$layer, StringRefParameter<>:$pool);
  let assemblyFormat = "`<` $layer `,` $pool `>`";
  let genVerifyDecl = 1;
}

def Exec_NoneAttr : Exec_Attr<"None", "none"> {
  let summary = "launch operand: an unused pointer slot (null)";
  let description = "`#exec.none`";
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

def Exec_WeightOp : Exec_Op<"weight", [Symbol, HasParent<"mlir::ModuleOp">]> {
  let summary = "a device weight made from checkpoint tensors at load time";
  let description = [{
    Weights are by reference: `sources` are checkpoint tensor names; the plan writer adds their
    shard file and byte range from the checkpoint's headers. `transform` is one of `copy`,
    `concat_n`, `stack_experts`, `stack_experts_w13`, `upcast_f32`, `check_zeros`; `shape` and
    `dtype` (`bf16`, `f16`, `f32`, `i32`) describe the device tensor after it. The compiler also
    records what the runtime would otherwise have to guess: `role` (what the weight is to its
    kernels), `fan_in` (the K of its product), for `concat_n`, `concat_axis`, and for a qweight
    `qlayout` (`rows` when absent; `strips32`: the words in strips of 32 columns on the device,
    read by kernels with QL = 1).

    A weight of a tensor-parallel rank (docs/parallel.md) reads slices of its sources: `slices`
    holds three integers per source, `dim, start, len` (dim -1: the whole tensor); the transform
    applies to the sliced tensors.

    ```mlir
    exec.weight @l0.w13.scales f16 stack_experts_w13 scales {category = "experts", fan_in = 256,
        shape = array<i64: 8, 2, 512>,
        sources = ["model.layers.0.block_sparse_moe.experts.0.w1.scales", ...]}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, Exec_WeightDTypeAttr:$dtype,
                       DenseI64ArrayAttr:$shape, Exec_TransformAttr:$transform,
                       StrArrayAttr:$sources, StrAttr:$category, Exec_WeightRoleAttr:$role,
                       DefaultValuedAttr<I64Attr, "1">:$fan_in,
                       OptionalAttr<I64Attr>:$concat_axis,
                       OptionalAttr<DenseI64ArrayAttr>:$slices,
                       OptionalAttr<Exec_QuantLayoutAttr>:$qlayout);
  let assemblyFormat = "$sym_name $dtype $transform $role attr-dict";
  let hasVerifier = 1;
}

def Exec_KernelOp : Exec_Op<"kernel", [Symbol, HasParent<"mlir::ModuleOp">]> {
  let summary = "a kernel specialization: a kind plus its baked-in constants";
  let description = [{
    `kind` is a kernel kind of the registry (codegen/kernels/kinds.def: `GEMM_W4`, `ATTENTION`,
    ...); `params` holds its named constants (integers, and floats such as `EPS`), checked against
    the registry's declaration of the kind, including the tile constants the specializer derived
    (`THREADS`, `WK`, ...); `block` the thread-block shape and `smem` the dynamic shared memory in
    bytes, both fixed by the specialization.

    ```mlir
    exec.kernel @rms_norm_0 RMS_NORM {block = array<i64: 256, 1, 1>,
        params = {EPS = 1.0e-06 : f64, GATHER = 0 : i64, N = 256 : i64, RESIDUAL = 1 : i64,
                  THREADS = 256 : i64, WDT = 0 : i64}, smem = 0 : i64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, Exec_KernelKindAttr:$kind, DictionaryAttr:$params,
                       DenseI64ArrayAttr:$block, I64Attr:$smem);
  let assemblyFormat = "$sym_name $kind attr-dict";
  let hasVerifier = 1;
}

def Exec_ProgramOp : Exec_Op<"program", [Symbol, SymbolTable, NoTerminator, SingleBlock,
                                         HasParent<"mlir::ModuleOp">]> {
  let summary = "an ordered list of launches over one arena (prefill, decode)";
  let description = [{
    A program's body holds `exec.buffer` declarations and `exec.launch` ops, run in order on one
    stream. `max_tokens` bounds the dynamic dim `T`; every buffer size is taken at that bound.
    `arena_bytes` is set by `exec-plan-memory`. In a tensor-parallel module every rank has its
    own programs (`@r1.decode` with `rank = 1`); each runs on its own arena (docs/parallel.md).

    ```mlir
    exec.program @decode attributes {max_tokens = 16 : i64} {
      exec.buffer @x {size = 8192 : i64}
      exec.launch @embed_0 grid [...] operands [#exec.input<"tokens">, ...]
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$max_tokens,
                       OptionalAttr<I64Attr>:$arena_bytes, OptionalAttr<I64Attr>:$rank);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Exec_BufferOp : Exec_Op<"buffer", [Symbol, HasParent<"ProgramOp">]> {
  let summary = "a byte range of the program's arena";
  let description = [{
    `size` is in bytes at the program's limits; `offset` is assigned by `exec-plan-memory` from
    the buffer's live range (first to last launch that names it).

    ```mlir
    exec.buffer @qkv {size = 16384 : i64}
    exec.buffer @qkv {offset = 8192 : i64, size = 16384 : i64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$size, OptionalAttr<I64Attr>:$offset);
  let assemblyFormat = "$sym_name attr-dict";
  let hasVerifier = 1;
}

def Exec_LaunchOp : Exec_Op<"launch", [HasParent<"ProgramOp">]> {
  let summary = "launch a kernel specialization";
  let description = [{
    `grid` holds three `#exec.dim` formulas (x, y, z); `operands` are the kernel's pointers in
    the order the registry lists for its kind, one per slot; `#exec.none` exactly where the kind's
    parameters leave a slot unused (e.g. `k_scale` of a bf16 cache).

    `pdl` (programmatic dependent launch) lets the launch start while the previous launch of the
    program still runs: its kernel prefetches weights, then waits for the previous launch before
    it reads anything that launch wrote (docs/kernels.md section 6). The first launch of a
    program never has it.

    ```mlir
    exec.launch @gemm_w4_0 grid [#exec.dim<"", 0, 64, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
        operands [#exec.buf<"x">, #exec.weight<"l0.qkv.qweight">, #exec.weight<"l0.qkv.scales">,
                  #exec.buf<"qkv">] {layer = 0 : i64, note = "l0.qkv"}
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$kernel, ArrayAttr:$grid, ArrayAttr:$operands,
                       OptionalAttr<I64Attr>:$layer, OptionalAttr<StrAttr>:$note,
                       UnitAttr:$pdl);
  let assemblyFormat = "$kernel `grid` $grid `operands` $operands attr-dict";
  let hasVerifier = 1;
}

#endif // MM_EXEC_OPS_TD
