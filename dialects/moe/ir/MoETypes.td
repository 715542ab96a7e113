//===- MoETypes.td - weight and KV-cache types of the moe dialect --------===//
#ifndef MM_MOE_TYPES_TD
#define MM_MOE_TYPES_TD

include "dialects/moe/ir/MoEBase.td"

def MoE_QWeightType : MoE_Type<"QWeight", "qweight"> {
  let summary = "int4 group-quantized linear weight (GPTQ v1 packing) in a checkpoint";
  let description = [{
    A quantized Linear with `K` input and `N` output features: on disk `qweight` i32 [K/8, N],
    `qzeros` i32 [K/group, N/8], `scales` [K/group, N] of the scale dtype (symmetric, so the zero
    point is fixed). With a leading expert count `E` the type covers `E` experts of one layer, one
    tensor prefix each (the weight's tensor pattern contains `{E}`).

    ```mlir
    !moe.qweight<3072x6144, bits = 4, group = 128, scale = f16>        // one linear
    !moe.qweight<192x3072x1536, bits = 4, group = 128, scale = f16>    // 192 experts
    ```
  }];
  let parameters = (ins "int64_t":$experts, "int64_t":$k, "int64_t":$n, "int64_t":$bits,
                        "int64_t":$groupSize, "::mlir::Type":$scaleType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    // True when the type covers every expert of a layer (leading dimension E).
    bool isPerExpert() const { return getExperts() > 0; }
  }];
}

def MoE_DenseWeightType : MoE_Type<"DenseWeight", "dense_weight"> {
  let summary = "unquantized weight tensor (embedding, norm, router, lm_head) in a checkpoint";
  let description = [{
    The tensor's on-disk shape and dtype: `[V, H]` for the embedding and lm_head, `[N, K]` for a
    16-bit Linear (router gate), `[n]` for norm weights and the router bias.

    ```mlir
    !moe.dense_weight<200064x3072xbf16>
    !moe.dense_weight<192xf32>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape, "::mlir::Type":$elementType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def MoE_KVCacheType : MoE_Type<"KVCache", "kv_cache"> {
  let summary = "the paged-free KV cache of every layer (k after q/k norm and RoPE, raw v)";
  let description = [{
    One cache for all `layers`; each token stores `kv_heads x head_dim` keys and values of
    `dtype` (bf16, or f8E4M3FN for the fp8 cache). Its sequence capacity is a runtime limit.
    Values of this type are threaded through `moe.kv_append` so reads follow writes.

    ```mlir
    !moe.kv_cache<layers = 62, kv_heads = 8, head_dim = 128, dtype = bf16>
    ```
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$kv_heads, "int64_t":$head_dim,
                        "::mlir::Type":$dtype);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def MoE_AnyWeight : AnyTypeOf<[MoE_QWeightType, MoE_DenseWeightType]>;

#endif // MM_MOE_TYPES_TD
