// RUN: mm-opt %s -split-input-file --exec-plan-memory -verify-diagnostics | FileCheck %s

// Tests that buffers with disjoint live ranges share bytes and overlapping ones do not.
exec.kernel @k MOE_COMBINE {block = array<i64: 256, 1, 1>, params = {H = 8 : i64, TOPK = 1 : i64}, smem = 0 : i64}
// CHECK-LABEL: exec.program @p
// CHECK-SAME: arena_bytes = 512
// CHECK: exec.buffer @a {offset = 0 : i64, size = 100 : i64}
// CHECK: exec.buffer @b {offset = 256 : i64, size = 100 : i64}
// CHECK: exec.buffer @c {offset = 0 : i64, size = 100 : i64}
exec.program @p attributes {max_tokens = 1 : i64} {
  exec.buffer @a {size = 100 : i64}
  exec.buffer @b {size = 100 : i64}
  exec.buffer @c {size = 100 : i64}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.buf<"a">, #exec.buf<"b">, #exec.none]
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.buf<"b">, #exec.buf<"c">, #exec.none]
}

// -----

// Tests that buffers are placed largest first and a small one goes past every live conflict.
exec.kernel @k MOE_COMBINE {block = array<i64: 256, 1, 1>, params = {H = 8 : i64, TOPK = 1 : i64}, smem = 0 : i64}
// CHECK-LABEL: exec.program @q
// CHECK-SAME: arena_bytes = 1280
// CHECK: exec.buffer @big {offset = 0 : i64, size = 1024 : i64}
// CHECK: exec.buffer @small {offset = 1024 : i64, size = 10 : i64}
// CHECK: exec.buffer @later {offset = 0 : i64, size = 512 : i64}
exec.program @q attributes {max_tokens = 1 : i64} {
  exec.buffer @big {size = 1024 : i64}
  exec.buffer @small {size = 10 : i64}
  exec.buffer @later {size = 512 : i64}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.buf<"big">, #exec.buf<"small">, #exec.none]
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.buf<"small">, #exec.buf<"later">, #exec.none]
}

// -----

// Tests that an unused buffer is an error.
exec.kernel @k MOE_COMBINE {block = array<i64: 256, 1, 1>, params = {H = 8 : i64, TOPK = 1 : i64}, smem = 0 : i64}
exec.program @r attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{is never used by a launch of program 'r'}}
  exec.buffer @dead {size = 100 : i64}
}
