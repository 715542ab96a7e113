// RUN: mm-opt %s -split-input-file -verify-diagnostics

// Tests that an unknown load-time transform is rejected.
// expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'transform'}}
exec.weight @w f16 shuffle other {category = "other", shape = array<i64: 4>, sources = ["a"]}

// -----

// Tests that an unknown weight dtype is rejected.
// expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'dtype' [bf16, f16, f32, i32]}}
exec.weight @w f64 copy other {category = "other", shape = array<i64: 4>, sources = ["a"]}

// -----

// Tests that a weight needs a source tensor.
// expected-error @+1 {{needs at least one source tensor}}
exec.weight @w f16 copy other {category = "other", shape = array<i64: 4>, sources = []}

// -----

// Tests that weight shapes are positive.
// expected-error @+1 {{shape dims must be positive, got 0}}
exec.weight @w f16 copy other {category = "other", shape = array<i64: 0>, sources = ["a"]}

// -----

// Tests that copy takes exactly one source.
// expected-error @+1 {{transform 'copy' takes 1 source, got 2}}
exec.weight @w f16 copy other {category = "other", shape = array<i64: 4>, sources = ["a", "b"]}

// -----

// Tests that concat_n records the dim it concatenates along.
// expected-error @+1 {{transform 'concat_n' needs concat_axis}}
exec.weight @w i32 concat_n qweight {category = "attention", shape = array<i64: 4, 8>, sources = ["a", "b"]}

// -----

// Tests that the concat axis is the first or the last dim.
// expected-error @+1 {{concat_axis must be 0 or the last dim (2), got 1}}
exec.weight @w i32 concat_n qweight {category = "attention", concat_axis = 1 : i64, shape = array<i64: 4, 8, 2>, sources = ["a", "b"]}

// -----

// Tests that only concat_n has a concat axis.
// expected-error @+1 {{concat_axis is only for transform 'concat_n'}}
exec.weight @w f16 copy dense {category = "other", concat_axis = 0 : i64, shape = array<i64: 4>, sources = ["a"]}

// -----

// Tests that the fan-in is positive.
// expected-error @+1 {{fan_in must be positive, got 0}}
exec.weight @w f16 copy dense {category = "other", fan_in = 0 : i64, shape = array<i64: 4>, sources = ["a"]}

// -----

// Tests that a weight's role is one of the plan's.
// expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'role'}}
exec.weight @w f16 copy gate {category = "other", shape = array<i64: 4>, sources = ["a"]}

// -----

// Tests that stack_experts_w13 takes w1/w3 pairs.
// expected-error @+1 {{takes w1/w3 source pairs, got 3}}
exec.weight @w i32 stack_experts_w13 other {category = "experts", shape = array<i64: 4>, sources = ["a", "b", "c"]}

// -----

// Tests that kernel kinds are the registry's.
// expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'kind' [EMBED, RMS_NORM, GEMM_W4}}
exec.kernel @k GEMM_W8 {block = array<i64: 32, 1, 1>, params = {}, smem = 0 : i64}

// -----

// Tests that a kernel carries every required parameter of its kind.
// expected-error @+1 {{GEMM_W4: missing parameter K}}
exec.kernel @k GEMM_W4 {block = array<i64: 32, 1, 1>, params = {G = 128 : i64, N = 64 : i64, OUT = 0 : i64, VARIANT = 0 : i64}, smem = 0 : i64}

// -----

// Tests that parameter values are in the registry's range.
// expected-error @+1 {{EMBED: parameter WDT = 2 is out of range [0, 1]}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 2 : i64}, smem = 0 : i64}

// -----

// Tests that parameters the kind does not declare are rejected.
// expected-error @+1 {{EMBED: unknown parameter VOCAB}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, VOCAB = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}

// -----

// Tests that integer parameters are integers.
// expected-error @+1 {{EMBED: parameter H must be an integer}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8.0 : f64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}

// -----

// Tests the rules between parameters.
// expected-error @+1 {{GEMM_W4: K must be a multiple of G, itself a multiple of 8}}
exec.kernel @k GEMM_W4 {block = array<i64: 32, 1, 1>, params = {G = 128 : i64, K = 200 : i64, N = 64 : i64, OUT = 0 : i64, VARIANT = 0 : i64}, smem = 0 : i64}

// -----

// Tests that kernel params are numbers.
// expected-error @+1 {{param 'K' must be an integer or a float}}
exec.kernel @k GEMM_W4 {block = array<i64: 32, 1, 1>, params = {K = "big"}, smem = 0 : i64}

// -----

// Tests that a block has three dims.
// expected-error @+1 {{block must have 3 dims, got 2}}
exec.kernel @k EMBED {block = array<i64: 32, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}

// -----

// Tests that block dims are positive.
// expected-error @+1 {{block dims must be positive, got 0}}
exec.kernel @k EMBED {block = array<i64: 32, 0, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}

// -----

// Tests the 1024-thread block limit.
// expected-error @+1 {{block has 2048 threads, the limit is 1024}}
exec.kernel @k EMBED {block = array<i64: 1024, 2, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}

// -----

// Tests the 99 KiB shared-memory limit of sm_121.
// expected-error @+1 {{dynamic shared memory 102400 bytes is outside [0, 101376]}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 102400 : i64}

// -----

