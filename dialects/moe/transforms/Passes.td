//===- Passes.td - the moe fusion passes ----------------------------------===//
//
// Registration, options and create functions are generated from here (GEN_PASS_DECL/DEF/
// REGISTRATION); the `mm-moe-fuse` pipeline runs them in the order listed.
//
//===----------------------------------------------------------------------===//
#ifndef MM_MOE_PASSES_TD
#define MM_MOE_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEFuseRouting : Pass<"moe-fuse-routing", "::mlir::ModuleOp"> {
  let summary = "Fuses the router chain (linear, sigmoid, bias, top-k, gather, renormalize)";
  let description = [{
    Rewrites `linear(fp32) -> sigmoid -> add_bias -> topk -> gather(unbiased) -> renormalize`
    into one `moe.route_topk`. The chain fuses only when the gather reads the *unbiased* sigmoid
    scores with the top-k indices of the *biased* ones, and no intermediate value other than the
    final weights and ids is used elsewhere.

    ```mlir
    %l = moe.linear %x, @gate : tensor<?x256xbf16> -> tensor<?x8xf32>
    %s = moe.sigmoid %l : tensor<?x8xf32>
    %c = moe.add_bias %s, @bias : tensor<?x8xf32>
    %i = moe.topk %c {k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi32>
    %g = moe.gather %s, %i : tensor<?x8xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
    %w = moe.renormalize %g : tensor<?x2xf32>
    // becomes
    %w, %i = moe.route_topk %x, @gate, @bias {k = 2 : i64}
        : tensor<?x256xbf16> -> tensor<?x2xf32>, tensor<?x2xi32>
    ```
  }];
  let dependentDialects = ["::mm::moe::MoEDialect"];
}

def MoEFuseDequantGemm : Pass<"moe-fuse-dequant-gemm", "::mlir::ModuleOp"> {
  let summary = "Fuses int4 dequantization into the GEMM that consumes it";
  let description = [{
    `moe.matmul %x, (moe.dequant @w)` and `moe.w4_linear %x, @w` become
    `moe.dequant_gemm %x, [@w]`: the weight is dequantized in registers inside the GEMM's main
    loop instead of being materialized. A matmul whose matrix is not a `moe.dequant` is left
    alone.
  }];
  let dependentDialects = ["::mm::moe::MoEDialect"];
}

def MoEFuseExpertFfn : Pass<"moe-fuse-expert-ffn", "::mlir::ModuleOp"> {
  let summary = "Fuses the routed expert FFN (w1/w3 GEMMs, silu*mul, w2 GEMM, combine)";
  let description = [{
    `combine(expert_linear(silu_mul(expert_linear(x, ids, w1), expert_linear(x, ids, w3)),
    ids, w2), weights)` becomes `moe.expert_ffn %x, %weights, %ids gate(w1) up(w3) down(w2)`,
    the op the lowering turns into token/expert grouping, one w13 GEMM with silu*mul in its
    epilogue and one w2 GEMM that applies the routing weight and combines. Fuses only when all
    three GEMMs use the same ids, w1/w3 share their input and no intermediate is used elsewhere.
  }];
  let dependentDialects = ["::mm::moe::MoEDialect"];
}

def MoEFuseAddNorm : Pass<"moe-fuse-add-norm", "::mlir::ModuleOp"> {
  let summary = "Fuses a residual add with the RMSNorm that reads its result";
  let description = [{
    `%s = moe.add %a, %b` followed by `moe.rms_norm %s` becomes
    `%s, %n = moe.add_rms_norm %a, %b, @w`, one pass over the row that writes both the new
    residual and its normalized form. Norms of anything else than an add are left alone.
  }];
  let dependentDialects = ["::mm::moe::MoEDialect"];
}

def MoEMergeQkv : Pass<"moe-merge-qkv", "::mlir::ModuleOp"> {
  let summary = "Merges single-weight dequant_gemm ops on the same input into one";
  let description = [{
    Within a block, every single-weight `moe.dequant_gemm` reading the same value (q, k and v
    projections of one layer) becomes one multi-weight `moe.dequant_gemm` at the position of
    the first, with one result per weight. Only weights with the same group size and scale
    dtype merge; the others stay separate.
  }];
  let dependentDialects = ["::mm::moe::MoEDialect"];
}

#endif // MM_MOE_PASSES_TD
