// Kernel specialization (specialize.h). Each kind: check the parameters of docs/kernels.md
// section 5, fill defaults and derived tile constants, pick block/grid, and assemble the source:
//   abi.h + common.cuh + namespace mmp { constexpr ... } + #define MM_ENTRY + [w4.cuh] + <kind>.cuh
#include "codegen/kernels/specialize.h"

#include <cinttypes>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <vector>

namespace mm::kernels {
namespace embedded {
extern const char* const abi_h;
extern const char* const common_cuh;
extern const char* const w4_cuh;
extern const char* const embed_cuh;
extern const char* const rms_norm_cuh;
extern const char* const gemm_w4_cuh;
extern const char* const gemm_dense_cuh;
extern const char* const qk_norm_rope_kv_cuh;
extern const char* const attention_cuh;
extern const char* const route_topk_cuh;
extern const char* const moe_align_cuh;
extern const char* const moe_w13_cuh;
extern const char* const moe_w2_cuh;
extern const char* const moe_combine_cuh;
extern const char* const sample_cuh;
}  // namespace embedded

namespace {

struct KindInfo {
  const char* name;
  const char* file;
  const char* const* text;
  bool uses_w4;
};

const KindInfo kKinds[] = {
    {"EMBED", "embed.cuh", &embedded::embed_cuh, false},
    {"RMS_NORM", "rms_norm.cuh", &embedded::rms_norm_cuh, false},
    {"GEMM_W4", "gemm_w4.cuh", &embedded::gemm_w4_cuh, true},
    {"GEMM_DENSE", "gemm_dense.cuh", &embedded::gemm_dense_cuh, false},
    {"QK_NORM_ROPE_KV", "qk_norm_rope_kv.cuh", &embedded::qk_norm_rope_kv_cuh, false},
    {"ATTENTION", "attention.cuh", &embedded::attention_cuh, false},
    {"ROUTE_TOPK", "route_topk.cuh", &embedded::route_topk_cuh, false},
    {"MOE_ALIGN", "moe_align.cuh", &embedded::moe_align_cuh, false},
    {"MOE_W13", "moe_w13.cuh", &embedded::moe_w13_cuh, true},
    {"MOE_W2", "moe_w2.cuh", &embedded::moe_w2_cuh, true},
    {"MOE_COMBINE", "moe_combine.cuh", &embedded::moe_combine_cuh, false},
    {"SAMPLE", "sample.cuh", &embedded::sample_cuh, false},
};
static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(Kind::COUNT),
              "one KindInfo per Kind");

constexpr int kDimT = 0, kDimR = 1;

// Parameter access with errors that name the kind and the key.
class Checker {
 public:
  Checker(Kind kind, const Params& in) : kind_(kind), p_(in) {}
  Params& out() { return p_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  int64_t i(const char* key, int64_t lo, int64_t hi) {
    auto it = p_.ints.find(key);
    if (it == p_.ints.end()) return fail(std::string("missing integer parameter ") + key), lo;
    if (it->second < lo || it->second > hi)
      return fail(std::string("parameter ") + key + " = " + std::to_string(it->second) +
                  " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"),
             lo;
    return it->second;
  }
  int64_t opt(const char* key, int64_t def, int64_t lo, int64_t hi) {
    if (!p_.ints.count(key)) p_.ints[key] = def;
    return i(key, lo, hi);
  }
  double f(const char* key, double lo, double hi) {
    double v;
    if (auto it = p_.floats.find(key); it != p_.floats.end()) {
      v = it->second;
    } else if (auto jt = p_.ints.find(key); jt != p_.ints.end()) {
      v = static_cast<double>(jt->second);  // an integral value given as int is fine
      p_.ints.erase(jt);
      p_.floats[key] = v;
    } else {
      return fail(std::string("missing float parameter ") + key), lo;
    }
    if (!(v >= lo && v <= hi)) return fail(std::string("parameter ") + key + " = " + std::to_string(v) + " is out of range"), lo;
    return v;
  }
  void require(bool cond, const std::string& what) {
    if (!cond) fail(what);
  }
  void set(const char* key, int64_t v) { p_.ints[key] = v; }

 private:
  void fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
  }
  Kind kind_;
  Params p_;
  std::string error_;
};

constexpr int64_t kBig = int64_t{1} << 30;

DimExpr cst(int64_t v) { return DimExpr{-1, 0, v, 1}; }
DimExpr dimx(int dim, int64_t mul = 1, int64_t add = 0, int64_t div = 1) { return DimExpr{dim, mul, add, div}; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Split of the decode GEMV core (w4.cuh mm_w4_gv): WK warps per block and CS blocks per thread
// block cluster share one 32-column strip and split its NG quantization groups evenly (P = WK*CS
// parts, P | NG). `items` = warps per part at batch 1 (strips x slots x warp columns). The largest
// P whose warps are all resident at once on a 132-SM H100 (16 warps per SM at <= 128 registers)
// wins: more warps keep more of the matrix in flight, residency keeps every load issued up front.
struct Split {
  int64_t wk = 1, cs = 1;
};
Split pick_split(int64_t items, int64_t ng, int64_t wn) {
  constexpr int64_t kResidentWarps = 132 * 16;
  for (int64_t p = std::min<int64_t>(ng, 64); p >= 1; --p) {
    if (ng % p != 0 || items * p > kResidentWarps) continue;
    for (int64_t wk : {8, 4, 2, 1})
      if (wk * wn <= 8 && p % wk == 0 && p / wk <= 8) return {wk, p / wk};
  }
  return {};
}

}  // namespace

std::string_view kind_name(Kind kind) {
  const auto k = static_cast<size_t>(kind);
  return k < static_cast<size_t>(Kind::COUNT) ? kKinds[k].name : "UNKNOWN";
}

std::optional<Kind> kind_from_name(std::string_view name) {
  for (size_t k = 0; k < static_cast<size_t>(Kind::COUNT); ++k)
    if (name == kKinds[k].name) return static_cast<Kind>(k);
  return std::nullopt;
}

int64_t DimExpr::eval(const int64_t* dims) const {
  const int64_t num = (dim < 0 ? 0 : mul * dims[dim]) + add;
  return div <= 0 ? 0 : (num + div - 1) / div;
}

uint64_t source_hash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string_view embedded_source(std::string_view file) {
  if (file == "abi.h") return embedded::abi_h;
  if (file == "common.cuh") return embedded::common_cuh;
  if (file == "w4.cuh") return embedded::w4_cuh;
  for (const auto& k : kKinds)
    if (file == k.file) return *k.text;
  return {};
}

Expected<Specialization> specialize(Kind kind, const Params& params) {
  if (static_cast<size_t>(kind) >= static_cast<size_t>(Kind::COUNT))
    return Error::bad_input("specialize: unknown kernel kind " + std::to_string(static_cast<int>(kind)));
  Checker c(kind, params);
  Specialization s;
  s.kind = kind;
  int threads = 256;
  std::array<DimExpr, 3> grid{cst(1), cst(1), cst(1)};
  auto wdt = [&](const char* key) { return c.i(key, 0, 1); };  // bf16 | f16
  switch (kind) {
    case Kind::EMBED: {
      c.i("V", 1, kBig);
      c.i("H", 1, kBig);
      wdt("WDT");
      grid[0] = dimx(kDimT);
      break;
    }
    case Kind::RMS_NORM: {
      const int64_t n = c.i("N", 1, 8192);  // the row lives in 32 KiB of static shared memory
      c.f("EPS", 0.0, 1.0);
      wdt("WDT");
      c.i("RESIDUAL", 0, 1);
      const int64_t gather = c.i("GATHER", 0, 1);
      (void)n;
      grid[0] = dimx(gather ? kDimR : kDimT);
      break;
    }
    case Kind::GEMM_W4: {
      const int64_t k = c.i("K", 64, kBig), n = c.i("N", 8, kBig), g = c.i("G", 64, 4096);
      const int64_t out = c.i("OUT", 0, 2);
      const int64_t variant = c.i("VARIANT", 0, 1);
      const int64_t mdim = c.opt("MDIM", 0, 0, 1);
      c.require(out != 1, "parameter OUT must be 0 (bf16) or 2 (f32)");
      c.require(g % 64 == 0, "parameter G = " + std::to_string(g) + " must be a multiple of 64");
      c.require(k % g == 0, "parameter K = " + std::to_string(k) + " must be a multiple of G = " + std::to_string(g));
      c.require(n % 8 == 0, "parameter N = " + std::to_string(n) + " must be a multiple of 8");
      const int mdimv = mdim == 0 ? kDimT : kDimR;
      // WK/CS: the decode split (set for both variants so that the source always names them;
      // variant 1 runs 8 warps, no cluster).
      const Split sp = variant == 0 && g > 0 && k % g == 0 ? pick_split((n + 31) / 32, k / g, 1) : Split{8, 1};
      c.set("WK", sp.wk);
      c.set("CS", sp.cs);
      threads = static_cast<int>(32 * sp.wk);
      if (variant == 0) {
        grid[0] = cst((n + 31) / 32 * sp.cs);
      } else {
        grid[0] = cst((n + 127) / 128);
        grid[1] = dimx(mdimv, 1, 0, 64);
      }
      break;
    }
    case Kind::GEMM_DENSE: {
      const int64_t k = c.i("K", 8, kBig), n = c.i("N", 1, kBig);
      wdt("WDT");
      const int64_t out = c.i("OUT", 0, 2);
      const int64_t mdim = c.opt("MDIM", 0, 0, 1);
      const int64_t variant = c.opt("VARIANT", mdim == 1 ? 0 : 1, 0, 1);
      c.require(out != 1, "parameter OUT must be 0 (bf16) or 2 (f32)");
      c.require(k % 8 == 0, "parameter K = " + std::to_string(k) + " must be a multiple of 8 (16-byte rows)");
      if (variant == 0) {
        grid[0] = cst((n + 7) / 8);
      } else {
        grid[0] = cst((n + 63) / 64);
        grid[1] = dimx(mdim == 0 ? kDimT : kDimR, 1, 0, 64);
      }
      break;
    }
    case Kind::QK_NORM_ROPE_KV: {
      const int64_t nq = c.i("NQ", 1, 1024), nkv = c.i("NKV", 1, 1024), d = c.i("D", 32, 512);
      const int64_t dr = c.i("DR", 0, 512);
      c.f("THETA", 1.0, 1e12);
      c.f("EPS", 0.0, 1.0);
      wdt("WDT");
      const int64_t kvdt = c.i("KVDT", 0, 3);
      c.i("BLOCK", 1, 1 << 20);
      c.i("MAX_BLOCKS", 1, kBig);
      c.require(kvdt == 0 || kvdt == 3, "parameter KVDT must be 0 (bf16) or 3 (fp8 e4m3)");
      c.require(d % 32 == 0, "parameter D = " + std::to_string(d) + " must be a multiple of 32");
      c.require(dr % 2 == 0 && dr <= d, "parameter DR = " + std::to_string(dr) + " must be even and <= D");
      c.require(nq % nkv == 0, "parameter NQ must be a multiple of NKV");
      grid[0] = dimx(kDimT);
      break;
    }
    case Kind::ATTENTION: {
      const int64_t nq = c.i("NQ", 1, 1024), nkv = c.i("NKV", 1, 1024), d = c.i("D", 32, 256);
      const int64_t kvdt = c.i("KVDT", 0, 3);
      c.i("BLOCK", 1, 1 << 20);
      c.i("MAX_BLOCKS", 1, kBig);
      const int64_t variant = c.i("VARIANT", 0, 2);
      const int64_t splits = c.opt("SPLITS", 1, 1, 256);
      c.require(kvdt == 0 || kvdt == 3, "parameter KVDT must be 0 (bf16) or 3 (fp8 e4m3)");
      c.require(d % 32 == 0, "parameter D = " + std::to_string(d) + " must be a multiple of 32");
      c.require(nkv > 0 && nq % nkv == 0, "parameter NQ must be a multiple of NKV");
      const int64_t qh = nkv > 0 ? nq / nkv : 1;
      // Static shared memory: q rows (fp32), one K tile (padded) and one V tile of 32 keys.
      auto bytes = [&](int64_t bq) { return (bq * qh * d + 32 * (d + 1) + 32 * d) * 4; };
      int64_t bq = 1;
      if (variant == 0)
        for (int64_t cand : {8, 4, 2})
          if (cand * qh <= 16 && bytes(cand) <= 46 * 1024) { bq = cand; break; }
      c.require(bytes(bq) <= 46 * 1024 && qh <= 32,
                "ATTENTION with NQ/NKV = " + std::to_string(qh) + " and D = " + std::to_string(d) +
                    " needs more than 46 KiB of shared memory per block");
      c.set("BQ", bq);
      threads = 128;
      if (variant == 0) {
        grid[0] = dimx(kDimT, 1, 0, bq);
        grid[1] = cst(nkv);
      } else if (variant == 1) {
        grid[0] = dimx(kDimT);
        grid[1] = cst(nkv);
        grid[2] = cst(splits);
      } else {
        grid[0] = dimx(kDimT);
        grid[1] = cst(nq);
      }
      break;
    }
    case Kind::ROUTE_TOPK: {
      const int64_t e = c.i("E", 1, 1024), topk = c.i("TOPK", 1, 32), h = c.i("H", 8, 8192);
      wdt("WDT");
      const int64_t fused = c.i("FUSED_GEMM", 0, 1);
      c.require(topk <= e, "parameter TOPK must be <= E");
      c.require(h % 8 == 0, "parameter H must be a multiple of 8 (16-byte gate rows)");
      // Fused (decode): a cluster of CS blocks per token splits the experts (the gate GEMV would
      // otherwise stream the whole gate through one SM); CS may be given (1 = one block).
      const int64_t cs = fused ? c.opt("CS", e >= 64 ? 8 : 1, 1, 8) : 1;
      if (!fused) c.set("CS", 1);
      threads = fused ? 1024 : 128;
      grid[0] = dimx(kDimT, cs);
      break;
    }
    case Kind::MOE_ALIGN: {
      c.i("E", 1, 256);  // per-warp counts: 32 x E ints of shared memory
      c.i("TOPK", 1, 32);
      threads = 1024;
      break;
    }
    case Kind::MOE_W13: {
      const int64_t h = c.i("H", 64, kBig), in = c.i("I", 8, kBig), e = c.i("E", 1, 4096);
      const int64_t topk = c.i("TOPK", 1, 32), g = c.i("G", 64, 4096);
      const int64_t grouped = c.i("GROUPED", 0, 1);
      c.require(g % 64 == 0 && h % g == 0, "parameters H and G: G must be a multiple of 64 and divide H");
      c.require(in % 8 == 0, "parameter I must be a multiple of 8");
      // Decode: WK warps on w1 and WK on w3 per block (THREADS = 64 WK), CS blocks per cluster.
      const Split sp = grouped == 0 && g > 0 && h % g == 0 ? pick_split(topk * ((in + 31) / 32) * 2, h / g, 2) : Split{4, 1};
      c.set("WK", sp.wk);
      c.set("CS", sp.cs);
      threads = static_cast<int>(grouped == 0 ? 64 * sp.wk : 256);
      if (grouped == 0) {
        grid[0] = cst((in + 31) / 32 * sp.cs);
        grid[1] = dimx(kDimT, topk);
      } else {
        grid[0] = cst((in + 63) / 64);
        grid[1] = dimx(kDimT, topk, 63 * e, 64);
      }
      break;
    }
    case Kind::MOE_W2: {
      const int64_t h = c.i("H", 8, kBig), in = c.i("I", 64, kBig), e = c.i("E", 1, 4096);
      const int64_t topk = c.i("TOPK", 1, 32), g = c.i("G", 64, 4096);
      const int64_t grouped = c.i("GROUPED", 0, 1), combine = c.i("COMBINE", 0, 1);
      c.require(g % 64 == 0 && in % g == 0, "parameters I and G: G must be a multiple of 64 and divide I");
      c.require(h % 8 == 0, "parameter H must be a multiple of 8");
      c.require(!(grouped && combine), "MOE_W2 with GROUPED = 1 needs COMBINE = 0 (MOE_COMBINE sums the slots)");
      // Decode: with COMBINE the K axis is the TOPK experts' groups back to back.
      const Split sp = grouped == 0 && g > 0 && in % g == 0
                           ? (combine ? pick_split((h + 31) / 32, topk * (in / g), 1)
                                      : pick_split(topk * ((h + 31) / 32), in / g, 1))
                           : Split{8, 1};
      c.set("WK", sp.wk);
      c.set("CS", sp.cs);
      threads = static_cast<int>(grouped == 0 ? 32 * sp.wk : 256);
      if (grouped == 0) {
        grid[0] = cst((h + 31) / 32 * sp.cs);
        grid[1] = combine ? dimx(kDimT) : dimx(kDimT, topk);
      } else {
        grid[0] = cst((h + 127) / 128);
        grid[1] = dimx(kDimT, topk, 63 * e, 64);
      }
      break;
    }
    case Kind::MOE_COMBINE: {
      c.i("H", 1, kBig);
      c.i("TOPK", 1, 32);
      grid[0] = dimx(kDimT);
      break;
    }
    case Kind::SAMPLE: {
      c.i("V", 1, int64_t{1} << 23);   // V * 2^40 (fixed-point masses) must fit in a u64
      threads = 512;   // 1024 would cap registers at 64 and spill
      grid[0] = dimx(kDimR);
      break;
    }
    case Kind::COUNT:
      break;
  }
  if (c.failed())
    return Error::bad_input("kernel " + std::string(kind_name(kind)) + ": " + c.error());
  c.set("THREADS", threads);
  s.params = c.out();

  // Entry name: kind + integer parameters (sorted by name) + a hash of the float parameters.
  std::string entry = lower(kind_name(kind));
  for (const auto& [key, v] : s.params.ints) {
    if (key == "THREADS") continue;
    entry += "_" + lower(key) + (v < 0 ? "m" + std::to_string(-v) : std::to_string(v));
  }
  std::string consts = "namespace mmp {\n";
  char buf[128];
  for (const auto& [key, v] : s.params.ints) {
    std::snprintf(buf, sizeof buf, "constexpr int %s = %" PRId64 ";\n", key.c_str(), v);
    consts += buf;
  }
  std::string ftext;
  for (const auto& [key, v] : s.params.floats) {
    std::snprintf(buf, sizeof buf, "constexpr double %s = %.17g;\n", key.c_str(), v);
    consts += buf;
    ftext += buf;
  }
  consts += "}  // namespace mmp\n";
  if (!ftext.empty()) {
    std::snprintf(buf, sizeof buf, "_f%08x", static_cast<unsigned>(source_hash(ftext) & 0xffffffffu));
    entry += buf;
  }
  s.entry = entry;

  const KindInfo& info = kKinds[static_cast<size_t>(kind)];
  std::string src;
  src += "// mmc kernel " + std::string(info.name) + " (codegen/kernels/" + info.file + "), entry " + entry + "\n";
  src += embedded::abi_h;
  src += embedded::common_cuh;
  src += consts;
  src += "#define MM_ENTRY " + entry + "\n";
  // Thread block cluster (sm_90+) of the decode GEMV kinds: blocks of one cluster split K and
  // reduce through distributed shared memory.
  if (auto it = s.params.ints.find("CS"); it != s.params.ints.end() && it->second > 1)
    src += "#define MM_CLUSTER_DIMS __cluster_dims__(" + std::to_string(it->second) + ", 1, 1)\n";
  else
    src += "#define MM_CLUSTER_DIMS\n";
  if (info.uses_w4) src += embedded::w4_cuh;
  src += *info.text;
  s.source = std::move(src);
  s.block = {threads, 1, 1};
  s.dynamic_shared_bytes = 0;
  s.grid = grid;
  return s;
}

}  // namespace mm::kernels
