// RUN: mm-opt %s -split-input-file --moe-fuse-expert-ffn | FileCheck %s

moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
moe.weight @w3 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w3"}
moe.weight @w2 : !moe.qweight<4x16x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w2"}

// Tests that gate/up GEMMs, silu*mul, the down GEMM and the combine become one expert_ffn.
// CHECK-LABEL: func.func @ffn
// CHECK-SAME: (%[[X:.*]]: tensor<?x32xbf16>, %[[W:.*]]: tensor<?x2xf32>, %[[I:.*]]: tensor<?x2xi32>)
// CHECK-NEXT: %[[Y:.*]] = moe.expert_ffn %[[X]], %[[W]], %[[I]] gate(@w1) up(@w3) down(@w2)
// CHECK-NEXT: return %[[Y]]
func.func @ffn(%x: tensor<?x32xbf16>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> tensor<?x32xbf16> {
  %g = moe.expert_linear %x, %i, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %u = moe.expert_linear %x, %i, @w3 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %a = moe.silu_mul %g, %u : tensor<?x2x16xbf16>
  %d = moe.expert_linear %a, %i, @w2 : tensor<?x2x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  %y = moe.combine %d, %w : tensor<?x2x32xbf16>, tensor<?x2xf32> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
moe.weight @w3 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w3"}
moe.weight @w2 : !moe.qweight<4x16x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w2"}

// Tests that GEMMs routed by different ids are not fused.
// CHECK-LABEL: func.func @different_ids
// CHECK-NOT: moe.expert_ffn
// CHECK: moe.combine
func.func @different_ids(%x: tensor<?x32xbf16>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>, %j: tensor<?x2xi32>) -> tensor<?x32xbf16> {
  %g = moe.expert_linear %x, %i, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %u = moe.expert_linear %x, %j, @w3 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %a = moe.silu_mul %g, %u : tensor<?x2x16xbf16>
  %d = moe.expert_linear %a, %i, @w2 : tensor<?x2x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  %y = moe.combine %d, %w : tensor<?x2x32xbf16>, tensor<?x2xf32> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

moe.weight @w1 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w1"}
moe.weight @w3 : !moe.qweight<4x32x16, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w3"}
moe.weight @w2 : !moe.qweight<4x16x32, bits = 4, group = 16, scale = f16> {tensor = "model.layers.0.block_sparse_moe.experts.{E}.w2"}

// Tests that the chain stays when the activation (silu*mul) is also used elsewhere.
// CHECK-LABEL: func.func @activation_escapes
// CHECK-NOT: moe.expert_ffn
// CHECK: moe.silu_mul
// CHECK: moe.combine
func.func @activation_escapes(%x: tensor<?x32xbf16>, %w: tensor<?x2xf32>, %i: tensor<?x2xi32>) -> (tensor<?x32xbf16>, tensor<?x2x16xbf16>) {
  %g = moe.expert_linear %x, %i, @w1 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %u = moe.expert_linear %x, %i, @w3 : tensor<?x32xbf16>, tensor<?x2xi32> -> tensor<?x2x16xbf16>
  %a = moe.silu_mul %g, %u : tensor<?x2x16xbf16>
  %d = moe.expert_linear %a, %i, @w2 : tensor<?x2x16xbf16>, tensor<?x2xi32> -> tensor<?x2x32xbf16>
  %y = moe.combine %d, %w : tensor<?x2x32xbf16>, tensor<?x2xf32> -> tensor<?x32xbf16>
  return %y, %a : tensor<?x32xbf16>, tensor<?x2x16xbf16>
}
