// RUN: mm-opt %s -split-input-file -verify-diagnostics
// One case per verifier error of the moe types and ops.

// expected-error @+1 {{expected K x N or E x K x N dimensions, got 1 dimension(s)}}
moe.weight @w : !moe.qweight<32, bits = 4, group = 16, scale = f16> {tensor = "a"}

// -----

// expected-error @+1 {{expected positive dimensions, got experts 0, K 0, N 32}}
moe.weight @w : !moe.qweight<0x32, bits = 4, group = 16, scale = f16> {tensor = "a"}

// -----

// expected-error @+1 {{expected bits = 4, got 8}}
moe.weight @w : !moe.qweight<32x32, bits = 8, group = 16, scale = f16> {tensor = "a"}

// -----

// expected-error @+1 {{expected K (48) to be a multiple of the group size (32)}}
moe.weight @w : !moe.qweight<48x32, bits = 4, group = 32, scale = f16> {tensor = "a"}

// -----

// expected-error @+1 {{expected K and N to be multiples of 8 (int4 packing), got K 32, N 12}}
moe.weight @w : !moe.qweight<32x12, bits = 4, group = 16, scale = f16> {tensor = "a"}

// -----

// expected-error @+1 {{expected scale dtype f16 or bf16, got 'f32'}}
moe.weight @w : !moe.qweight<32x32, bits = 4, group = 16, scale = f32> {tensor = "a"}

// -----

// expected-error @+1 {{expected a 1-D or 2-D weight, got rank 3}}
moe.weight @w : !moe.dense_weight<2x2x2xbf16> {tensor = "a"}

// -----

// expected-error @+1 {{expected positive dimensions, got 0}}
moe.weight @w : !moe.dense_weight<0xbf16> {tensor = "a"}

// -----

// expected-error @+1 {{expected element type bf16, f16 or f32, got 'i8'}}
moe.weight @w : !moe.dense_weight<4xi8> {tensor = "a"}

// -----

// expected-error @+1 {{expected positive layers, kv_heads and head_dim, got 0, 1, 16}}
func.func private @f(!moe.kv_cache<layers = 0, kv_heads = 1, head_dim = 16, dtype = bf16>)

// -----

// expected-error @+1 {{expected cache dtype bf16 or f8E4M3FN, got 'f16'}}
func.func private @f(!moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = f16>)

// -----

// expected-error @+1 {{expects a non-empty tensor name}}
moe.weight @w : !moe.dense_weight<4xbf16> {tensor = ""}

// -----

// expected-error @+1 {{expects the per-expert tensor pattern to contain {E}, got "model.layers.0.block_sparse_moe.experts.0.w1"}}
moe.weight @w : !moe.qweight<4x32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.0.w1"}

// -----

// expected-error @+1 {{expects a tensor name without {E} for a non-expert weight}}
moe.weight @w : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "x.{E}.w1"}

// -----

func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{references @missing, which is not a moe.weight}}
  %y = moe.rms_norm %x, @missing {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "q"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects @q to be a !moe.dense_weight, got '!moe.qweight<32x32, bits = 4, group = 16, scale = f16>'}}
  %y = moe.rms_norm %x, @q {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @n : !moe.dense_weight<16xbf16> {tensor = "n"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects @n to have shape [32] (hidden), got [16]}}
  %y = moe.rms_norm %x, @n {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @n : !moe.dense_weight<32xbf16> {tensor = "n"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects eps > 0, got 0}}
  %y = moe.rms_norm %x, @n {eps = 0.0 : f32} : tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

func.func @f(%x: tensor<32xbf16>) -> tensor<32xbf16> {
  // expected-error @+1 {{expects the input to have rank 2, got rank 1}}
  %y = moe.rms_norm %x, @n {eps = 1.0e-06 : f32} : tensor<32xbf16>
  return %y : tensor<32xbf16>
}

// -----

moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "e.{E}.w1"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x16xbf16> {
  // expected-error @+1 {{expects @w1 to be a single-linear !moe.qweight, got '!moe.qweight<4x32x16, bits = 4, group = 16, scale = f16>'}}
  %y = moe.w4_linear %x, @w1 : tensor<?x32xbf16> -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "q"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x16xbf16> {
  // expected-error @+1 {{expects @q to have K x N = 32 x 16, got 32 x 32}}
  %y = moe.w4_linear %x, @q : tensor<?x32xbf16> -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

func.func @f(%x: tensor<4x32xbf16>) -> tensor<5x32xbf16> {
  // expected-error @+1 {{expects the result's rows to be 4, got 5}}
  %y = moe.w4_linear %x, @q : tensor<4x32xbf16> -> tensor<5x32xbf16>
  return %y : tensor<5x32xbf16>
}

// -----

func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xf16> {
  // expected-error @+1 {{expects input and result to have the same element type, got 'bf16' and 'f16'}}
  %y = moe.w4_linear %x, @q : tensor<?x32xbf16> -> tensor<?x32xf16>
  return %y : tensor<?x32xf16>
}

// -----

func.func @f(%x: tensor<?x32xbf16>, %w: tensor<16x8xbf16>) -> tensor<?x8xbf16> {
  // expected-error @+1 {{expects the matrix's rows (K) to be 32, got 16}}
  %y = moe.matmul %x, %w : tensor<?x32xbf16>, tensor<16x8xbf16> -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

func.func @f(%x: tensor<?x32xbf16>, %w: tensor<32x8xbf16>) -> tensor<?x16xbf16> {
  // expected-error @+1 {{expects the result's columns (N) to be 8, got 16}}
  %y = moe.matmul %x, %w : tensor<?x32xbf16>, tensor<32x8xbf16> -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "q"}
func.func @f() -> tensor<32x16xbf16> {
  // expected-error @+1 {{expects @q to have K x N = 32 x 16, got 32 x 32}}
  %w = moe.dequant @q : tensor<32x16xbf16>
  return %w : tensor<32x16xbf16>
}

// -----

moe.weight @embed : !moe.dense_weight<64x32xf16> {tensor = "e"}
func.func @f(%t: tensor<?xi32>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects the result element type to be the table's 'f16', got 'bf16'}}
  %h = moe.embed %t, @embed : tensor<?xi32> -> tensor<?x32xbf16>
  return %h : tensor<?x32xbf16>
}

// -----

moe.weight @router : !moe.dense_weight<32x4xbf16> {tensor = "g"}
func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x4xf32> {
  // expected-error @+1 {{expects @router to have shape [4, 32] (out x in), got [32, 4]}}
  %y = moe.linear %x, @router : tensor<?x32xbf16> -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

func.func @f(%q: tensor<4x32xbf16>, %k: tensor<3x16xbf16>) -> (tensor<4x32xbf16>, tensor<3x16xbf16>) {
  // expected-error @+1 {{expects k's rows to be 4, got 3}}
  %a, %b = moe.qk_norm %q, %k, @qn, @kn {eps = 1.0e-06 : f32} : tensor<4x32xbf16>, tensor<3x16xbf16>
  return %a, %b : tensor<4x32xbf16>, tensor<3x16xbf16>
}

// -----

func.func @f(%q: tensor<?x32xbf16>, %k: tensor<?x16xbf16>, %p: tensor<?xi32>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  // expected-error @+1 {{expects an even rotary_dim in (0, head_dim = 16], got 7}}
  %a, %b = moe.rope %q, %k, %p {head_dim = 16 : i64, rotary_dim = 7 : i64, theta = 5.0e6 : f64} : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %a, %b : tensor<?x32xbf16>, tensor<?x16xbf16>
}

// -----

func.func @f(%q: tensor<?x32xbf16>, %k: tensor<?x16xbf16>, %p: tensor<?xi32>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  // expected-error @+1 {{expects head_dim > 0, got 0}}
  %a, %b = moe.rope %q, %k, %p {head_dim = 0 : i64, rotary_dim = 8 : i64, theta = 5.0e6 : f64} : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %a, %b : tensor<?x32xbf16>, tensor<?x16xbf16>
}

// -----

func.func @f(%q: tensor<?x24xbf16>, %k: tensor<?x16xbf16>, %p: tensor<?xi32>) -> (tensor<?x24xbf16>, tensor<?x16xbf16>) {
  // expected-error @+1 {{expects the width of q to be a multiple of head_dim 16, got 24}}
  %a, %b = moe.rope %q, %k, %p {head_dim = 16 : i64, rotary_dim = 8 : i64, theta = 5.0e6 : f64} : tensor<?x24xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %a, %b : tensor<?x24xbf16>, tensor<?x16xbf16>
}

// -----

func.func @f(%q: tensor<?x32xbf16>, %k: tensor<?x16xbf16>, %p: tensor<?xi32>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  // expected-error @+1 {{expects theta > 0, got -1}}
  %a, %b = moe.rope %q, %k, %p {head_dim = 16 : i64, rotary_dim = 8 : i64, theta = -1.0 : f64} : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %a, %b : tensor<?x32xbf16>, tensor<?x16xbf16>
}

// -----

func.func @f(%q: tensor<4x32xbf16>, %k: tensor<4x16xbf16>, %p: tensor<3xi32>) -> (tensor<4x32xbf16>, tensor<4x16xbf16>) {
  // expected-error @+1 {{expects the number of positions to be 4, got 3}}
  %a, %b = moe.rope %q, %k, %p {head_dim = 16 : i64, rotary_dim = 8 : i64, theta = 5.0e6 : f64} : tensor<4x32xbf16>, tensor<4x16xbf16>, tensor<3xi32>
  return %a, %b : tensor<4x32xbf16>, tensor<4x16xbf16>
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>
func.func @f(%kv: !kv, %k: tensor<?x16xbf16>, %v: tensor<?x16xbf16>, %p: tensor<?xi32>) -> !kv {
  // expected-error @+1 {{expects layer in [0, 1), got 1}}
  %r = moe.kv_append %kv, %k, %v, %p {layer = 1 : i64} : !kv, tensor<?x16xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %r : !kv
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>
func.func @f(%kv: !kv, %k: tensor<?x32xbf16>, %v: tensor<?x16xbf16>, %p: tensor<?xi32>) -> !kv {
  // expected-error @+1 {{expects the width of k (kv_heads x head_dim) to be 16, got 32}}
  %r = moe.kv_append %kv, %k, %v, %p {layer = 0 : i64} : !kv, tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?xi32>
  return %r : !kv
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 1, head_dim = 16, dtype = bf16>
func.func @f(%kv: !kv, %k: tensor<?x16xbf16>, %v: tensor<?x16xf16>, %p: tensor<?xi32>) -> !kv {
  // expected-error @+1 {{expects k and v to have the same element type, got 'bf16' and 'f16'}}
  %r = moe.kv_append %kv, %k, %v, %p {layer = 0 : i64} : !kv, tensor<?x16xbf16>, tensor<?x16xf16>, tensor<?xi32>
  return %r : !kv
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, dtype = bf16>
func.func @f(%q: tensor<?x48xbf16>, %kv: !kv, %p: tensor<?xi32>) -> tensor<?x48xbf16> {
  // expected-error @+1 {{expects num_heads to be a positive multiple of kv_heads 2, got 3}}
  %o = moe.attention %q, %kv, %p {layer = 0 : i64, num_heads = 3 : i64, scale = 0.25 : f32} : tensor<?x48xbf16>, !kv, tensor<?xi32> -> tensor<?x48xbf16>
  return %o : tensor<?x48xbf16>
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, dtype = bf16>
func.func @f(%q: tensor<?x48xbf16>, %kv: !kv, %p: tensor<?xi32>) -> tensor<?x48xbf16> {
  // expected-error @+1 {{expects the width of q (num_heads x head_dim) to be 64, got 48}}
  %o = moe.attention %q, %kv, %p {layer = 0 : i64, num_heads = 4 : i64, scale = 0.25 : f32} : tensor<?x48xbf16>, !kv, tensor<?xi32> -> tensor<?x48xbf16>
  return %o : tensor<?x48xbf16>
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, dtype = bf16>
func.func @f(%q: tensor<?x64xbf16>, %kv: !kv, %p: tensor<?xi32>) -> tensor<?x64xbf16> {
  // expected-error @+1 {{expects layer in [0, 1), got -1}}
  %o = moe.attention %q, %kv, %p {layer = -1 : i64, num_heads = 4 : i64, scale = 0.25 : f32} : tensor<?x64xbf16>, !kv, tensor<?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}

// -----

!kv = !moe.kv_cache<layers = 1, kv_heads = 2, head_dim = 16, dtype = bf16>
func.func @f(%q: tensor<?x64xbf16>, %kv: !kv, %p: tensor<?xi32>) -> tensor<?x64xbf16> {
  // expected-error @+1 {{expects scale > 0, got 0}}
  %o = moe.attention %q, %kv, %p {layer = 0 : i64, num_heads = 4 : i64, scale = 0.0 : f32} : tensor<?x64xbf16>, !kv, tensor<?xi32> -> tensor<?x64xbf16>
  return %o : tensor<?x64xbf16>
}

// -----

moe.weight @bias : !moe.dense_weight<8xf32> {tensor = "b"}
func.func @f(%s: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{expects @bias to have shape [4] (experts), got [8]}}
  %c = moe.add_bias %s, @bias : tensor<?x4xf32>
  return %c : tensor<?x4xf32>
}

// -----

func.func @f(%c: tensor<?x4xf32>) -> tensor<?x5xi32> {
  // expected-error @+1 {{expects k in [1, 4], got 5}}
  %i = moe.topk %c {k = 5 : i64} : tensor<?x4xf32> -> tensor<?x5xi32>
  return %i : tensor<?x5xi32>
}

// -----

func.func @f(%c: tensor<?x4xf32>) -> tensor<?x3xi32> {
  // expected-error @+1 {{expects the result's width (k) to be 2, got 3}}
  %i = moe.topk %c {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x3xi32>
  return %i : tensor<?x3xi32>
}

// -----

func.func @f(%s: tensor<?x4xf32>, %i: tensor<?x2xi32>) -> tensor<?x3xf32> {
  // expected-error @+1 {{expects the result's width to be 2, got 3}}
  %g = moe.gather %s, %i : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x3xf32>
  return %g : tensor<?x3xf32>
}

// -----

func.func @f(%w: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{expects the input to have rank 2, got rank 1}}
  %n = moe.renormalize %w : tensor<4xf32>
  return %n : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<?x2x2x32xbf16>, %i: tensor<?x2xi32>) -> tensor<?x2x16xbf16> {
  // expected-error @+1 {{expects the input to be [T, K] or [T, k, K], got rank 4}}
  %y = moe.expert_linear %x, %i, @w1 : tensor<?x2x2x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  return %y : tensor<?x2x16xbf16>
}

// -----

func.func @f(%x: tensor<?x32xbf16>, %i: tensor<?x2xi32>) -> tensor<?x3x16xbf16> {
  // expected-error @+1 {{expects the result's slots to be 2, got 3}}
  %y = moe.expert_linear %x, %i, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x3x16xbf16>
  return %y : tensor<?x3x16xbf16>
}

// -----

func.func @f(%x: tensor<?x3x16xbf16>, %i: tensor<?x2xi32>) -> tensor<?x2x32xbf16> {
  // expected-error @+1 {{expects the input's slots to be 2, got 3}}
  %y = moe.expert_linear %x, %i, @w2 : tensor<?x3x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  return %y : tensor<?x2x32xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "q"}
func.func @f(%x: tensor<?x32xbf16>, %i: tensor<?x2xi32>) -> tensor<?x2x16xbf16> {
  // expected-error @+1 {{expects @q to be a per-expert !moe.qweight, got '!moe.qweight<32x16, bits = 4, group = 16, scale = f16>'}}
  %y = moe.expert_linear %x, %i, @q : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  return %y : tensor<?x2x16xbf16>
}

// -----

func.func @f(%d: tensor<?x2x32xbf16>, %w: tensor<?x3xf32>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects the weights' slots to be 2, got 3}}
  %y = moe.combine %d, %w : tensor<?x2x32xbf16>, tensor<?x3xf32> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

func.func @f(%h: tensor<?x32xbf16>) -> tensor<2x32xbf16> {
  // expected-error @+1 {{expects the result's rows to be 1, got 2}}
  %l = moe.take_last %h : tensor<?x32xbf16> -> tensor<2x32xbf16>
  return %l : tensor<2x32xbf16>
}

// -----

moe.weight @lm_head : !moe.dense_weight<64x32xbf16> {tensor = "lm_head.weight"}
func.func @f(%h: tensor<?x32xbf16>) -> tensor<?x63xf32> {
  // expected-error @+1 {{expects @lm_head to have shape [63, 32] (vocab x hidden), got [64, 32]}}
  %l = moe.lm_head %h, @lm_head : tensor<?x32xbf16> -> tensor<?x63xf32>
  return %l : tensor<?x63xf32>
}

// -----

func.func @f(%l: tensor<4x64xf32>, %t: tensor<3xf32>, %p: tensor<4xf32>, %s: tensor<4xi64>) -> tensor<4xi32> {
  // expected-error @+1 {{expects the number of temperatures to be 4, got 3}}
  %i = moe.sample %l, %t, %p, %s : tensor<4x64xf32>, tensor<3xf32>, tensor<4xf32>, tensor<4xi64> -> tensor<4xi32>
  return %i : tensor<4xi32>
}

// -----

moe.weight @router : !moe.dense_weight<4x32xbf16> {tensor = "g"}
moe.weight @bias : !moe.dense_weight<4xf32> {tensor = "b"}
func.func @f(%x: tensor<?x32xbf16>) -> (tensor<?x6xf32>, tensor<?x6xi32>) {
  // expected-error @+1 {{expects k <= the number of experts 4, got 6}}
  %w, %i = moe.route_topk %x, @router, @bias {k = 6 : i64} : tensor<?x32xbf16> -> tensor<?x6xf32>, tensor<?x6xi32>
  return %w, %i : tensor<?x6xf32>, tensor<?x6xi32>
}

// -----

func.func @f(%x: tensor<?x32xbf16>) -> (tensor<?x2xf32>, tensor<?x3xi32>) {
  // expected-error @+1 {{expects the ids' width (k) to be 2, got 3}}
  %w, %i = moe.route_topk %x, @router, @bias {k = 2 : i64} : tensor<?x32xbf16> -> tensor<?x2xf32>, tensor<?x3xi32>
  return %w, %i : tensor<?x2xf32>, tensor<?x3xi32>
}

// -----

func.func @f(%x: tensor<?x32xbf16>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects one result per weight and at least one weight, got 2 weight(s) and 1 result(s)}}
  %y = moe.dequant_gemm %x, [@q, @k] : tensor<?x32xbf16> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "q"}
moe.weight @k : !moe.qweight<32x16, bits = 4, group = 32, scale = f16> {tensor = "k"}
func.func @f(%x: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  // expected-error @+1 {{expects all weights to share group size and scale dtype (16, 'f16'), got 32, 'f16' for @k}}
  %q, %k = moe.dequant_gemm %x, [@q, @k] : tensor<?x32xbf16> -> tensor<?x32xbf16>, tensor<?x16xbf16>
  return %q, %k : tensor<?x32xbf16>, tensor<?x16xbf16>
}

// -----

moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "e.{E}.w1"}
moe.weight @w3 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "e.{E}.w3"}
moe.weight @w2 : !moe.qweight<8x16x32, bits = 4, group = 16, scale = f16> {tensor = "e.{E}.w2"}
func.func @f(%x: tensor<?x32xbf16>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects w1, w3 and w2 to cover the same number of experts (4), got 4 and 8}}
  %y = moe.expert_ffn %x, %w, %i gate(@w1) up(@w3) down(@w2) : tensor<?x32xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

func.func @f(%x: tensor<?x32xbf16>, %w: tensor<?x2xf32>, %i: tensor<?x3xi32>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{expects the ids' width to be 2, got 3}}
  %y = moe.expert_ffn %x, %w, %i gate(@w1) up(@w3) down(@w2) : tensor<?x32xbf16>, tensor<?x2xf32>, tensor<?x3xi32> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @n : !moe.dense_weight<32xbf16> {tensor = "n"}
func.func @f(%a: tensor<?x32xbf16>, %b: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x32xbf16>) {
  // expected-error @+1 {{expects eps > 0, got -1}}
  %s, %n = moe.add_rms_norm %a, %b, @n {eps = -1.0 : f32} : tensor<?x32xbf16>
  return %s, %n : tensor<?x32xbf16>, tensor<?x32xbf16>
}
