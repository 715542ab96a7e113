// RUN: mm-opt %s -split-input-file --moe-fuse-routing | FileCheck %s

moe.weight @gate : !moe.dense_weight<4x32xbf16> {tensor = "model.layers.0.block_sparse_moe.gate.weight"}
moe.weight @bias : !moe.dense_weight<4xf32> {tensor = "model.layers.0.block_sparse_moe.e_score_correction_bias"}

// Tests that the whole router chain becomes one route_topk whose ids replace the top-k's.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[X:.*]]: tensor<?x32xbf16>)
// CHECK-NEXT: %[[W:.*]], %[[IDS:.*]] = moe.route_topk %[[X]], @gate, @bias {k = 2 : i64} : tensor<?x32xbf16> -> tensor<?x2xf32>, tensor<?x2xi32>
// CHECK-NEXT: return %[[W]], %[[IDS]]
func.func @chain(%x: tensor<?x32xbf16>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %l = moe.linear %x, @gate : tensor<?x32xbf16> -> tensor<?x4xf32>
  %s = moe.sigmoid %l : tensor<?x4xf32>
  %c = moe.add_bias %s, @bias : tensor<?x4xf32>
  %i = moe.topk %c {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi32>
  %g = moe.gather %s, %i : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
  %w = moe.renormalize %g : tensor<?x2xf32>
  return %w, %i : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

moe.weight @gate : !moe.dense_weight<4x32xbf16> {tensor = "model.layers.0.block_sparse_moe.gate.weight"}
moe.weight @bias : !moe.dense_weight<4xf32> {tensor = "model.layers.0.block_sparse_moe.e_score_correction_bias"}

// Tests that a chain gathering the biased scores (weights must be unbiased) is not fused.
// CHECK-LABEL: func.func @biased_weights
// CHECK-NOT: moe.route_topk
// CHECK: moe.gather
// CHECK: moe.renormalize
func.func @biased_weights(%x: tensor<?x32xbf16>) -> tensor<?x2xf32> {
  %l = moe.linear %x, @gate : tensor<?x32xbf16> -> tensor<?x4xf32>
  %s = moe.sigmoid %l : tensor<?x4xf32>
  %c = moe.add_bias %s, @bias : tensor<?x4xf32>
  %i = moe.topk %c {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi32>
  %g = moe.gather %c, %i : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
  %w = moe.renormalize %g : tensor<?x2xf32>
  return %w : tensor<?x2xf32>
}

// -----

moe.weight @gate : !moe.dense_weight<4x32xbf16> {tensor = "model.layers.0.block_sparse_moe.gate.weight"}
moe.weight @bias : !moe.dense_weight<4xf32> {tensor = "model.layers.0.block_sparse_moe.e_score_correction_bias"}

// Tests that the chain stays when the sigmoid scores are also used outside the router.
// CHECK-LABEL: func.func @scores_escape
// CHECK-NOT: moe.route_topk
// CHECK: moe.sigmoid
// CHECK: moe.renormalize
func.func @scores_escape(%x: tensor<?x32xbf16>) -> (tensor<?x2xf32>, tensor<?x4xf32>) {
  %l = moe.linear %x, @gate : tensor<?x32xbf16> -> tensor<?x4xf32>
  %s = moe.sigmoid %l : tensor<?x4xf32>
  %c = moe.add_bias %s, @bias : tensor<?x4xf32>
  %i = moe.topk %c {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi32>
  %g = moe.gather %s, %i : tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x2xf32>
  %w = moe.renormalize %g : tensor<?x2xf32>
  return %w, %s : tensor<?x2xf32>, tensor<?x4xf32>
}
