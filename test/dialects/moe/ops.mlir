// RUN: mm-opt %s | FileCheck %s
// RUN: mm-opt %s | mm-opt | FileCheck %s
// Round trip of every moe type and op.

// CHECK: moe.weight @embed : !moe.dense_weight<64x32xbf16> {tensor = "model.embed_tokens.weight"}
moe.weight @embed : !moe.dense_weight<64x32xbf16> {tensor = "model.embed_tokens.weight"}
// CHECK: moe.weight @norm : !moe.dense_weight<32xbf16> {tensor = "model.norm.weight"}
moe.weight @norm : !moe.dense_weight<32xbf16> {tensor = "model.norm.weight"}
// CHECK: moe.weight @q_norm : !moe.dense_weight<32xbf16>
moe.weight @q_norm : !moe.dense_weight<32xbf16> {tensor = "model.layers.0.self_attn.q_norm.weight"}
// CHECK: moe.weight @k_norm : !moe.dense_weight<16xbf16>
moe.weight @k_norm : !moe.dense_weight<16xbf16> {tensor = "model.layers.0.self_attn.k_norm.weight"}
// CHECK: moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @k : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.k_proj"}
moe.weight @v : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.v_proj"}
// CHECK: moe.weight @router : !moe.dense_weight<4x32xbf16>
moe.weight @router : !moe.dense_weight<4x32xbf16> {tensor = "model.layers.0.block_sparse_moe.gate.weight"}
// CHECK: moe.weight @bias : !moe.dense_weight<4xf32>
moe.weight @bias : !moe.dense_weight<4xf32> {tensor = "model.layers.0.block_sparse_moe.e_score_correction_bias"}
// CHECK: moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
moe.weight @w3 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w3"}
moe.weight @w2 : !moe.qweight<4x16x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w2"}
moe.weight @lm_head : !moe.dense_weight<64x32xbf16> {tensor = "lm_head.weight"}

