// RUN: mm-opt %s | FileCheck %s
// RUN: mm-opt %s | mm-opt | FileCheck %s

// CHECK: exec.weight @l0.qkv.qweight
// CHECK-SAME: transform = "concat_n"
exec.weight @l0.qkv.qweight {category = "attention", dtype = "i32", shape = array<i64: 32, 512>,
    sources = ["model.layers.0.self_attn.q_proj.qweight", "model.layers.0.self_attn.k_proj.qweight",
               "model.layers.0.self_attn.v_proj.qweight"], transform = "concat_n"}
exec.weight @l0.qkv.scales {category = "attention", dtype = "f16", shape = array<i64: 2, 512>,
    sources = ["model.layers.0.self_attn.q_proj.scales", "model.layers.0.self_attn.k_proj.scales",
               "model.layers.0.self_attn.v_proj.scales"], transform = "concat_n"}
// CHECK: exec.kernel @gemm_w4_0
// CHECK-SAME: kind = "GEMM_W4"
exec.kernel @gemm_w4_0 {block = array<i64: 256, 1, 1>, kind = "GEMM_W4",
    params = {G = 128 : i64, K = 256 : i64, N = 512 : i64, EPS = 1.0e-06 : f64}, smem = 0 : i64}

// CHECK-LABEL: exec.program @decode
// CHECK: exec.buffer @x {size = 8192 : i64}
// CHECK: exec.launch @gemm_w4_0 grid [#exec.dim<"", 0, 64, 1>, #exec.dim<"T", 1, 15, 16>, #exec.dim<"", 0, 1, 1>]
// CHECK-SAME: operands [#exec.buf<"x">, #exec.weight<"l0.qkv.qweight">, #exec.weight<"l0.qkv.scales">, #exec.buf<"qkv">, #exec.input<"positions">, #exec.kv<0, "k">, #exec.none]
// CHECK-SAME: layer = 0
exec.program @decode attributes {max_tokens = 16 : i64} {
  exec.buffer @x {size = 8192 : i64}
  exec.buffer @qkv {offset = 0 : i64, size = 16384 : i64}
  exec.launch @gemm_w4_0 grid [#exec.dim<"", 0, 64, 1>, #exec.dim<"T", 1, 15, 16>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.buf<"x">, #exec.weight<"l0.qkv.qweight">, #exec.weight<"l0.qkv.scales">,
                #exec.buf<"qkv">, #exec.input<"positions">, #exec.kv<0, "k">, #exec.none]
      {layer = 0 : i64, note = "l0.qkv"}
}
