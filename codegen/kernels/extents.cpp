#include "codegen/kernels/extents.h"

#include <algorithm>
#include <initializer_list>
#include <limits>

namespace mm::kernels {

namespace {

constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

// Element sizes by the names kinds.def gives them.
struct Elem {
  const char* name;
  uint64_t bytes;
};
constexpr Elem kBf16{"bf16", 2}, kF16{"f16", 2}, kF32{"f32", 4}, kI32{"i32", 4}, kU32{"u32", 4},
    kU64{"u64", 8}, kFp8{"fp8", 1};
// WDT, OUT and KVDT select a dtype by its abi.h code (0 bf16, 1 f16, 2 f32, 3 fp8 e4m3).
Elem dtype(int64_t code) {
  switch (code) {
    case 0: return kBf16;
    case 1: return kF16;
    case 2: return kF32;
    default: return kFp8;
  }
}

// A dense array of `dims` elements: its byte size (saturating; a negative dim counts as 0, which
// the parameter ranges already exclude) and its shape for messages.
SlotExtent array(Elem e, std::initializer_list<int64_t> dims) {
  SlotExtent s;
  s.what = SlotExtent::BYTES;
  s.elem = e.name;
  uint64_t n = e.bytes;
  std::string shape(1, '[');
  bool first = true;
  for (int64_t d : dims) {
    const uint64_t u = d > 0 ? static_cast<uint64_t>(d) : 0;
    if (n != kSaturated && __builtin_mul_overflow(n, u, &n)) n = kSaturated;
    if (!first) shape += ", ";
    shape += std::to_string(d);
    first = false;
  }
  shape += "] ";
  shape += e.name;
  s.shape = std::move(shape);
  s.bytes = n;
  return s;
}

// One block of a KV pool ([blocks, BLOCK, NKV, D] of KVDT) or of its scales ([blocks, BLOCK, NKV]
// f32).
SlotExtent kv_pool(int which, int64_t block, int64_t nkv, int64_t d, int64_t kvdt) {
  SlotExtent s = which < 2 ? array(dtype(kvdt), {block, nkv, d}) : array(kF32, {block, nkv});
  s.what = SlotExtent::KV;
  s.kv = which;
  s.shape = "[blocks, " + s.shape.substr(1);
  return s;
}

// Saturating products for the dims inside a shape ("T*TOPK", "NQ*D + 2*NKV*D").
int64_t mul(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}
// Parsed parameters have positive divisors; a default-constructed struct has zeros.
int64_t div(int64_t a, int64_t b) { return b > 0 ? a / b : 0; }
int64_t add(int64_t a, int64_t b) {
  int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

// The block table: one row of MAX_BLOCKS entries per sequence slot.
SlotExtent block_tables(const CallBounds& b, int64_t max_blocks) { return array(kI32, {b.seqs, max_blocks}); }

// The largest T * W(T) over the calls a program may make (ATTENTION_DECODE's partial rows): W
// shrinks as T grows, so the maximum is not always at the largest T. Past T = 256, W(T) = 1.
int64_t decode_partial_rows(int64_t max_t, int64_t splits) {
  int64_t rows = max_t;
  for (int64_t t = 1; t <= std::min<int64_t>(max_t, 256); ++t) rows = std::max(rows, t * decode_splits(t, splits));
  return rows;
}

}  // namespace

int64_t decode_splits(int64_t T, int64_t splits) {
  if (T <= 0) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(splits, (256 + T - 1) / T));
}

// The table: for each kind, its slots in kinds.def order with the shape kinds.def gives them.
// Every shape is derivable from the parameters and the call bounds except where noted.
std::vector<SlotExtent> slot_extents(Kind kind, const KernelParams& params, const CallBounds& b) {
  static_assert(kKindCount == 14, "a new kernel kind needs its operand extents here");
  std::vector<SlotExtent> s;
  const int64_t T = b.T, R = b.R;
  switch (kind) {
    case Kind::EMBED: {
      const auto& p = std::get<EmbedParams>(params);
      s = {array(kI32, {T}), array(dtype(p.WDT), {p.V, p.H}), array(kBf16, {T, p.H})};
      break;
    }
    case Kind::RMS_NORM: {
      const auto& p = std::get<RmsNormParams>(params);
      // x and r: "[*, N]", the call's T rows (GATHER picks R of them through `rows`, whose
      // values the runtime writes: logit rows < T).
      s = {array(kBf16, {T, p.N}), array(kBf16, {T, p.N}), array(dtype(p.WDT), {p.N}),
           array(kI32, {R}), array(kBf16, {p.GATHER ? R : T, p.N})};
      break;
    }
    case Kind::GEMM_W4: {
      const auto& p = std::get<GemmW4Params>(params);
      const int64_t M = p.MDIM == 1 ? R : T;
      s = {array(kBf16, {M, p.K}), array(kU32, {div(p.K, 8), p.N}), array(kF16, {div(p.K, p.G), p.N}),
           array(dtype(p.OUT), {M, p.N})};
      break;
    }
    case Kind::GEMM_DENSE: {
      const auto& p = std::get<GemmDenseParams>(params);
      const int64_t M = p.MDIM == 1 ? R : T;
      s = {array(kBf16, {M, p.K}), array(dtype(p.WDT), {p.N, p.K}), array(dtype(p.OUT), {M, p.N})};
      break;
    }
    case Kind::QK_NORM_ROPE_KV: {
      const auto& p = std::get<QkNormRopeKvParams>(params);
      const int64_t qn = mul(p.NQ, p.D), kn = mul(p.NKV, p.D);
      s = {array(kBf16, {T, add(qn, mul(2, kn))}), array(dtype(p.WDT), {qn}), array(dtype(p.WDT), {kn}),
           array(kI32, {T}), array(kI32, {T}), block_tables(b, p.MAX_BLOCKS),
           kv_pool(0, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(1, p.BLOCK, p.NKV, p.D, p.KVDT),
           kv_pool(2, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(3, p.BLOCK, p.NKV, p.D, p.KVDT),
           array(kBf16, {T, qn}), array(kF32, {T, 2})};
      break;
    }
    case Kind::ATTENTION: {
      const auto& p = std::get<AttentionParams>(params);
      const int64_t qn = mul(p.NQ, p.D);
      s = {array(kBf16, {T, qn}), array(kI32, {T}), array(kI32, {T}), block_tables(b, p.MAX_BLOCKS),
           kv_pool(0, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(1, p.BLOCK, p.NKV, p.D, p.KVDT),
           kv_pool(2, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(3, p.BLOCK, p.NKV, p.D, p.KVDT),
           array(kBf16, {T, qn})};
      break;
    }
    case Kind::ATTENTION_DECODE: {
      const auto& p = std::get<AttentionDecodeParams>(params);
      const int64_t qn = mul(p.NQ, p.D);
      s = {array(kBf16, {T, qn}), array(kI32, {T}), array(kI32, {T}), block_tables(b, p.MAX_BLOCKS),
           kv_pool(0, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(1, p.BLOCK, p.NKV, p.D, p.KVDT),
           kv_pool(2, p.BLOCK, p.NKV, p.D, p.KVDT), kv_pool(3, p.BLOCK, p.NKV, p.D, p.KVDT),
           array(kF32, {decode_partial_rows(T, p.SPLITS), p.NQ, add(p.D, 2)}), array(kBf16, {T, qn})};
      break;
    }
    case Kind::ROUTE_TOPK: {
      const auto& p = std::get<RouteTopkParams>(params);
      // Slot 0 is x [T, H] bf16 with the fused router GEMM, else the logits alias [T, E] f32.
      s = {p.FUSED_GEMM ? array(kBf16, {T, p.H}) : array(kF32, {T, p.E}), array(dtype(p.WDT), {p.E, p.H}),
           array(kF32, {p.E}), array(kI32, {T, p.TOPK}), array(kF32, {T, p.TOPK})};
      break;
    }
    case Kind::MOE_ALIGN: {
      const auto& p = std::get<MoeAlignParams>(params);
      s = {array(kI32, {T, p.TOPK}), array(kI32, {add(p.E, 1)}), array(kI32, {mul(T, p.TOPK)})};
      break;
    }
    case Kind::MOE_W13: {
      const auto& p = std::get<MoeW13Params>(params);
      const int64_t slots = mul(T, p.TOPK);
      s = {array(kBf16, {T, p.H}), array(kU32, {p.E, div(p.H, 8), mul(2, p.I)}),
           array(kF16, {p.E, div(p.H, p.G), mul(2, p.I)}), array(kI32, {T, p.TOPK}),
           array(kI32, {add(p.E, 1)}), array(kI32, {slots}), array(kBf16, {slots, p.I})};
      break;
    }
    case Kind::MOE_W2: {
      const auto& p = std::get<MoeW2Params>(params);
      const int64_t slots = mul(T, p.TOPK);
      s = {array(kBf16, {slots, p.I}), array(kU32, {p.E, div(p.I, 8), p.H}), array(kF16, {p.E, div(p.I, p.G), p.H}),
           array(kI32, {T, p.TOPK}), array(kF32, {T, p.TOPK}), array(kI32, {add(p.E, 1)}),
           array(kI32, {slots}), p.COMBINE ? array(kBf16, {T, p.H}) : array(kF32, {slots, p.H})};
      break;
    }
    case Kind::MOE_COMBINE: {
      const auto& p = std::get<MoeCombineParams>(params);
      s = {array(kF32, {mul(T, p.TOPK), p.H}), array(kBf16, {T, p.H}), array(kI32, {T, p.TOPK})};
      break;
    }
    case Kind::SAMPLE: {
      const auto& p = std::get<SampleParams>(params);
      s = {array(kF32, {R, p.V}), array(kF32, {R}), array(kI32, {R}), array(kF32, {R}), array(kU64, {R}),
           array(kI32, {R})};
      break;
    }
    case Kind::ALL_REDUCE: {
      const auto& p = std::get<AllReduceParams>(params);
      s = {array(dtype(p.DT), {p.MDIM == 1 ? R : T, p.N})};
      break;
    }
    case Kind::COUNT:
      break;
  }
  for (size_t i = 0; i < s.size(); ++i)
    if (!slot_present(kind, params, static_cast<int>(i))) s[i] = SlotExtent{};
  return s;
}

}  // namespace mm::kernels
