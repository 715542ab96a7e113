// RUN: mm-opt %s -split-input-file --moe-fuse-add-norm | FileCheck %s

moe.weight @n : !moe.dense_weight<32xbf16> {tensor = "model.layers.0.post_attention_layernorm.weight"}

// Tests that a residual add and the norm reading it become add_rms_norm, the sum keeping its users.
// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[A:.*]]: tensor<?x32xbf16>, %[[B:.*]]: tensor<?x32xbf16>)
// CHECK-NEXT: %[[S:.*]], %[[N:.*]] = moe.add_rms_norm %[[A]], %[[B]], @n {eps = 9.99999997E-7 : f32} : tensor<?x32xbf16>
// CHECK-NEXT: return %[[S]], %[[N]]
func.func @fuse(%a: tensor<?x32xbf16>, %b: tensor<?x32xbf16>) -> (tensor<?x32xbf16>, tensor<?x32xbf16>) {
  %s = moe.add %a, %b : tensor<?x32xbf16>
  %n = moe.rms_norm %s, @n {eps = 1.0e-06 : f32} : tensor<?x32xbf16>
  return %s, %n : tensor<?x32xbf16>, tensor<?x32xbf16>
}

// -----

moe.weight @n : !moe.dense_weight<32xbf16> {tensor = "model.norm.weight"}

// Tests that a norm whose input is not an add (here the add feeds take_last first) is left alone.
// CHECK-LABEL: func.func @not_an_add
// CHECK-NOT: moe.add_rms_norm
// CHECK: moe.add
// CHECK: moe.take_last
// CHECK: moe.rms_norm
func.func @not_an_add(%a: tensor<?x32xbf16>, %b: tensor<?x32xbf16>) -> tensor<1x32xbf16> {
  %s = moe.add %a, %b : tensor<?x32xbf16>
  %l = moe.take_last %s : tensor<?x32xbf16> -> tensor<1x32xbf16>
  %n = moe.rms_norm %l, @n {eps = 1.0e-06 : f32} : tensor<1x32xbf16>
  return %n : tensor<1x32xbf16>
}
