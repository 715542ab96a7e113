// Kernel-vs-reference tests: every kind and variant of codegen/kernels, compiled with NVRTC for
// the device at test time, run on random inputs and compared with codegen/reference. Tolerances
// are stated at each comparison with the reason. Without a device every test skips.
#include <algorithm>
#include <numeric>
#include <set>
#include <utility>

#include "test/gpu/gpu_harness.h"

namespace mm::gputest {
namespace {
using kernels::Kind;

// A bf16 result rounded once from fp32: two implementations that sum in a different order can
// land one bf16 step apart (relative 2^-8), so 1/128 relative plus a small absolute floor.
constexpr float kBf16Rel = 1.f / 128;

std::vector<float> dl(const Buf& b, int dt) {
  auto v = b.download();
  return as_f32(v.data(), v.size(), dt);
}
std::vector<float> hv(Buf& b, int dt) { return as_f32(b.host.data(), b.host.size(), dt); }

// ---------------------------------------------------------------- EMBED
TEST(Gpu, Embed) {
  MM_REQUIRE_GPU();
  for (int wdt : {0, 1}) {
    const int64_t V = 2112, H = 3072, T = 37;
    auto k = build(Kind::EMBED, {{{"V", V}, {"H", H}, {"WDT", wdt}}, {}});
    ASSERT_TRUE(k);
    Buf tok(T * 4), table(V * H * 2), y(T * H * 2), yr(T * H * 2);
    for (int64_t t = 0; t < T; ++t) tok.h<int32_t>()[t] = static_cast<int32_t>(rng()() % V);
    if (wdt == 0) fill_bf16(table); else fill_f16(table, -2, 2);
    tok.upload(); table.upload(); y.upload();
    launch(*k, {&tok, &table, &y}, {T});
    ref::embed_ref(host_args({&tok, &table, &yr}, {T}), {V, H, wdt});
    // A gather with one conversion to bf16: exact.
    EXPECT_TRUE(close(dl(y, 0), hv(yr, 0), 0, 0)) << "WDT " << wdt;
  }
}

// ---------------------------------------------------------------- RMS_NORM
TEST(Gpu, RmsNorm) {
  MM_REQUIRE_GPU();
  struct C { int64_t n, wdt, res, gather; };
  for (C c : {C{3072, 0, 0, 0}, C{3072, 1, 1, 0}, C{256, 0, 1, 1}, C{6144, 0, 1, 1}}) {
    const int64_t T = 19, R = 5;
    auto k = build(Kind::RMS_NORM, {{{"N", c.n}, {"WDT", c.wdt}, {"RESIDUAL", c.res}, {"GATHER", c.gather}}, {{"EPS", 1e-6}}});
    ASSERT_TRUE(k);
    Buf x(T * c.n * 2), r(T * c.n * 2), w(c.n * 2), rows(R * 4), y((c.gather ? R : T) * c.n * 2);
    fill_bf16(x, -3, 3); fill_bf16(r, -3, 3);
    if (c.wdt == 0) fill_bf16(w, 0.5, 1.5); else fill_f16(w, 0.5, 1.5);
    for (int64_t i = 0; i < R; ++i) rows.h<int32_t>()[i] = static_cast<int32_t>((i * 7 + 3) % T);
    Buf xr(x.host.size()), yr(y.host.size());
    xr.host = x.host;
    x.upload(); r.upload(); w.upload(); rows.upload(); y.upload();
    launch(*k, {&x, &r, &w, &rows, &y}, {T, R});
    ref::rms_norm_ref(host_args({&xr, &r, &w, &rows, &yr}, {T, R}), {c.n, 1e-6, c.wdt, c.res, c.gather});
    // The residual sum is one bf16 rounding of the same fp32 sum: exact.
    EXPECT_TRUE(close(dl(x, 0), hv(xr, 0), 0, 0)) << "residual stream, N " << c.n;
    // Statistics summed in another order + rsqrtf: the inner bf16 rounding may flip, two steps.
    EXPECT_TRUE(close(dl(y, 0), hv(yr, 0), 1e-6f, 2 * kBf16Rel)) << "N " << c.n << " gather " << c.gather;
  }
}

// ---------------------------------------------------------------- GEMM_W4
// The device copy of packed words in the layout a kernel of QL `ql` reads (the reference keeps
// GPTQ rows): strips of 32 columns per matrix for QL 1.
void upload_qweight(Buf& qw, int64_t matrices, int64_t kr, int64_t n, int ql) {
  if (ql == 0) return qw.upload();
  const std::vector<uint8_t> rows = qw.host;
  ref::w4_rows_to_strips(reinterpret_cast<const int32_t*>(rows.data()), matrices, kr, n, qw.h<int32_t>());
  qw.upload();
  qw.host = rows;
}

void run_gemm_w4(int64_t K, int64_t N, int64_t M, int variant, int out, bool one_hot, int64_t bm = 64, int ql = 0,
                 int64_t G = 128) {
  SCOPED_TRACE("GEMM_W4 K " + std::to_string(K) + " N " + std::to_string(N) + " M " + std::to_string(M) +
               " v" + std::to_string(variant) + " BM " + std::to_string(bm) + " out " + std::to_string(out) +
               " QL " + std::to_string(ql) + " G " + std::to_string(G) + (one_hot ? " one-hot" : ""));
  auto k = build(Kind::GEMM_W4,
                 {{{"K", K}, {"N", N}, {"G", G}, {"OUT", out}, {"VARIANT", variant}, {"BM", bm}, {"QL", ql}}, {}});
  ASSERT_TRUE(k);
  const int64_t osz = out == MM_DT_F32 ? 4 : 2;
  Buf x(M * K * 2), qw(K / 8 * N * 4), sc(K / G * N * 2), y(M * N * osz), yr(M * N * osz);
  if (one_hot) {
    // x[m] = e_k: y[m, n] = (q(k, n) - 8) * scale exactly (the dequantized weight itself).
    std::fill(x.host.begin(), x.host.end(), 0);
    for (int64_t m = 0; m < M; ++m) x.h<uint16_t>()[m * K + (m * 37 + 5) % K] = ref::f32_to_bf16(1.f);
  } else {
    fill_bf16(x);
  }
  fill_u32(qw);
  fill_f16(sc, 0.002f, 0.02f, /*random_sign=*/true);
  x.upload(); sc.upload(); y.upload();
  upload_qweight(qw, 1, K / 8, N, ql);
  launch(*k, {&x, &qw, &sc, &y}, {M, M});
  ref::gemm_w4_ref(host_args({&x, &qw, &sc, &yr}, {M, M}), {K, N, G, out, variant, 0});
  const auto want = hv(yr, out);
  if (one_hot) {
    EXPECT_TRUE(close(dl(y, out), want, 0, 0)) << "int4 dequant must be exact";
  } else {
    // fp32 sums of K products in another order: |error| ~ K * eps32 * |terms|, far below one bf16
    // step of the output; bf16 outputs may still round to the neighbour (kBf16Rel), f32 outputs
    // get 1e-4 of the output scale.
    const float scale = rms(want);
    EXPECT_TRUE(close(dl(y, out), want, 1e-4f * scale, out == MM_DT_F32 ? 1e-4f : kBf16Rel));
  }
}

TEST(Gpu, GemmW4Decode) {
  MM_REQUIRE_GPU();
  run_gemm_w4(3072, 8192, 1, 0, 0, false);
  run_gemm_w4(6144, 3072, 4, 0, 0, false);
  run_gemm_w4(3072, 512, 16, 0, 2, false);
  run_gemm_w4(256, 256, 21, 0, 0, false);   // more than 16 rows: two passes
  run_gemm_w4(3072, 8192, 3, 0, 2, true);
  run_gemm_w4(3072, 8192, 9, 0, 0, false);   // two n-tiles, rows 9..15 empty
  run_gemm_w4(6144, 3072, 16, 0, 2, true);   // clusters of 2 blocks, 16 rows: exact
  run_gemm_w4(6144, 3072, 8, 0, 0, false);
  // Strips of 32 columns (QL 1, the plans' layout): contiguous runs per warp.
  for (int64_t M : {1, 3, 9, 21}) {
    run_gemm_w4(3072, 8192, M, 0, 0, false, 64, 1);
    run_gemm_w4(6144, 3072, M, 0, 2, M == 3, 64, 1);
  }
  run_gemm_w4(256, 96, 2, 0, 0, true, 64, 1);
}

TEST(Gpu, GemmW4Prefill) {
  MM_REQUIRE_GPU();
  // v1 core; v2 core (B dequantized once per block, m16 tiles of padding skipped), 64 and 128 rows.
  for (auto [v, bm] : {std::pair{1, 64}, std::pair{2, 64}, std::pair{2, 128}}) {
    run_gemm_w4(3072, 8192, 100, v, 0, false, bm);
    run_gemm_w4(6144, 3072, 64, v, 2, false, bm);
    run_gemm_w4(256, 520, 7, v, 0, false, bm);    // N not a multiple of the 128-column tile
    run_gemm_w4(3072, 1024, 130, v, 2, true, bm);
    run_gemm_w4(3072, 1024, 83, v, 2, true, bm);   // a last tile of 19 rows (one m16 tile of one warp)
    run_gemm_w4(3072, 8192, 100, v, 0, false, bm, 1);   // QL 1: B tiles from four strips
    run_gemm_w4(256, 544, 37, v, 2, true, bm, 1);       // 17 strips, a last 32-column tile
    // Pipeline edges of the cores: fewer 64-k tiles than stages (K 64, 192), a group per tile
    // (G 64: every tile starts and ends a group, the scale slots turn every tile), groups of 3
    // tiles over a tile count that is no multiple of the stage count (K 576, G 192), one group over
    // the whole K (G 1536).
    run_gemm_w4(64, 256, 40, v, 0, false, bm, 0, 64);
    run_gemm_w4(192, 384, 70, v, 2, true, bm, 1, 64);
    run_gemm_w4(576, 256, 130, v, 0, false, bm, 1, 192);
    run_gemm_w4(1536, 512, 19, v, 2, false, bm, 0, 1536);
  }
}

// ---------------------------------------------------------------- GEMM_DENSE
TEST(Gpu, GemmDense) {
  MM_REQUIRE_GPU();
  struct C { int64_t K, N, M, wdt, out, mdim, variant; };
  // Variant 2 (tensor cores, bf16 weights): the router at 1 and 2048 rows, ragged M and N, bf16 out.
  for (C c : {C{3072, 2112, 1, 0, 2, 1, 0}, C{3072, 2112, 6, 1, 0, 1, 0}, C{3072, 192, 70, 1, 2, 0, 1},
              C{256, 100, 33, 0, 0, 0, 1}, C{3072, 192, 1, 0, 2, 0, 2}, C{3072, 192, 2048, 0, 2, 0, 2},
              C{224, 300, 77, 0, 0, 0, 2}}) {
    SCOPED_TRACE("GEMM_DENSE K " + std::to_string(c.K) + " N " + std::to_string(c.N) + " M " + std::to_string(c.M) +
                 " v" + std::to_string(c.variant));
    auto k = build(Kind::GEMM_DENSE, {{{"K", c.K}, {"N", c.N}, {"WDT", c.wdt}, {"OUT", c.out}, {"MDIM", c.mdim}, {"VARIANT", c.variant}}, {}});
    ASSERT_TRUE(k);
    const int64_t osz = c.out == MM_DT_F32 ? 4 : 2;
    Buf x(c.M * c.K * 2), w(c.N * c.K * 2), y(c.M * c.N * osz), yr(c.M * c.N * osz);
    fill_bf16(x);
    if (c.wdt == 0) fill_bf16(w, -0.1f, 0.1f); else fill_f16(w, -0.1f, 0.1f, true);
    x.upload(); w.upload(); y.upload();
    launch(*k, {&x, &w, &y}, {c.M, c.M});
    ref::gemm_dense_ref(host_args({&x, &w, &yr}, {c.M, c.M}), {c.K, c.N, c.wdt, c.out, c.mdim});
    const auto want = hv(yr, c.out);
    // Exact products, fp32 sums in another order (see GEMM_W4).
    EXPECT_TRUE(close(dl(y, c.out), want, 1e-4f * rms(want), c.out == MM_DT_F32 ? 1e-4f : kBf16Rel));
  }
}

// ---------------------------------------------------------------- KV cache fixture
struct Kv {
  int64_t NQ, NKV, D, kvdt, BLOCK = 16, MAX_BLOCKS, nblocks;
  Buf k, v, ks, vs, bt;
  Kv(int64_t nq, int64_t nkv, int64_t d, int64_t dt, int64_t max_blocks, int64_t seqs)
      : NQ(nq), NKV(nkv), D(d), kvdt(dt), MAX_BLOCKS(max_blocks), nblocks(max_blocks * seqs),
        k(nblocks * BLOCK * nkv * d * (dt == 3 ? 1 : 2)), v(k.host.size()),
        ks(nblocks * BLOCK * nkv * 4), vs(ks.host.size()), bt(seqs * max_blocks * 4) {
    // Blocks of every sequence scattered over the pool (a permutation), as the paged cache does.
    std::vector<int32_t> perm(nblocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    std::memcpy(bt.host.data(), perm.data(), bt.host.size());
    if (dt == 3) {
      fill_fp8(k);
      fill_fp8(v);
      fill_f32(ks, 0.001f, 0.01f);
      fill_f32(vs, 0.001f, 0.01f);
    } else {
      fill_bf16(k);
      fill_bf16(v);
    }
  }
  void upload() { k.upload(); v.upload(); ks.upload(); vs.upload(); bt.upload(); }
};

// ---------------------------------------------------------------- QK_NORM_ROPE_KV
TEST(Gpu, QkNormRopeKv) {
  MM_REQUIRE_GPU();
  // SPLIT: blocks per token (decode plans use 8 for 64 heads; 3 leaves an uneven last block).
  for (int64_t kvdt : {0, 3})
  for (int64_t split : {1, 3, 8}) {
    for (bool mid : {false, true}) {
      const int64_t NQ = mid ? 48 : 4, NKV = mid ? 8 : 2, D = mid ? 128 : 64, DR = mid ? 64 : 32, T = 23;
      SCOPED_TRACE(std::string("QK_NORM_ROPE_KV ") + (mid ? "mid" : "tiny") + " kvdt " + std::to_string(kvdt) +
                   " split " + std::to_string(split));
      auto kern = build(Kind::QK_NORM_ROPE_KV, {{{"NQ", NQ}, {"NKV", NKV}, {"D", D}, {"DR", DR}, {"WDT", 0}, {"KVDT", kvdt},
                                                {"BLOCK", 16}, {"MAX_BLOCKS", 64}, {"SPLIT", split}},
                                               {{"THETA", 5e6}, {"EPS", 1e-6}}});
      ASSERT_TRUE(kern);
      Kv kv(NQ, NKV, D, kvdt, 64, 3), kr(NQ, NKV, D, kvdt, 64, 3);
      kr.bt.host = kv.bt.host; kr.k.host = kv.k.host; kr.v.host = kv.v.host; kr.ks.host = kv.ks.host; kr.vs.host = kv.vs.host;
      const int64_t LD = (NQ + 2 * NKV) * D;
      Buf qkv(T * LD * 2), qn(NQ * D * 2), kn(NKV * D * 2), pos(T * 4), slot(T * 4), q(T * NQ * D * 2), qr(q.host.size());
      fill_bf16(qkv, -4, 4); fill_bf16(qn, 0.5, 1.5); fill_bf16(kn, 0.5, 1.5);
      for (int64_t t = 0; t < T; ++t) {   // three sequences, positions up to ~1000 (large angles)
        slot.h<int32_t>()[t] = static_cast<int32_t>(t % 3);
        pos.h<int32_t>()[t] = static_cast<int32_t>(t / 3 + (t % 3) * 450);
      }
      qkv.upload(); qn.upload(); kn.upload(); pos.upload(); slot.upload(); q.upload(); kv.upload();
      std::vector<Buf*> dev = {&qkv, &qn, &kn, &pos, &slot, &kv.bt, &kv.k, &kv.v, &kv.ks, &kv.vs, &q};
      std::vector<Buf*> host = {&qkv, &qn, &kn, &pos, &slot, &kr.bt, &kr.k, &kr.v, &kr.ks, &kr.vs, &qr};
      launch(*kern, dev, {T});
      ref::qk_norm_rope_kv_ref(host_args(host, {T}), {NQ, NKV, D, DR, 5e6, 1e-6, 0, kvdt, 16, 64});
      // Norm statistics in another order and sincosf vs the host's sin/cos: one or two bf16 steps.
      EXPECT_TRUE(close(dl(q, 0), hv(qr, 0), 1e-3f, 2 * kBf16Rel)) << "q";
      if (kvdt == 0) {
        EXPECT_TRUE(close(dl(kv.k, 0), hv(kr.k, 0), 1e-3f, 2 * kBf16Rel)) << "k pool";
        EXPECT_TRUE(close(dl(kv.v, 0), hv(kr.v, 0), 0, 0)) << "v pool (copied)";
      } else {
        // fp8: compare dequantized values. A bf16 step in k can move x/scale across an e4m3
        // rounding boundary: one e4m3 step is 1/8 relative (2^-3), so 1/8 of |value| + scale.
        for (int which = 0; which < 2; ++which) {
          Buf& p = which ? kv.v : kv.k; Buf& pr = which ? kr.v : kr.k;
          Buf& s = which ? kv.vs : kv.ks; Buf& sr = which ? kr.vs : kr.ks;
          const auto pg = p.download(), sg = s.download();
          std::vector<float> got, want;
          for (size_t i = 0; i < pg.size(); ++i) {
            const size_t row = i / D;
            float gs, ws;
            std::memcpy(&gs, sg.data() + 4 * row, 4);
            std::memcpy(&ws, sr.host.data() + 4 * row, 4);
            got.push_back(ref::fp8e4m3_to_f32(pg[i]) * gs);
            want.push_back(ref::fp8e4m3_to_f32(pr.host[i]) * ws);
          }
          EXPECT_TRUE(close(got, want, 0.02f, 0.13f)) << (which ? "v pool fp8" : "k pool fp8");
        }
      }
    }
  }
}

// ---------------------------------------------------------------- ATTENTION
// A call shape: `decode` = 5 sequences with one token each at positions 0, 17, 300, 1000, 1270;
// otherwise one sequence's chunk of T tokens at positions start..start+T-1 (keys 0..start+T-1
// cached, the chunk's own included, as QK_NORM_ROPE_KV leaves them).
struct AttnCall {
  int64_t T, start;
  bool decode;
};
void run_attention(bool mid, int64_t kvdt, int variant, AttnCall call) {
  const int64_t NQ = mid ? 48 : 4, NKV = mid ? 8 : 2, D = mid ? 128 : 64;
  const bool decode = call.decode;
  const int64_t S = decode ? 5 : 1, T = decode ? 5 : call.T;
  const int64_t ctx = decode ? 1271 : call.start + call.T, MAXB = std::max<int64_t>(80, (ctx + 15) / 16);
  SCOPED_TRACE(std::string("ATTENTION ") + (mid ? "mid" : "tiny") + " kvdt " + std::to_string(kvdt) + " v" +
               std::to_string(variant) +
               (decode ? " decode" : " T " + std::to_string(T) + " at " + std::to_string(call.start)));
  Kv kv(NQ, NKV, D, kvdt, MAXB, S);
  Buf q(T * NQ * D * 2), pos(T * 4), slot(T * 4), o(T * NQ * D * 2), orf(o.host.size());
  fill_bf16(q, -2, 2);
  std::fill(o.host.begin(), o.host.end(), uint8_t{0xff});   // bf16 NaN: every output must be written
  const int32_t dpos[5] = {0, 17, 300, 1000, 1270};
  for (int64_t t = 0; t < T; ++t) {
    pos.h<int32_t>()[t] = decode ? dpos[t] : static_cast<int32_t>(call.start + t);
    slot.h<int32_t>()[t] = decode ? static_cast<int32_t>(t) : 0;
  }
  q.upload(); pos.upload(); slot.upload(); o.upload(); kv.upload();
  std::vector<Buf*> ops = {&q, &pos, &slot, &kv.bt, &kv.k, &kv.v, &kv.ks, &kv.vs, &o};
  kernels::Params p{{{"NQ", NQ}, {"NKV", NKV}, {"D", D}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", MAXB},
                     {"VARIANT", variant}}, {}};
  auto k = build(Kind::ATTENTION, p);
  ASSERT_TRUE(k);
  launch(*k, ops, {T, T, S, ctx});
  std::vector<Buf*> hops = ops;
  hops.back() = &orf;
  ref::AttentionParams rp{};
  rp.NQ = NQ; rp.NKV = NKV; rp.D = D; rp.KVDT = kvdt; rp.BLOCK = 16; rp.MAX_BLOCKS = MAXB; rp.VARIANT = variant;
  ref::attention_ref(host_args(hops, {T, T, S, ctx}), rp);
  // fp32 softmax/accumulation in another order (online rescaling): relative errors ~1e-6
  // before the single bf16 rounding; outputs are averages of the v rows. Variant 3 also rounds the
  // probabilities (times the fp8 v scale) to bf16 for the tensor cores: a relative 2^-9 per
  // weight, so up to 2^-9 max|v| where one key dominates and the others cancel. The absolute floor
  // is 2e-3 max|v|: the bf16 cache holds |v| <= 1, the fp8 one up to 448 x its scale.
  float vmax = 0.f;
  for (size_t i = 0; i < kv.v.host.size() / (kvdt == 3 ? 1 : 2); ++i) {
    const float v = kvdt == 3 ? ref::fp8e4m3_to_f32(kv.v.host[i]) * kv.vs.h<float>()[i / D]
                              : ref::bf16_to_f32(kv.v.h<uint16_t>()[i]);
    vmax = std::max(vmax, std::fabs(v));
  }
  EXPECT_TRUE(close(dl(o, 0), hv(orf, 0), 2e-3f * std::max(vmax, 1.f), kBf16Rel));
}

TEST(Gpu, AttentionPrefill) {
  MM_REQUIRE_GPU();
  for (bool mid : {false, true})
    for (int64_t kvdt : {0, 3}) run_attention(mid, kvdt, 0, {70, 500, false});
  run_attention(true, 0, 0, {0, 0, true});   // the prefill kernel on decode-shaped calls (several sequences)
}

// Variant 3 (tensor cores) at the shapes prefill meets: a chunk at depth 0 (the causal diagonal
// from the first key), a chunk at depth that is no multiple of the tiles, a long chunk deep in
// the cache (many key tiles, several diagonal ones), and several sequences in one call.
TEST(Gpu, AttentionPrefillTensorCores) {
  MM_REQUIRE_GPU();
  for (bool mid : {false, true})
    for (int64_t kvdt : {0, 3}) {
      run_attention(mid, kvdt, 3, {150, 0, false});
      run_attention(mid, kvdt, 3, {70, 500, false});
      run_attention(mid, kvdt, 3, {0, 0, true});
    }
  for (int64_t kvdt : {0, 3}) run_attention(true, kvdt, 3, {333, 1700, false});
}

// ---------------------------------------------------------------- ATTENTION_DECODE
// Decode attention with its split count taken from each token's own position: tokens of
// different context lengths (1 key, under one split's 16, a few splits, the most a call of T
// tokens allows), positions that end mid-step and mid-block, bf16 and fp8 caches.
void run_attention_decode(bool mid, int64_t kvdt, int64_t splits, std::vector<int32_t> dpos, int64_t maxb) {
  const int64_t NQ = mid ? 48 : 4, NKV = mid ? 8 : 2, D = mid ? 128 : 64;
  const int64_t T = static_cast<int64_t>(dpos.size()), S = T;
  SCOPED_TRACE(std::string("ATTENTION_DECODE ") + (mid ? "mid" : "tiny") + " kvdt " + std::to_string(kvdt) + " splits " +
               std::to_string(splits) + " T " + std::to_string(T));
  Kv kv(NQ, NKV, D, kvdt, maxb, S);
  const int64_t w = std::min<int64_t>(splits, (256 + T - 1) / T);   // splits per token at most
  Buf q(T * NQ * D * 2), pos(T * 4), slot(T * 4), part(T * NQ * w * (D + 2) * 4), o(T * NQ * D * 2), orf(o.host.size());
  fill_bf16(q, -2, 2);
  int32_t ctx = 0;
  for (int64_t t = 0; t < T; ++t) {
    pos.h<int32_t>()[t] = dpos[t];
    slot.h<int32_t>()[t] = static_cast<int32_t>(t);
    ctx = std::max(ctx, dpos[t] + 1);
  }
  // Poison the output: every element must be written (by the split launch or the combine).
  std::fill(o.host.begin(), o.host.end(), 0xff);
  q.upload(); pos.upload(); slot.upload(); part.upload(); o.upload(); kv.upload();
  std::vector<Buf*> ops = {&q, &pos, &slot, &kv.bt, &kv.k, &kv.v, &kv.ks, &kv.vs, &part, &o};
  kernels::Params p{{{"NQ", NQ}, {"NKV", NKV}, {"D", D}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", maxb},
                     {"VARIANT", 0}, {"SPLITS", splits}}, {}};
  auto k = build(Kind::ATTENTION_DECODE, p);
  ASSERT_TRUE(k);
  launch(*k, ops, {T, T, S, ctx});
  if (splits > 1) {
    p.ints["VARIANT"] = 1;
    auto c = build(Kind::ATTENTION_DECODE, p);
    ASSERT_TRUE(c);
    launch(*c, ops, {T, T, S, ctx});
  }
  std::vector<Buf*> hops = ops;
  hops.back() = &orf;
  ref::AttentionDecodeParams rp{};
  rp.NQ = NQ; rp.NKV = NKV; rp.D = D; rp.KVDT = kvdt; rp.BLOCK = 16; rp.MAX_BLOCKS = maxb; rp.VARIANT = 0; rp.SPLITS = splits;
  ref::attention_decode_ref(host_args(hops, {T, T, S, ctx}), rp);
  // As ATTENTION: fp32 softmax/accumulation in another order (tensor-core q.k sums, online
  // rescaling per 8 keys, split-K), then one bf16 rounding.
  EXPECT_TRUE(close(dl(o, 0), hv(orf, 0), 2e-3f, kBf16Rel));
}

TEST(Gpu, AttentionDecode) {
  MM_REQUIRE_GPU();
  for (bool mid : {false, true})
    for (int64_t kvdt : {0, 3}) {
      run_attention_decode(mid, kvdt, 1, {0, 17, 300, 1000, 1270}, 80);             // one split: o directly
      run_attention_decode(mid, kvdt, 256, {0, 9, 15, 16, 300, 1000, 1270}, 80);   // 1..37 splits
    }
  // Batch 1 at long context: 256 splits of 64 keys, the last key mid-block.
  for (int64_t kvdt : {0, 3}) run_attention_decode(true, kvdt, 256, {16383 - 7}, 1024);
  // Batch 16 at 4k: the split count capped at ceil(256 / 16) = 16. The block table holds every
  // position (up to 4195: 263 blocks of 16).
  std::vector<int32_t> b16;
  for (int i = 0; i < 16; ++i) b16.push_back(4000 + 13 * i);
  run_attention_decode(true, 3, 256, b16, 272);
}

// ---------------------------------------------------------------- ROUTE_TOPK
TEST(Gpu, RouteTopk) {
  MM_REQUIRE_GPU();
  for (int fused : {0, 1}) {
    for (int64_t E : {8, 192}) {
      const int64_t TOPK = E == 8 ? 4 : 8, H = 3072, T = 33;
      SCOPED_TRACE("ROUTE_TOPK E " + std::to_string(E) + " fused " + std::to_string(fused));
      auto k = build(Kind::ROUTE_TOPK, {{{"E", E}, {"TOPK", TOPK}, {"H", H}, {"WDT", 0}, {"FUSED_GEMM", fused}}, {}});
      ASSERT_TRUE(k);
      Buf x(T * H * 2), gate(E * H * 2), logits(T * E * 4), bias(E * 4), ids(T * TOPK * 4), w(T * TOPK * 4);
      Buf idr(ids.host.size()), wr(w.host.size());
      fill_bf16(x); fill_bf16(gate, -0.05f, 0.05f); fill_f32(logits, -4, 4); fill_f32(bias, -0.5f, 0.5f);
      x.upload(); gate.upload(); logits.upload(); bias.upload(); ids.upload(); w.upload();
      if (fused) {
        launch(*k, {&x, &gate, &bias, &ids, &w}, {T});
        ref::route_topk_ref(host_args({&x, &gate, &bias, &idr, &wr}, {T}), {E, TOPK, H, 0, 1});
        // Host logits for the tie check below.
        Buf lr(T * E * 4);
        ref::gemm_dense_ref(host_args({&x, &gate, &lr}, {T}), {H, E, 0, MM_DT_F32, 0});
        logits.host = lr.host;
      } else {
        // No gate without the fused GEMV: slot 1 stays null (codegen/kernels/kinds.def).
        launch(*k, {&logits, nullptr, &bias, &ids, &w}, {T});
        ref::route_topk_ref(host_args({&logits, nullptr, &bias, &idr, &wr}, {T}), {E, TOPK, H, 0, 0});
      }
      const auto gi = ids.download();
      const auto gw = w.download();
      int skipped = 0;
      for (int64_t t = 0; t < T; ++t) {
        // A near tie between the TOPK-th and next selection score may be decided either way by
        // fp32 logits summed in another order (fused GEMM): such tokens are not compared.
        std::vector<float> sel(E);
        for (int64_t e = 0; e < E; ++e)
          sel[e] = 1.f / (1.f + std::exp(-logits.h<float>()[t * E + e])) + bias.h<float>()[e];
        std::vector<float> sorted = sel;
        std::sort(sorted.rbegin(), sorted.rend());
        if (sorted[TOPK - 1] - sorted[TOPK] < 1e-5f) { ++skipped; continue; }
        std::set<int32_t> a, b;
        std::vector<std::pair<int32_t, float>> ga, wa;
        for (int64_t j = 0; j < TOPK; ++j) {
          int32_t i1, i2;
          float w1, w2;
          std::memcpy(&i1, gi.data() + 4 * (t * TOPK + j), 4);
          std::memcpy(&w1, gw.data() + 4 * (t * TOPK + j), 4);
          i2 = idr.h<int32_t>()[t * TOPK + j];
          w2 = wr.h<float>()[t * TOPK + j];
          a.insert(i1); b.insert(i2);
          ga.push_back({i1, w1}); wa.push_back({i2, w2});
        }
        EXPECT_EQ(a, b) << "token " << t << ": expert sets differ";   // top-k compared as sets
        std::sort(ga.begin(), ga.end()); std::sort(wa.begin(), wa.end());
        for (int64_t j = 0; j < TOPK && a == b; ++j)
          EXPECT_NEAR(ga[j].second, wa[j].second, 1e-5f) << "token " << t;   // fp32 renormalization
      }
      EXPECT_LT(skipped, T / 4) << "too many near ties for a meaningful test";
    }
  }
}

// ---------------------------------------------------------------- MOE_ALIGN
TEST(Gpu, MoeAlign) {
  MM_REQUIRE_GPU();
  for (int64_t E : {8, 192}) {
    for (int64_t T : {1, 7, 600}) {
      const int64_t TOPK = E == 8 ? 2 : 8;
      auto k = build(Kind::MOE_ALIGN, {{{"E", E}, {"TOPK", TOPK}}, {}});
      ASSERT_TRUE(k);
      Buf ids(T * TOPK * 4), off((E + 1) * 4), sorted(T * TOPK * 4), offr(off.host.size()), sr(sorted.host.size());
      for (int64_t s = 0; s < T * TOPK; ++s) ids.h<int32_t>()[s] = static_cast<int32_t>(rng()() % (E / 2 + 1));  // skewed
      ids.upload(); off.upload(); sorted.upload();
      launch(*k, {&ids, &off, &sorted}, {T});
      ref::moe_align_ref(host_args({&ids, &offr, &sr}, {T}), {E, TOPK});
      // Integer grouping with a defined order: exact.
      EXPECT_EQ(off.download(), offr.host) << "E " << E << " T " << T;
      EXPECT_EQ(sorted.download(), sr.host) << "E " << E << " T " << T;
    }
  }
}

// ---------------------------------------------------------------- MOE_W13 / MOE_W2 / MOE_COMBINE
struct Moe {
  int64_t H, I, E, TOPK, T;
  Buf x, w13q, w13s, w2q, w2s, ids, wts, off, sorted;
  Moe(int64_t h, int64_t i, int64_t e, int64_t topk, int64_t t)
      : H(h), I(i), E(e), TOPK(topk), T(t), x(t * h * 2), w13q(e * (h / 8) * 2 * i * 4), w13s(e * (h / 128) * 2 * i * 2),
        w2q(e * (i / 8) * h * 4), w2s(e * (i / 128) * h * 2), ids(t * topk * 4), wts(t * topk * 4), off((e + 1) * 4),
        sorted(t * topk * 4) {
    fill_bf16(x); fill_u32(w13q); fill_f16(w13s, 0.002f, 0.02f, true); fill_u32(w2q); fill_f16(w2s, 0.002f, 0.02f, true);
    for (int64_t tt = 0; tt < t; ++tt) {   // distinct experts per token, weights summing to 1
      std::vector<int32_t> all(e);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng());
      float s = 0;
      for (int64_t j = 0; j < topk; ++j) { ids.h<int32_t>()[tt * topk + j] = all[j]; s += (wts.h<float>()[tt * topk + j] = uni(0.1f, 1.f)); }
      for (int64_t j = 0; j < topk; ++j) wts.h<float>()[tt * topk + j] /= s;
    }
    mm_kernel_args a = host_args({&ids, &off, &sorted}, {t});
    ref::moe_align_ref(a, {e, topk});
    for (Buf* b : {&x, &w13q, &w13s, &w2q, &w2s, &ids, &wts, &off, &sorted}) b->upload();
  }
};

void run_moe(int64_t H, int64_t I, int64_t E, int64_t TOPK, int64_t T, int grouped, int64_t bm = 64, int ql = 0) {
  SCOPED_TRACE("MoE H " + std::to_string(H) + " I " + std::to_string(I) + " E " + std::to_string(E) + " T " +
               std::to_string(T) + " grouped " + std::to_string(grouped) + " BM " + std::to_string(bm) + " QL " +
               std::to_string(ql));
  Moe m(H, I, E, TOPK, T);
  upload_qweight(m.w13q, E, H / 8, 2 * I, ql);
  upload_qweight(m.w2q, E, I / 8, H, ql);
  const int64_t S = T * TOPK;
  // W13
  auto k13 = build(Kind::MOE_W13,
                   {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", grouped}, {"BM", bm}, {"QL", ql}}, {}});
  ASSERT_TRUE(k13);
  Buf act(S * I * 2), actr(act.host.size());
  act.upload();
  launch(*k13, {&m.x, &m.w13q, &m.w13s, &m.ids, &m.off, &m.sorted, &act}, {T});
  ref::moe_w13_ref(host_args({&m.x, &m.w13q, &m.w13s, &m.ids, &m.off, &m.sorted, &actr}, {T}), {H, I, E, TOPK, 128, grouped});
  const auto want13 = hv(actr, 0);
  // silu(g) * u from fp32 sums in another order, then one bf16 rounding (see GEMM_W4).
  EXPECT_TRUE(close(dl(act, 0), want13, 1e-3f * rms(want13), 2 * kBf16Rel)) << "MOE_W13";
  // W2 from the reference activations so both sides start from the same bf16 input.
  act.host = actr.host;
  act.upload();
  for (int combine : {0, 1}) {
    if (grouped && combine) continue;
    auto k2 = build(Kind::MOE_W2, {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", grouped},
                                    {"COMBINE", combine}, {"BM", bm}, {"QL", ql}}, {}});
    ASSERT_TRUE(k2);
    const int64_t ysz = combine ? T * H * 2 : S * H * 4;
    Buf y(ysz), yr(ysz);
    y.upload();
    launch(*k2, {&act, &m.w2q, &m.w2s, &m.ids, &m.wts, &m.off, &m.sorted, &y}, {T});
    ref::moe_w2_ref(host_args({&act, &m.w2q, &m.w2s, &m.ids, &m.wts, &m.off, &m.sorted, &yr}, {T}),
                    {H, I, E, TOPK, 128, grouped, combine});
    const int dt = combine ? 0 : 2;
    const auto want = hv(yr, dt);
    EXPECT_TRUE(close(dl(y, dt), want, 1e-4f * rms(want), combine ? kBf16Rel : 1e-4f)) << "MOE_W2 combine " << combine;
    if (!combine) {   // MOE_COMBINE over the reference slot rows
      auto kc = build(Kind::MOE_COMBINE, {{{"H", H}, {"TOPK", TOPK}}, {}});
      ASSERT_TRUE(kc);
      Buf out(T * H * 2), outr(T * H * 2);
      y.host = yr.host;
      y.upload();
      out.upload();
      launch(*kc, {&y, &out}, {T});
      ref::moe_combine_ref(host_args({&yr, &outr}, {T}), {H, TOPK});
      // The same fp32 sum in slot order and one rounding: exact.
      EXPECT_TRUE(close(dl(out, 0), hv(outr, 0), 0, 0)) << "MOE_COMBINE";
    }
  }
}

TEST(Gpu, MoeDecode) {
  MM_REQUIRE_GPU();
  run_moe(256, 256, 8, 2, 1, 0);
  run_moe(3072, 1536, 8, 4, 3, 0);
  run_moe(3072, 1536, 192, 8, 1, 0);
  run_moe(3072, 1536, 8, 2, 2, 0);   // W13 clusters of 2, W2 clusters of 3
  run_moe(3072, 1536, 192, 8, 1, 0, 64, 1);   // QL 1: the plans' layout
  run_moe(3072, 1536, 8, 4, 3, 0, 64, 1);
  run_moe(256, 256, 8, 2, 1, 0, 64, 1);
}

TEST(Gpu, MoePrefillGrouped) {
  MM_REQUIRE_GPU();
  // v1 core; v2 core (even row split per expert, block-wide tile scan), 64 and 128 rows.
  for (auto [g, bm] : {std::pair{1, 64}, std::pair{2, 64}, std::pair{2, 128}}) {
    run_moe(256, 256, 8, 2, 37, g, bm);
    run_moe(3072, 1536, 8, 4, 100, g, bm);
    run_moe(3072, 1536, 192, 8, 90, g, bm);
  }
  run_moe(3072, 1536, 16, 4, 300, 2, 64);   // ~75 rows per expert: two tiles of ~37 rows each
  run_moe(3072, 1536, 16, 4, 600, 2, 128);  // ~150 rows per expert: two tiles of ~75 rows each
  for (auto [g, bm] : {std::pair{1, 64}, std::pair{2, 64}, std::pair{2, 128}})
    run_moe(3072, 1536, 192, 8, 90, g, bm, 1);   // QL 1
}

// ---------------------------------------------------------------- SAMPLE
TEST(Gpu, Sample) {
  MM_REQUIRE_GPU();
  for (int64_t V : {2112, 200064}) {
    const int64_t R = 64;
    auto k = build(Kind::SAMPLE, {{{"V", V}}, {}});
    ASSERT_TRUE(k);
    Buf lg(R * V * 4), temp(R * 4), tk(R * 4), tp(R * 4), seed(R * 8), out(R * 4), outr(R * 4);
    fill_f32(lg, -8, 8);
    for (int64_t r = 0; r < R; ++r) {
      const int mode = static_cast<int>(r % 8);
      temp.h<float>()[r] = mode == 0 ? 0.f : (mode == 1 ? -1.f : uni(0.3f, 1.5f));
      tk.h<int32_t>()[r] = mode == 2 ? 0 : (mode == 3 ? 1 : (mode == 4 ? 1000000 : static_cast<int32_t>(1 + rng()() % 64)));
      tp.h<float>()[r] = mode == 5 ? 1.f : (mode == 6 ? 0.f : uni(0.5f, 0.99f));
      seed.h<uint64_t>()[r] = rng()();
    }
    lg.h<float>()[3 * V + 10] = lg.h<float>()[3 * V + 5] = 100.f;   // a tie: the lower id wins
    temp.h<float>()[3] = 0.f;
    for (Buf* b : {&lg, &temp, &tk, &tp, &seed, &out}) b->upload();
    for (int64_t step : {0, 7}) {
      launch(*k, {&lg, &temp, &tk, &tp, &seed, &out}, {R, R, R, 1, step});
      ref::sample_ref(host_args({&lg, &temp, &tk, &tp, &seed, &outr}, {R, R, R, 1, step}), {V});
      const auto g = out.download();
      int mismatches = 0;
      for (int64_t r = 0; r < R; ++r) {
        int32_t got;
        std::memcpy(&got, g.data() + 4 * r, 4);
        const int32_t want = outr.h<int32_t>()[r];
        if (!(temp.h<float>()[r] > 0.f)) { EXPECT_EQ(got, want) << "argmax row " << r; }   // exact
        else if (got != want) ++mismatches;
      }
      // Both sides use the same fixed-point masses and race scores (bit-identical exp and ln),
      // so the draws agree;
      // one row in 64 is allowed for a key order that differs on -0.0 vs +0.0 logits.
      EXPECT_LE(mismatches, 1) << "V " << V << " step " << step;
    }
  }
}

// ---------------------------------------------------------------- graph capture
TEST(Gpu, GraphCaptureReplaysLaunches) {
  MM_REQUIRE_GPU();
  const int64_t H = 3072, T = 4;
  auto k = build(Kind::MOE_COMBINE, {{{"H", H}, {"TOPK", 1}}, {}});
  ASSERT_TRUE(k);
  Buf y(T * H * 4), out(T * H * 2), outr(T * H * 2);
  fill_f32(y, -1, 1);
  y.upload(); out.upload();
  ASSERT_TRUE(ctx().dev->begin_capture().ok());
  launch(*k, {&y, &out}, {T}, /*sync=*/false);
  auto g = ctx().dev->end_capture();
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_TRUE(ctx().dev->launch_graph(*g).ok());
  ASSERT_TRUE(ctx().dev->synchronize().ok());
  ref::moe_combine_ref(host_args({&y, &outr}, {T}), {H, 1});
  EXPECT_TRUE(close(dl(out, 0), hv(outr, 0), 0, 0));
  EXPECT_TRUE(ctx().dev->destroy_graph(*g).ok());
}

TEST(Gpu, MissingArchIsAClearError) {
  MM_REQUIRE_GPU();
  rt::KernelImage img;
  img.name = "k";
  img.cubins.emplace_back("sm_10", std::string_view("x"));
  auto r = ctx().dev->load(img);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no cubin for this device's arch " + ctx().dev->info().arch()), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace mm::gputest
