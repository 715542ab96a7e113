// RUN: mm-opt %s | FileCheck %s
// RUN: mm-opt %s | mm-opt | FileCheck %s

// CHECK: exec.weight @l0.qkv.qweight i32 concat_n qweight
// CHECK-SAME: category = "attention", concat_axis = 1 : i64, fan_in = 256 : i64
exec.weight @l0.qkv.qweight i32 concat_n qweight {category = "attention", concat_axis = 1 : i64, fan_in = 256 : i64, shape = array<i64: 32, 512>,
    sources = ["model.layers.0.self_attn.q_proj.qweight", "model.layers.0.self_attn.k_proj.qweight",
               "model.layers.0.self_attn.v_proj.qweight"]}
exec.weight @l0.qkv.scales f16 concat_n scales {category = "attention", concat_axis = 1 : i64, fan_in = 256 : i64, shape = array<i64: 2, 512>,
    sources = ["model.layers.0.self_attn.q_proj.scales", "model.layers.0.self_attn.k_proj.scales",
               "model.layers.0.self_attn.v_proj.scales"]}
exec.weight @l0.bias f32 upcast_f32 bias {category = "experts", shape = array<i64: 8>,
    sources = ["model.layers.0.block_sparse_moe.e_score_correction_bias"]}
// CHECK: exec.kernel @gemm_w4_0 GEMM_W4
// CHECK-SAME: params = {CS = 1 : i64, G = 128 : i64, K = 256 : i64, N = 512 : i64, OUT = 0 : i64, THREADS = 256 : i64, VARIANT = 0 : i64, WK = 2 : i64}
exec.kernel @gemm_w4_0 GEMM_W4 {block = array<i64: 256, 1, 1>,
    params = {CS = 1 : i64, G = 128 : i64, K = 256 : i64, N = 512 : i64, OUT = 0 : i64, THREADS = 256 : i64,
              VARIANT = 0 : i64, WK = 2 : i64}, smem = 0 : i64}
// CHECK: exec.kernel @route_topk_0 ROUTE_TOPK
exec.kernel @route_topk_0 ROUTE_TOPK {block = array<i64: 128, 1, 1>,
    params = {E = 8 : i64, FUSED_GEMM = 0 : i64, H = 256 : i64, TOPK = 2 : i64, WDT = 0 : i64},
    smem = 0 : i64}

// CHECK-LABEL: exec.program @decode
// CHECK: exec.buffer @x {size = 8192 : i64}
// CHECK: exec.launch @gemm_w4_0 grid [#exec.dim<"", 0, 16, 1>, #exec.dim<"T", 1, 15, 16>, #exec.dim<"", 0, 1, 1>]
// CHECK-SAME: operands [#exec.buf<"x">, #exec.weight<"l0.qkv.qweight">, #exec.weight<"l0.qkv.scales">, #exec.buf<"qkv">]
// CHECK-SAME: layer = 0
// CHECK: exec.launch @route_topk_0
// CHECK-SAME: operands [#exec.buf<"logits">, #exec.none, #exec.weight<"l0.bias">, #exec.buf<"ids">, #exec.buf<"weights">]
// CHECK-SAME: pdl
exec.program @decode attributes {max_tokens = 16 : i64} {
  exec.buffer @x {size = 8192 : i64}
  exec.buffer @qkv {offset = 0 : i64, size = 16384 : i64}
  exec.buffer @logits {size = 512 : i64}
  exec.buffer @ids {size = 128 : i64}
  exec.buffer @weights {size = 128 : i64}
  exec.launch @gemm_w4_0 grid [#exec.dim<"", 0, 16, 1>, #exec.dim<"T", 1, 15, 16>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.buf<"x">, #exec.weight<"l0.qkv.qweight">, #exec.weight<"l0.qkv.scales">,
                #exec.buf<"qkv">]
      {layer = 0 : i64, note = "l0.qkv"}
  exec.launch @route_topk_0 grid [#exec.dim<"T", 1, 0, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.buf<"logits">, #exec.none, #exec.weight<"l0.bias">, #exec.buf<"ids">,
                #exec.buf<"weights">]
      {layer = 0 : i64, note = "l0.route", pdl}
}
