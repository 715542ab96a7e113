// RUN: mm-opt %s -split-input-file --moe-fuse-dequant-gemm | FileCheck %s

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}
moe.weight @o : !moe.qweight<32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.o_proj"}

// Tests that dequant + matmul and w4_linear both become dequant_gemm, and the dequant goes.
// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[X:.*]]: tensor<?x32xbf16>)
// CHECK-NOT: moe.dequant @
// CHECK: %[[Y:.*]] = moe.dequant_gemm %[[X]], [@q] : tensor<?x32xbf16> -> tensor<?x32xbf16>
// CHECK: %[[Z:.*]] = moe.dequant_gemm %[[Y]], [@o] : tensor<?x32xbf16> -> tensor<?x16xbf16>
// CHECK-NEXT: return %[[Z]]
func.func @fuse(%x: tensor<?x32xbf16>) -> tensor<?x16xbf16> {
  %w = moe.dequant @q : tensor<32x32xbf16>
  %y = moe.matmul %x, %w : tensor<?x32xbf16>, tensor<32x32xbf16> -> tensor<?x32xbf16>
  %z = moe.w4_linear %y, @o : tensor<?x32xbf16> -> tensor<?x16xbf16>
  return %z : tensor<?x16xbf16>
}

// -----

// Tests that a matmul with a matrix that is not a dequant (a dense argument) is left alone.
// CHECK-LABEL: func.func @dense_matrix
// CHECK-NOT: moe.dequant_gemm
// CHECK: moe.matmul
func.func @dense_matrix(%x: tensor<?x32xbf16>, %w: tensor<32x8xbf16>) -> tensor<?x8xbf16> {
  %y = moe.matmul %x, %w : tensor<?x32xbf16>, tensor<32x8xbf16> -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

moe.weight @q : !moe.qweight<32x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.self_attn.q_proj"}

// Tests that a dequantized matrix with another user stays for that user after fusion.
// CHECK-LABEL: func.func @shared_dequant
// CHECK: %[[W:.*]] = moe.dequant @q
// CHECK: moe.dequant_gemm %{{.*}}, [@q]
// CHECK: return %{{.*}}, %[[W]]
func.func @shared_dequant(%x: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<32x32xbf16>) {
  %w = moe.dequant @q : tensor<32x32xbf16>
  %y = moe.matmul %x, %w : tensor<?x32xbf16>, tensor<32x32xbf16> -> tensor<?x32xbf16>
  return %y, %w : tensor<?x32xbf16>, tensor<32x32xbf16>
}