// CHECK-LABEL: func.func @graph
func.func @graph(%tokens: tensor<?xi32>, %pos: tensor<?xi32>,
                 %kv: !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>)
    -> (tensor<1x64xf32>, tensor<?x32xbf16>) {
  // CHECK: moe.embed %{{.*}}, @embed : tensor<?xi32> -> tensor<?x32xbf16>
  %h = moe.embed %tokens, @embed : tensor<?xi32> -> tensor<?x32xbf16>
  // CHECK: moe.rms_norm %{{.*}}, @norm {eps = 9.99999997E-7 : f32} : tensor<?x32xbf16>
  %x = moe.rms_norm %h, @norm {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  // CHECK: moe.dequant @q : tensor<32x32xbf16>
  %wq = moe.dequant @q : tensor<32x32xbf16>
  // CHECK: moe.matmul %{{.*}}, %{{.*}} : tensor<?x32xbf16>, tensor<32x32xbf16> -> tensor<?x32xbf16>
  %q = moe.matmul %x, %wq : tensor<?x32xbf16>, tensor<32x32xbf16> -> tensor<?x32xbf16>
  // CHECK: moe.w4_linear %{{.*}}, @k : tensor<?x32xbf16> -> tensor<?x16xbf16>
  %k = moe.w4_linear %x, @k : tensor<?x32xbf16> -> tensor<?x16xbf16>
  %v = moe.w4_linear %x, @v : tensor<?x32xbf16> -> tensor<?x16xbf16>
  // CHECK: moe.qk_norm %{{.*}}, %{{.*}}, @q_norm, @k_norm {eps = 9.99999997E-7 : f32} : tensor<?x32xbf16>, tensor<?x16xbf16>
  %qn, %kn = moe.qk_norm %q, %k, @q_norm, @k_norm {eps = 1.0e-06 : f32} : tensor<?x32xbf16>, tensor<?x16xbf16>
  // CHECK: moe.rope %{{.*}}, %{{.*}}, %{{.*}} {head_dim = 16 : i64, rotary_dim = 8 : i64, theta = 5.000000e+06 : f64} : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  %qr, %kr = moe.rope %qn, %kn, %pos {head_dim = 16 : i64, rotary_dim = 8 : i64, theta = 5.0e6 : f64} : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  // CHECK: moe.kv_append %{{.*}} {layer = 0 : i64} : {{(!moe.kv_cache)?}}<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  %kv1 = moe.kv_append %kv, %kr, %v, %pos {layer = 0 : i64} : !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  // CHECK: moe.attention %{{.*}} {layer = 0 : i64, num_heads = 2 : i64, scale = 2.500000e-01 : f32}
  %o = moe.attention %qr, %kv1, %pos {layer = 0 : i64, num_heads = 2 : i64, scale = 0.25 : f32} : tensor<?x32xbf16>, !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>, tensor<?xi32> -> tensor<?x32xbf16>
  // CHECK: moe.add %{{.*}}, %{{.*}} : tensor<?x32xbf16>
  %h1 = moe.add %h, %o : tensor<?x32xbf16>
  // CHECK: moe.linear %{{.*}}, @router : tensor<?x32xbf16> -> tensor<?x4xf32>
  %l = moe.linear %h1, @router : tensor<?x32xbf16> -> tensor<?x4xf32>
  // CHECK: moe.sigmoid %{{.*}} : tensor<?x4xf32>
  %s = moe.sigmoid %l : tensor<?x4xf32>
  // CHECK: moe.add_bias %{{.*}}, @bias : tensor<?x4xf32>
  %c = moe.add_bias %s, @bias : tensor<?x4xf32>
  // CHECK: moe.topk %{{.*}} {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi32>
  %ids = moe.topk %c {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi32>
  // CHECK: moe.gather %{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
  %g = moe.gather %s, %ids : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
  // CHECK: moe.renormalize %{{.*}} : tensor<?x2xf32>
  %w = moe.renormalize %g : tensor<?x2xf32>
  // CHECK: moe.expert_linear %{{.*}}, %{{.*}}, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %e1 = moe.expert_linear %h1, %ids, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %e3 = moe.expert_linear %h1, %ids, @w3 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  // CHECK: moe.silu_mul %{{.*}}, %{{.*}} : tensor<?x2x16xbf16>
  %a = moe.silu_mul %e1, %e3 : tensor<?x2x16xbf16>
  // CHECK: moe.expert_linear %{{.*}}, %{{.*}}, @w2 : tensor<?x2x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  %d = moe.expert_linear %a, %ids, @w2 : tensor<?x2x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  // CHECK: moe.combine %{{.*}}, %{{.*}} : tensor<?x2x32xbf16>, tensor<?x2xf32> -> tensor<?x32xbf16>
  %y = moe.combine %d, %w : tensor<?x2x32xbf16>, tensor<?x2xf32> -> tensor<?x32xbf16>
  // CHECK: moe.take_last %{{.*}} : tensor<?x32xbf16> -> tensor<1x32xbf16>
  %last = moe.take_last %y : tensor<?x32xbf16> -> tensor<1x32xbf16>
  // CHECK: moe.lm_head %{{.*}}, @lm_head : tensor<1x32xbf16> -> tensor<1x64xf32>
  %logits = moe.lm_head %last, @lm_head : tensor<1x32xbf16> -> tensor<1x64xf32>
  return %logits, %y : tensor<1x64xf32>, tensor<?x32xbf16>
}

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<?x32xbf16>, %r: tensor<?x32xbf16>)
    -> (tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?x32xbf16>, tensor<?x32xbf16>) {
  // CHECK: moe.dequant_gemm %{{.*}}, [@q, @k, @v] : tensor<?x32xbf16> -> tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>
  %q, %k, %v = moe.dequant_gemm %x, [@q, @k, @v] : tensor<?x32xbf16> -> tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>
  // CHECK: moe.route_topk %{{.*}}, @router, @bias {k = 2 : i64} : tensor<?x32xbf16> -> tensor<?x2xf32>, tensor<?x2xi32>
  %w, %ids = moe.route_topk %x, @router, @bias {k = 2 : i64} : tensor<?x32xbf16> -> tensor<?x2xf32>, tensor<?x2xi32>
  // CHECK: moe.expert_ffn %{{.*}}, %{{.*}}, %{{.*}} gate(@w1) up(@w3) down(@w2) : tensor<?x32xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xbf16>
  %y = moe.expert_ffn %x, %w, %ids gate(@w1) up(@w3) down(@w2) : tensor<?x32xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xbf16>
  // CHECK: moe.add_rms_norm %{{.*}}, %{{.*}}, @norm {eps = 9.99999997E-7 : f32} : tensor<?x32xbf16>
  %sum, %n = moe.add_rms_norm %r, %y, @norm {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  return %q, %k, %v, %sum, %n : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?x32xbf16>, tensor<?x32xbf16>
}

// CHECK-LABEL: func.func @sampling
func.func @sampling(%logits: tensor<?x64xf32>, %t: tensor<?xf32>, %p: tensor<?xf32>, %seed: tensor<?xi64>,
                    %kv: !moe.kv_cache<layers = 2, kv_heads = 8, head_dim = 128, dtype = f8E4M3FN>)
    -> (tensor<?xi32>, !moe.kv_cache<layers = 2, kv_heads = 8, head_dim = 128, dtype = f8E4M3FN>) {
  // CHECK: moe.sample %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xi64> -> tensor<?xi32>
  %ids = moe.sample %logits, %t, %p, %seed : tensor<?x64xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xi64> -> tensor<?xi32>
  // CHECK: !moe.kv_cache<layers = 2, kv_heads = 8, head_dim = 128, dtype = f8E4M3FN>
  return %ids, %kv : tensor<?xi32>, !moe.kv_cache<layers = 2, kv_heads = 8, head_dim = 128, dtype = f8E4M3FN>
}
