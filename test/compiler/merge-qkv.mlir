// RUN: mm-opt %s -split-input-file --moe-merge-qkv | FileCheck %s

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @k : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.k_proj"}
moe.weight @v : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.v_proj"}
moe.weight @o : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.o_proj"}

// Tests that q, k and v GEMMs on one input merge into one dequant_gemm with three results,
// and that the o projection (another input) stays separate.
// CHECK-LABEL: func.func @qkv
// CHECK-SAME: (%[[X:.*]]: tensor<?x32xbf16>)
// CHECK-NEXT: %[[M:.*]]:3 = moe.dequant_gemm %[[X]], [@q, @k, @v] : tensor<?x32xbf16> -> tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>
// CHECK-NEXT: %[[O:.*]] = moe.dequant_gemm %[[M]]#0, [@o]
// CHECK-NEXT: return %[[O]], %[[M]]#1, %[[M]]#2
func.func @qkv(%x: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>) {
  %q = moe.dequant_gemm %x, [@q] : tensor<?x32xbf16> -> tensor<?x32xbf16>
  %k = moe.dequant_gemm %x, [@k] : tensor<?x32xbf16> -> tensor<?x16xbf16>
  %v = moe.dequant_gemm %x, [@v] : tensor<?x32xbf16> -> tensor<?x16xbf16>
  %o = moe.dequant_gemm %q, [@o] : tensor<?x32xbf16> -> tensor<?x32xbf16>
  return %o, %k, %v : tensor<?x32xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @k : !moe.qweight<32x16, bits = 4, group = 32, scale = f16> {tensor = "model.layers.0.self_attn.k_proj"}

// Tests that GEMMs whose weights have different group sizes (one kernel cannot run both) stay apart.
// CHECK-LABEL: func.func @different_groups
// CHECK: moe.dequant_gemm %{{.*}}, [@q]
// CHECK: moe.dequant_gemm %{{.*}}, [@k]
func.func @different_groups(%x: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  %q = moe.dequant_gemm %x, [@q] : tensor<?x32xbf16> -> tensor<?x32xbf16>
  %k = moe.dequant_gemm %x, [@k] : tensor<?x32xbf16> -> tensor<?x16xbf16>
  return %q, %k : tensor<?x32xbf16>, tensor<?x16xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @k : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.k_proj"}

// Tests that GEMMs on different inputs are not merged.
// CHECK-LABEL: func.func @different_inputs
// CHECK: moe.dequant_gemm %{{.*}}, [@q]
// CHECK: moe.dequant_gemm %{{.*}}, [@k]
func.func @different_inputs(%x: tensor<?x32xbf16>, %y: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x16xbf16>) {
  %q = moe.dequant_gemm %x, [@q] : tensor<?x32xbf16> -> tensor<?x32xbf16>
  %k = moe.dequant_gemm %y, [@k] : tensor<?x32xbf16> -> tensor<?x16xbf16>
  return %q, %k : tensor<?x32xbf16>, tensor<?x16xbf16>
}