// Tests that max_tokens is positive.
// expected-error @+1 {{max_tokens must be positive, got 0}}
exec.program @p attributes {max_tokens = 0 : i64} {
}

// -----

// Tests that buffer sizes are positive.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{size must be positive, got 0}}
  exec.buffer @b {size = 0 : i64}
}

// -----

// Tests that buffer offsets are not negative.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{offset must be >= 0, got -4}}
  exec.buffer @b {offset = -4 : i64, size = 4 : i64}
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that only buffers and launches live in a program.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{is not allowed in an exec.program}}
  exec.kernel @k2 EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
}

// -----

// Tests that a launch names an exec.kernel.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{kernel 'missing' is not an exec.kernel of the module}}
  exec.launch @missing grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands []
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that a grid has three formulas.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{grid must have 3 formulas, got 1}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>] operands []
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that grid entries are #exec.dim.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{grid entries must be #exec.dim}}
  exec.launch @k grid [1, 2, 3] operands []
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that a launch has one operand per slot of its kind.
exec.program @p attributes {max_tokens = 1 : i64} {
  exec.buffer @x {size = 64 : i64}
  // expected-error @+1 {{has 2 operands, kind EMBED takes 3}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.input<"tokens">, #exec.buf<"x">]
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that a slot the kind always uses is not #exec.none.
exec.program @p attributes {max_tokens = 1 : i64} {
  exec.buffer @x {size = 64 : i64}
  // expected-error @+1 {{operand 1 (table) of EMBED must be set with these parameters, got #exec.none}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.input<"tokens">, #exec.none, #exec.buf<"x">]
}

// -----

exec.kernel @k ROUTE_TOPK {block = array<i64: 128, 1, 1>,
    params = {E = 8 : i64, FUSED_GEMM = 0 : i64, H = 64 : i64, TOPK = 2 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that a slot the parameters leave unused is #exec.none (no gate without the fused GEMV).
exec.program @p attributes {max_tokens = 1 : i64} {
  exec.buffer @x {size = 64 : i64}
  // expected-error @+1 {{operand 1 (gate) of ROUTE_TOPK must be #exec.none with these parameters}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.buf<"x">, #exec.buf<"x">, #exec.buf<"x">, #exec.buf<"x">, #exec.buf<"x">]
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that buffer operands are declared by the program.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{operand names buffer 'x' which the program does not declare}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.input<"tokens">, #exec.none, #exec.buf<"x">]
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that weight operands are declared by the module.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{operand names weight 'w' which the module does not declare}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.input<"tokens">, #exec.weight<"w">, #exec.none]
}

// -----

exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that operands are exec operand attributes.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{is not an exec operand attribute}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>] operands [#exec.input<"tokens">, 7, #exec.none]
}

// -----

// Tests that grid divisors are positive.
// expected-error @+1 {{grid formula divisor must be positive, got 0}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.dim<"T", 1, 0, 0>}, smem = 0 : i64}

// -----

// Tests that constant grid formulas have no multiplier.
// expected-error @+1 {{constant grid formula must have mul 0, got 2}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.dim<"", 2, 0, 1>}, smem = 0 : i64}

// -----

// Tests that grid formulas name a known dynamic dim.
// expected-error @+1 {{unknown dynamic dim 'Q'}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.dim<"Q", 1, 0, 1>}, smem = 0 : i64}

// -----

// Tests that grid multipliers are not negative.
// expected-error @+1 {{grid formula multiplier must be >= 0, got -1}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.dim<"T", -1, 0, 1>}, smem = 0 : i64}

// -----

// Tests that runtime inputs are known.
// expected-error @+1 {{unknown runtime input 'cookies'}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.input<"cookies">}, smem = 0 : i64}

// -----

// Tests that KV layers are not negative.
// expected-error @+1 {{KV layer must be >= 0, got -1}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.kv<-1, "k">}, smem = 0 : i64}

// -----

// Tests that KV pools are known.
// expected-error @+1 {{unknown KV pool 'q'}}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {g = #exec.kv<0, "q">}, smem = 0 : i64}

// -----

// Tests that a negative max_tokens is caught (not read as a huge unsigned value).
// expected-error @+1 {{max_tokens must be positive, got -3}}
exec.program @p attributes {max_tokens = -3 : i64} {
}

// -----

// Tests that a negative buffer size is caught.
exec.program @p attributes {max_tokens = 1 : i64} {
  // expected-error @+1 {{size must be positive, got -8}}
  exec.buffer @b {size = -8 : i64}
}

// -----

exec.weight @w bf16 copy other {category = "other", shape = array<i64: 16, 8>, sources = ["a"]}
exec.kernel @k EMBED {block = array<i64: 32, 1, 1>, params = {H = 8 : i64, V = 16 : i64, WDT = 0 : i64}, smem = 0 : i64}
// Tests that the first launch of a program cannot overlap a previous one (pdl).
exec.program @p attributes {max_tokens = 1 : i64} {
  exec.buffer @x {size = 64 : i64}
  // expected-error @+1 {{is the first launch of its program and cannot be `pdl`}}
  exec.launch @k grid [#exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>, #exec.dim<"", 0, 1, 1>]
      operands [#exec.input<"tokens">, #exec.weight<"w">, #exec.buf<"x">] {pdl}
}
