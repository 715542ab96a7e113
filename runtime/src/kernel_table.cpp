#include "runtime/src/kernel_table.h"

#include <cmath>
#include <iterator>
#include <map>

namespace mm::rt {

namespace {

using plan::KernelKind;

// Named parameters of one KernelDef, with checked access.
class ParamReader {
 public:
  ParamReader(const plan::KernelDef& k, const std::string& where) : where_(where) {
    if (k.params())
      for (const plan::ParamDef* p : *k.params()) values_[p->name()->str()] = p;
  }
  // An integer parameter in [lo, hi].
  int64_t i(const char* name, int64_t lo, int64_t hi) {
    const plan::ParamDef* p = find(name);
    if (!p) return lo;
    if (p->i() < lo || p->i() > hi) {
      fail("parameter " + std::string(name) + " = " + std::to_string(p->i()) +
           " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return lo;
    }
    return p->i();
  }
  // A positive finite floating parameter (epsilon, theta).
  double f(const char* name) {
    const plan::ParamDef* p = find(name);
    if (!p) return 1.0;
    if (!std::isfinite(p->f()) || p->f() <= 0.0) {
      fail("parameter " + std::string(name) + " = " + std::to_string(p->f()) +
           " must be a positive finite number");
      return 1.0;
    }
    return p->f();
  }
  // A 16-bit weight dtype code (bf16 or f16).
  int64_t wdt(const char* name) {
    int64_t v = i(name, MM_DT_BF16, MM_DT_F16);
    return v;
  }
  int64_t out_dt(const char* name) {
    int64_t v = i(name, MM_DT_BF16, MM_DT_F32);
    if (v == MM_DT_F16) fail(std::string("parameter ") + name + " = 1 (f16): expected 0 (bf16) or 2 (f32)");
    return v;
  }
  int64_t kv_dt(const char* name) {
    int64_t v = i(name, MM_DT_BF16, MM_DT_FP8E4M3);
    if (v != MM_DT_BF16 && v != MM_DT_FP8E4M3)
      fail(std::string("parameter ") + name + " = " + std::to_string(v) +
           ": expected 0 (bf16) or 3 (fp8 e4m3)");
    return v;
  }
  void require(bool cond, const std::string& what) {
    if (!cond) fail(what);
  }
  bool ok() const { return error_.empty(); }
  Error error() const { return Error::bad_input(where_ + ": " + error_); }

 private:
  const plan::ParamDef* find(const char* name) {
    auto it = values_.find(name);
    if (it == values_.end()) {
      fail("missing parameter " + std::string(name));
      return nullptr;
    }
    return it->second;
  }
  void fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
  }
  std::string where_, error_;
  std::map<std::string, const plan::ParamDef*> values_;
};

constexpr int64_t kBig = int64_t{1} << 40;  // generous bound for sizes; catches negatives

template <class P>
P& get(RefParams& v) {
  return std::get<P>(v);
}

RefParams parse_embed(ParamReader& r) {
  ref::EmbedParams p;
  p.V = r.i("V", 1, kBig);
  p.H = r.i("H", 1, kBig);
  p.WDT = r.wdt("WDT");
  return p;
}
RefParams parse_rms_norm(ParamReader& r) {
  ref::RmsNormParams p;
  p.N = r.i("N", 1, kBig);
  p.EPS = r.f("EPS");
  p.WDT = r.wdt("WDT");
  p.RESIDUAL = r.i("RESIDUAL", 0, 1);
  p.GATHER = r.i("GATHER", 0, 1);
  return p;
}
RefParams parse_gemm_w4(ParamReader& r) {
  ref::GemmW4Params p;
  p.K = r.i("K", 1, kBig);
  p.N = r.i("N", 1, kBig);
  p.G = r.i("G", 8, kBig);
  p.OUT = r.out_dt("OUT");
  p.VARIANT = r.i("VARIANT", 0, 1);
  p.MDIM = r.i("MDIM", 0, 1);
  r.require(p.G % 8 == 0 && p.K % p.G == 0,
            "K = " + std::to_string(p.K) + " must be a multiple of G = " + std::to_string(p.G) +
                " (itself a multiple of 8)");
  return p;
}
RefParams parse_gemm_dense(ParamReader& r) {
  ref::GemmDenseParams p;
  p.K = r.i("K", 1, kBig);
  p.N = r.i("N", 1, kBig);
  p.WDT = r.wdt("WDT");
  p.OUT = r.out_dt("OUT");
  p.MDIM = r.i("MDIM", 0, 1);
  return p;
}
RefParams parse_qk_norm_rope_kv(ParamReader& r) {
  ref::QkNormRopeKvParams p;
  p.NQ = r.i("NQ", 1, kBig);
  p.NKV = r.i("NKV", 1, kBig);
  p.D = r.i("D", 1, kBig);
  p.DR = r.i("DR", 0, kBig);
  p.THETA = r.f("THETA");
  p.EPS = r.f("EPS");
  p.WDT = r.wdt("WDT");
  p.KVDT = r.kv_dt("KVDT");
  p.BLOCK = r.i("BLOCK", 1, kBig);
  p.MAX_BLOCKS = r.i("MAX_BLOCKS", 1, kBig);
  r.require(p.DR <= p.D && p.DR % 2 == 0,
            "DR = " + std::to_string(p.DR) + " must be even and <= D = " + std::to_string(p.D));
  r.require(p.NQ % p.NKV == 0, "NQ must be a multiple of NKV");
  return p;
}
RefParams parse_attention(ParamReader& r) {
  ref::AttentionParams p;
  p.NQ = r.i("NQ", 1, kBig);
  p.NKV = r.i("NKV", 1, kBig);
  p.D = r.i("D", 1, kBig);
  p.KVDT = r.kv_dt("KVDT");
  p.BLOCK = r.i("BLOCK", 1, kBig);
  p.MAX_BLOCKS = r.i("MAX_BLOCKS", 1, kBig);
  p.VARIANT = r.i("VARIANT", 0, 2);  // 2: the split-K combine launch
  p.SPLITS = r.i("SPLITS", 1, kBig);
  r.require(p.NQ % p.NKV == 0, "NQ must be a multiple of NKV");
  return p;
}
RefParams parse_route_topk(ParamReader& r) {
  ref::RouteTopkParams p;
  p.E = r.i("E", 1, kBig);
  p.TOPK = r.i("TOPK", 1, kBig);
  p.H = r.i("H", 1, kBig);
  p.WDT = r.wdt("WDT");
  p.FUSED_GEMM = r.i("FUSED_GEMM", 0, 1);
  r.require(p.TOPK <= p.E, "TOPK must be <= E");
  return p;
}
RefParams parse_moe_align(ParamReader& r) {
  ref::MoeAlignParams p;
  p.E = r.i("E", 1, kBig);
  p.TOPK = r.i("TOPK", 1, kBig);
  return p;
}
RefParams parse_moe_w13(ParamReader& r) {
  ref::MoeW13Params p;
  p.H = r.i("H", 1, kBig);
  p.I = r.i("I", 1, kBig);
  p.E = r.i("E", 1, kBig);
  p.TOPK = r.i("TOPK", 1, kBig);
  p.G = r.i("G", 8, kBig);
  p.GROUPED = r.i("GROUPED", 0, 1);
  r.require(p.G % 8 == 0 && p.H % p.G == 0, "H must be a multiple of G (a multiple of 8)");
  return p;
}
RefParams parse_moe_w2(ParamReader& r) {
  ref::MoeW2Params p;
  p.H = r.i("H", 1, kBig);
  p.I = r.i("I", 1, kBig);
  p.E = r.i("E", 1, kBig);
  p.TOPK = r.i("TOPK", 1, kBig);
  p.G = r.i("G", 8, kBig);
  p.GROUPED = r.i("GROUPED", 0, 1);
  p.COMBINE = r.i("COMBINE", 0, 1);
  r.require(p.G % 8 == 0 && p.I % p.G == 0, "I must be a multiple of G (a multiple of 8)");
  return p;
}
RefParams parse_moe_combine(ParamReader& r) {
  ref::MoeCombineParams p;
  p.H = r.i("H", 1, kBig);
  p.TOPK = r.i("TOPK", 1, kBig);
  return p;
}
RefParams parse_sample(ParamReader& r) {
  ref::SampleParams p;
  p.V = r.i("V", 1, kBig);
  return p;
}

struct KindEntry {
  const char* name;
  RefParams (*parse)(ParamReader&);
  int operands;  // ROUTE_TOPK: the count for FUSED_GEMM=0 (fused adds the gate operand)
  void (*run)(const RefParams&, const mm_kernel_args&);
};

#define MM_RUN(fn, P) [](const RefParams& p, const mm_kernel_args& a) { ref::fn(a, std::get<ref::P>(p)); }

constexpr KindEntry kKinds[] = {
    {"EMBED", parse_embed, 3, MM_RUN(embed_ref, EmbedParams)},
    {"RMS_NORM", parse_rms_norm, 5, MM_RUN(rms_norm_ref, RmsNormParams)},
    {"GEMM_W4", parse_gemm_w4, 4, MM_RUN(gemm_w4_ref, GemmW4Params)},
    {"GEMM_DENSE", parse_gemm_dense, 3, MM_RUN(gemm_dense_ref, GemmDenseParams)},
    {"QK_NORM_ROPE_KV", parse_qk_norm_rope_kv, 11, MM_RUN(qk_norm_rope_kv_ref, QkNormRopeKvParams)},
    {"ATTENTION", parse_attention, 10, MM_RUN(attention_ref, AttentionParams)},
    {"ROUTE_TOPK", parse_route_topk, 4, MM_RUN(route_topk_ref, RouteTopkParams)},
    {"MOE_ALIGN", parse_moe_align, 3, MM_RUN(moe_align_ref, MoeAlignParams)},
    {"MOE_W13", parse_moe_w13, 7, MM_RUN(moe_w13_ref, MoeW13Params)},
    {"MOE_W2", parse_moe_w2, 8, MM_RUN(moe_w2_ref, MoeW2Params)},
    {"MOE_COMBINE", parse_moe_combine, 2, MM_RUN(moe_combine_ref, MoeCombineParams)},
    {"SAMPLE", parse_sample, 6, MM_RUN(sample_ref, SampleParams)},
};
#undef MM_RUN
static_assert(std::size(kKinds) == static_cast<size_t>(plan::KernelKind::MAX) + 1,
              "kKinds needs one entry per KernelKind of plan.fbs");

bool known(KernelKind kind) { return static_cast<size_t>(kind) < std::size(kKinds); }

}  // namespace

std::string kind_name(plan::KernelKind kind) {
  if (!known(kind)) return "kind " + std::to_string(static_cast<int>(kind));
  return kKinds[static_cast<size_t>(kind)].name;
}

Expected<RefParams> parse_kernel_params(const plan::KernelDef& k, const std::string& where) {
  if (!known(k.kind()))
    return Error::bad_input(where + ": unknown kernel kind " +
                            std::to_string(static_cast<int>(k.kind())) +
                            " (this runtime knows 0.." +
                            std::to_string(static_cast<int>(plan::KernelKind::MAX)) + ")");
  ParamReader r(k, where + " (" + kind_name(k.kind()) + ")");
  RefParams p = kKinds[static_cast<size_t>(k.kind())].parse(r);
  if (!r.ok()) return r.error();
  return p;
}

int expected_operand_count(plan::KernelKind kind, const RefParams& params) {
  int n = kKinds[static_cast<size_t>(kind)].operands;
  if (kind == KernelKind::ROUTE_TOPK && std::get<ref::RouteTopkParams>(params).FUSED_GEMM) ++n;
  return n;
}

void run_reference(plan::KernelKind kind, const RefParams& params, const mm_kernel_args& args) {
  kKinds[static_cast<size_t>(kind)].run(params, args);
}

}  // namespace mm::rt
