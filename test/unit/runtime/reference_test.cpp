// The C++ reference kernels (codegen/reference) on hand-computed cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <vector>

#include "codegen/reference/reference.h"

namespace mm::ref {
namespace {

std::vector<uint16_t> bf16v(const std::vector<float>& v) {
  std::vector<uint16_t> r;
  for (float f : v) r.push_back(f32_to_bf16(f));
  return r;
}
std::vector<float> f32v(const std::vector<uint16_t>& v) {
  std::vector<float> r;
  for (uint16_t b : v) r.push_back(bf16_to_f32(b));
  return r;
}
mm_kernel_args make_args(std::vector<void*> ptrs, int64_t T, int64_t R = 1) {
  mm_kernel_args a{};
  for (size_t i = 0; i < ptrs.size(); ++i) a.ptr[i] = ptrs[i];
  a.dim[MM_DIM_T] = T;
  a.dim[MM_DIM_R] = R;
  a.dim[MM_DIM_S] = 1;
  return a;
}

// Packs q[k][n] (0..15) into GPTQ words [K/8, N].
std::vector<int32_t> pack(const std::vector<std::vector<int>>& q, int64_t K, int64_t N) {
  std::vector<int32_t> w(static_cast<size_t>(K / 8 * N), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      w[(k / 8) * N + n] |= static_cast<int32_t>(static_cast<uint32_t>(q[k][n]) << (4 * (k % 8)));
  return w;
}

TEST(Conversions, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);      // tie -> even (down)
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(-2.5f), 0xC020);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Conversions, F16Edges) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-0.25f), 0xB400);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // rounds to infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  for (uint32_t h = 0; h < 0x7C00; ++h) EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h);
}

TEST(Conversions, Fp8E4M3RoundTripAndSaturation) {
  for (int v = 0; v < 256; ++v) {
    if ((v & 0x7F) == 0x7F) continue;  // NaN
    const float f = fp8e4m3_to_f32(static_cast<uint8_t>(v));
    if (v == 0x80) continue;  // -0 encodes as 0x80 too, checked below
    EXPECT_EQ(f32_to_fp8e4m3(f), v) << v;
  }
  EXPECT_EQ(fp8e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(f32_to_fp8e4m3(1000.0f), 0x7E);
  EXPECT_EQ(f32_to_fp8e4m3(-1000.0f), 0xFE);
  EXPECT_EQ(fp8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f32_to_fp8e4m3(-0.0f), 0x80);
}

TEST(GemmW4, DequantIsExactWithNegativeScales) {
  const int64_t K = 16, N = 3, G = 8;
  std::vector<std::vector<int>> q(K, std::vector<int>(N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) q[k][n] = static_cast<int>((k * 5 + n * 3) % 16);
  auto qw = pack(q, K, N);
  const float sc[2][3] = {{0.5f, -0.25f, 2.0f}, {-1.0f, 0.125f, -3.0f}};
  std::vector<uint16_t> scales;
  for (auto& row : sc)
    for (float s : row) scales.push_back(f32_to_f16(s));
  // x = identity rows: y[m, n] = W[m, n] exactly.
  std::vector<float> xf(K * K, 0.0f);
  for (int64_t k = 0; k < K; ++k) xf[k * K + k] = 1.0f;
  auto x = bf16v(xf);
  std::vector<float> y(K * N);
  GemmW4Params p;
  p.K = K; p.N = N; p.G = G; p.OUT = MM_DT_F32;
  gemm_w4_ref(make_args({x.data(), qw.data(), scales.data(), y.data()}, K), p);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      EXPECT_EQ(y[k * N + n], static_cast<float>(q[k][n] - 8) * sc[k / G][n]) << k << "," << n;
  // bf16 output: the same exact values (all representable).
  std::vector<uint16_t> yb(K * N);
  p.OUT = MM_DT_BF16;
  gemm_w4_ref(make_args({x.data(), qw.data(), scales.data(), yb.data()}, K), p);
  for (int64_t i = 0; i < K * N; ++i) EXPECT_EQ(bf16_to_f32(yb[i]), y[i]);
}

TEST(GemmW4, ResultDoesNotDependOnThreads) {
  const int64_t K = 256, N = 200, M = 5, G = 128;
  std::vector<int32_t> qw(K / 8 * N);
  for (size_t i = 0; i < qw.size(); ++i) qw[i] = static_cast<int32_t>(splitmix64(i));
  std::vector<uint16_t> sc(K / G * N);
  for (size_t i = 0; i < sc.size(); ++i) sc[i] = f32_to_f16(0.01f * static_cast<float>(i % 7) - 0.03f);
  std::vector<uint16_t> x(M * K);
  for (size_t i = 0; i < x.size(); ++i) x[i] = f32_to_bf16(std::sin(static_cast<float>(i)));
  GemmW4Params p;
  p.K = K; p.N = N; p.G = G; p.OUT = MM_DT_F32;
  std::vector<float> y1(M * N), y4(M * N);
  set_num_threads(1);
  gemm_w4_ref(make_args({x.data(), qw.data(), sc.data(), y1.data()}, M), p);
  set_num_threads(4);
  gemm_w4_ref(make_args({x.data(), qw.data(), sc.data(), y4.data()}, M), p);
  EXPECT_EQ(0, std::memcmp(y1.data(), y4.data(), y1.size() * 4));
  // And each row equals the single-row (decode) result: M does not change the sums.
  std::vector<float> row(N);
  gemm_w4_ref(make_args({x.data() + 3 * K, qw.data(), sc.data(), row.data()}, 1), p);
  EXPECT_EQ(0, std::memcmp(row.data(), y1.data() + 3 * N, N * 4));
}

TEST(RmsNorm, ResidualGatherAndDoubleRounding) {
  // x = [3, 4] -> rms = sqrt(12.5); h/rms = [0.8485, 1.1314] -> bf16; times w = [1, 2] -> bf16.
  std::vector<uint16_t> x = bf16v({1, 1, 2, 3}), r = bf16v({0, 0, 1, 1});
  std::vector<uint16_t> w = bf16v({1, 2});
  std::vector<int32_t> rows = {1};
  std::vector<uint16_t> y(2);
  RmsNormParams p;
  p.N = 2; p.EPS = 0.0; p.RESIDUAL = 1; p.GATHER = 1;
  rms_norm_ref(make_args({x.data(), r.data(), w.data(), rows.data(), y.data()}, 2, 1), p);
  EXPECT_EQ(f32v(x), (std::vector<float>{1, 1, 3, 4}));  // only the gathered row updated
  const float inv = 1.0f / std::sqrt(12.5f);
  EXPECT_EQ(bf16_to_f32(y[0]), round_bf16(1.0f * round_bf16(3 * inv)));
  EXPECT_EQ(bf16_to_f32(y[1]), round_bf16(2.0f * round_bf16(4 * inv)));
}

TEST(RouteTopk, TiesGoToTheLowerExpertAndBiasOnlySelects) {
  RouteTopkParams p;
  p.E = 4; p.TOPK = 2; p.H = 1; p.FUSED_GEMM = 0;
  std::vector<float> logits = {0, 0, 0, 0, /* token 1 */ 0, 0, 2, 0};
  std::vector<float> bias = {0, 0, 0, 0};
  std::vector<int32_t> ids(4);
  std::vector<float> wts(4);
  route_topk_ref(make_args({logits.data(), nullptr, bias.data(), ids.data(), wts.data()}, 1), p);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_FLOAT_EQ(wts[0], 0.5f);
  bias = {0, 5, 0, 0};
  route_topk_ref(make_args({logits.data(), nullptr, bias.data(), ids.data(), wts.data()}, 2), p);
  EXPECT_EQ(ids[2], 1);  // 0.5 + 5
  EXPECT_EQ(ids[3], 2);  // sigmoid(2)
  const float s1 = 0.5f, s2 = 1.0f / (1.0f + std::exp(-2.0f));
  EXPECT_FLOAT_EQ(wts[2], s1 / (s1 + s2));
  EXPECT_FLOAT_EQ(wts[3], s2 / (s1 + s2));
}

TEST(RouteTopk, FusedEqualsDenseGemmThenTopk) {
  const int64_t T = 3, H = 40, E = 6;
  std::vector<uint16_t> x(T * H), gate(E * H);
  for (size_t i = 0; i < x.size(); ++i) x[i] = f32_to_bf16(std::cos(0.3f * i));
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = f32_to_bf16(std::sin(0.7f * i) * 0.2f);
  std::vector<float> bias = {0.1f, -0.2f, 0, 0.3f, 0, -0.1f};
  std::vector<float> logits(T * E);
  GemmDenseParams gp;
  gp.K = H; gp.N = E; gp.OUT = MM_DT_F32;
  gemm_dense_ref(make_args({x.data(), gate.data(), logits.data()}, T), gp);
  RouteTopkParams p;
  p.E = E; p.TOPK = 3; p.H = H;
  std::vector<int32_t> ids1(T * 3), ids2(T * 3);
  std::vector<float> w1(T * 3), w2(T * 3);
  p.FUSED_GEMM = 0;
  route_topk_ref(make_args({logits.data(), nullptr, bias.data(), ids1.data(), w1.data()}, T), p);
  p.FUSED_GEMM = 1;
  route_topk_ref(make_args({x.data(), gate.data(), bias.data(), ids2.data(), w2.data()}, T), p);
  EXPECT_EQ(ids1, ids2);
  EXPECT_EQ(0, std::memcmp(w1.data(), w2.data(), w1.size() * 4));
}

TEST(QkNormRopeKv, RotatesAndWritesThePagedCache) {
  QkNormRopeKvParams p;
  p.NQ = 1; p.NKV = 1; p.D = 4; p.DR = 4; p.THETA = 10000.0; p.EPS = 1e-6; p.BLOCK = 2; p.MAX_BLOCKS = 4;
  // Token at position 3 of slot 1: logical block 1 -> physical block 5, row 1.
  std::vector<uint16_t> qkv = bf16v({1, 1, 1, 1, /* k */ 1, 1, 1, 1, /* v */ 0.5f, -1, 2, 3});
  std::vector<uint16_t> ones = bf16v({1, 1, 1, 1});
  std::vector<int32_t> pos = {3}, slot = {1};
  std::vector<int32_t> bt = {0, 0, 0, 0, /* slot 1 */ 2, 5, 0, 0};
  std::vector<uint16_t> kp(8 * 2 * 4), vp(8 * 2 * 4), q(4);
  qk_norm_rope_kv_ref(make_args({qkv.data(), ones.data(), ones.data(), pos.data(), slot.data(), bt.data(), kp.data(),
                                 vp.data(), nullptr, nullptr, q.data()}, 1), p);
  const float a0 = 3.0f, a1 = 3.0f * (1.0f / std::pow(10000.0f, 0.5f));
  const std::vector<float> want = {std::cos(a0) - std::sin(a0), std::cos(a1) - std::sin(a1),
                                   std::cos(a0) + std::sin(a0), std::cos(a1) + std::sin(a1)};
  for (int d = 0; d < 4; ++d) {
    EXPECT_EQ(bf16_to_f32(q[d]), round_bf16(want[d])) << d;
    EXPECT_EQ(bf16_to_f32(kp[(5 * 2 + 1) * 4 + d]), round_bf16(want[d])) << d;
  }
  EXPECT_EQ(f32v(std::vector<uint16_t>(vp.begin() + (5 * 2 + 1) * 4, vp.begin() + (5 * 2 + 2) * 4)),
            (std::vector<float>{0.5f, -1, 2, 3}));
  // Nothing else written.
  int nonzero = 0;
  for (uint16_t v : kp) nonzero += v != 0;
  EXPECT_EQ(nonzero, 4);
}

TEST(QkNormRopeKv, Fp8CacheStoresScaledValues) {
  QkNormRopeKvParams p;
  p.NQ = 1; p.NKV = 1; p.D = 4; p.DR = 0; p.THETA = 10000.0; p.EPS = 1e-6; p.BLOCK = 2; p.MAX_BLOCKS = 1;
  p.KVDT = MM_DT_FP8E4M3;
  std::vector<uint16_t> qkv = bf16v({1, 1, 1, 1, 1, 1, 1, 1, /* v */ 896, -448, 1, 0});
  std::vector<uint16_t> ones = bf16v({1, 1, 1, 1});
  std::vector<int32_t> pos = {0}, slot = {0}, bt = {0};
  std::vector<uint8_t> kp(2 * 4), vp(2 * 4);
  std::vector<float> ks(2), vs(2);
  std::vector<uint16_t> q(4);
  qk_norm_rope_kv_ref(make_args({qkv.data(), ones.data(), ones.data(), pos.data(), slot.data(), bt.data(), kp.data(),
                                 vp.data(), ks.data(), vs.data(), q.data()}, 1), p);
  EXPECT_EQ(vs[0], 2.0f);  // amax 896 / 448
  EXPECT_EQ(fp8e4m3_to_f32(vp[0]) * vs[0], 896.0f);
  EXPECT_EQ(fp8e4m3_to_f32(vp[1]) * vs[0], -448.0f);
  EXPECT_EQ(fp8e4m3_to_f32(vp[2]) * vs[0], 1.0f);
}

TEST(Attention, CausalSoftmaxOverPagedKeys) {
  AttentionParams p;
  p.NQ = 2; p.NKV = 1; p.D = 2; p.BLOCK = 1; p.MAX_BLOCKS = 2;
  // Keys/values of positions 0, 1 in physical blocks 1, 0.
  std::vector<uint16_t> kp = bf16v({/* block 0 = pos 1 */ 0, 2, /* block 1 = pos 0 */ 1, 0});
  std::vector<uint16_t> vp = bf16v({10, 20, 1, 2});
  std::vector<int32_t> bt = {1, 0};
  std::vector<int32_t> pos = {0, 1}, slot = {0, 0};
  std::vector<uint16_t> q = bf16v({1, 1, 2, 0, /* token 1 */ 1, 1, 0, 1});
  std::vector<uint16_t> o(8);
  attention_ref(make_args({q.data(), pos.data(), slot.data(), bt.data(), kp.data(), vp.data(), nullptr, nullptr,
                           o.data()}, 2), p);
  // Token 0 sees only key 0: output = v0.
  EXPECT_EQ(f32v({o[0], o[1], o[2], o[3]}), (std::vector<float>{1, 2, 1, 2}));
  // Token 1, head 0: scores (1*1, 1*2)/sqrt2; head 1: (0, 2)/sqrt2.
  auto mix = [](float s0, float s1, float a, float b) {
    const float e0 = std::exp(s0), e1 = std::exp(s1);
    return (e0 * a + e1 * b) / (e0 + e1);
  };
  const float r2 = std::sqrt(2.0f);
  EXPECT_NEAR(bf16_to_f32(o[4]), mix(1 / r2, 2 / r2, 1, 10), 0.05);
  EXPECT_NEAR(bf16_to_f32(o[5]), mix(1 / r2, 2 / r2, 2, 20), 0.1);
  EXPECT_NEAR(bf16_to_f32(o[6]), mix(0, 2 / r2, 1, 10), 0.05);
  EXPECT_NEAR(bf16_to_f32(o[7]), mix(0, 2 / r2, 2, 20), 0.1);
}

TEST(Attention, Fp8CacheMatchesBf16) {
  // 6 tokens of one sequence written by QK_NORM_ROPE_KV into a bf16 and an fp8 cache, then
  // attended. e4m3 has a relative step of 2^-3 (rounding error <= 6.25 %) per stored value; the
  // softmax-weighted average of values keeps the error of the output within 8 % of its range.
  const int64_t T = 6, NQ = 4, NKV = 2, D = 16, W = NQ * D + 2 * NKV * D;
  std::vector<uint16_t> qkv(T * W), qn(NQ * D), kn(NKV * D);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = f32_to_bf16(std::sin(0.37f * i) * 2.0f);
  for (auto& v : qn) v = f32_to_bf16(1.0f);
  for (auto& v : kn) v = f32_to_bf16(1.0f);
  std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5}, slot(T, 0), bt = {1, 0};
  std::vector<uint16_t> o_b(T * NQ * D), o_f(T * NQ * D);
  for (int64_t kvdt : {int64_t{MM_DT_BF16}, int64_t{MM_DT_FP8E4M3}}) {
    QkNormRopeKvParams p;
    p.NQ = NQ; p.NKV = NKV; p.D = D; p.DR = 8; p.THETA = 10000.0; p.EPS = 1e-6; p.BLOCK = 4; p.MAX_BLOCKS = 2;
    p.KVDT = kvdt;
    std::vector<uint8_t> kp(2 * 4 * NKV * D * 2), vp(kp.size());
    std::vector<float> ks(2 * 4 * NKV), vs(ks.size());
    std::vector<uint16_t> q(T * NQ * D);
    qk_norm_rope_kv_ref(make_args({qkv.data(), qn.data(), kn.data(), pos.data(), slot.data(), bt.data(), kp.data(),
                                   vp.data(), ks.data(), vs.data(), q.data()}, T), p);
    AttentionParams a;
    a.NQ = NQ; a.NKV = NKV; a.D = D; a.BLOCK = 4; a.MAX_BLOCKS = 2; a.KVDT = kvdt;
    attention_ref(make_args({q.data(), pos.data(), slot.data(), bt.data(), kp.data(), vp.data(), ks.data(), vs.data(),
                             kvdt == MM_DT_BF16 ? o_b.data() : o_f.data()}, T), a);
  }
  float range = 0, err = 0;
  for (size_t i = 0; i < o_b.size(); ++i) {
    range = std::max(range, std::fabs(bf16_to_f32(o_b[i])));
    err = std::max(err, std::fabs(bf16_to_f32(o_b[i]) - bf16_to_f32(o_f[i])));
  }
  EXPECT_GT(range, 0.5f);
  EXPECT_LT(err, 0.08f * range);
  EXPECT_GT(err, 0.0f);
}

TEST(MoeAlign, GroupsSlotsByExpert) {
  MoeAlignParams p;
  p.E = 4; p.TOPK = 2;
  std::vector<int32_t> ids = {2, 0, 0, 3, 2, 1};
  std::vector<int32_t> off(5), sorted(6);
  moe_align_ref(make_args({ids.data(), off.data(), sorted.data()}, 3), p);
  EXPECT_EQ(off, (std::vector<int32_t>{0, 2, 3, 5, 6}));
  EXPECT_EQ(sorted, (std::vector<int32_t>{1, 2, 5, 0, 4, 3}));
}

// A small MoE layer: T = 3 tokens, E = 3 experts, top 2, deterministic words, scales, x, ids and
// routing weights (the slots of the reference tests below).
struct SmallMoe {
  int64_t H, I, G;
  static constexpr int64_t T = 3, E = 3, K = 2;
  std::vector<int32_t> w13, w2;
  std::vector<uint16_t> s13, s2, x;
  std::vector<int32_t> ids = {2, 0, 0, 1, 2, 1};
  std::vector<float> wts = {0.7f, 0.3f, 0.5f, 0.5f, 0.9f, 0.1f};
  SmallMoe(int64_t h, int64_t i, int64_t g)
      : H(h), I(i), G(g), w13(E * h / 8 * 2 * i), w2(E * i / 8 * h), s13(E * h / g * 2 * i), s2(E * i / g * h), x(T * h) {
    for (size_t j = 0; j < w13.size(); ++j) w13[j] = static_cast<int32_t>(splitmix64(j + 100));
    for (size_t j = 0; j < w2.size(); ++j) w2[j] = static_cast<int32_t>(splitmix64(j + 900));
    for (size_t j = 0; j < s13.size(); ++j) s13[j] = f32_to_f16(0.05f * ((j % 5) - 2.0f) + 0.01f);
    for (size_t j = 0; j < s2.size(); ++j) s2[j] = f32_to_f16(0.04f * ((j % 3) - 1.0f) + 0.02f);
    for (size_t j = 0; j < x.size(); ++j) x[j] = f32_to_bf16(std::sin(1.3f * j));
  }
};

// QL = 1 (kinds.def): the same words in strips of 32 columns give bit-identical results, for the
// decode (few rows, dequantized in registers) and prefill paths, GEMM_W4 and both expert kinds.
TEST(GemmW4, StripLayoutGivesTheSameBits) {
  const int64_t K = 256, N = 288, G = 64;
  std::vector<int32_t> qw(K / 8 * N), qs(qw.size());
  for (size_t i = 0; i < qw.size(); ++i) qw[i] = static_cast<int32_t>(splitmix64(i + 7));
  w4_rows_to_strips(qw.data(), 1, K / 8, N, qs.data());
  std::vector<uint16_t> sc(K / G * N);
  for (size_t i = 0; i < sc.size(); ++i) sc[i] = f32_to_f16(0.01f * static_cast<float>(i % 7) - 0.03f);
  for (int64_t M : {1, 4, 9}) {
    std::vector<uint16_t> x(M * K);
    for (size_t i = 0; i < x.size(); ++i) x[i] = f32_to_bf16(std::sin(0.7f * static_cast<float>(i)));
    GemmW4Params p;
    p.K = K; p.N = N; p.G = G; p.OUT = MM_DT_F32;
    std::vector<float> rows(M * N), strips(M * N);
    gemm_w4_ref(make_args({x.data(), qw.data(), sc.data(), rows.data()}, M), p);
    p.QL = 1;
    gemm_w4_ref(make_args({x.data(), qs.data(), sc.data(), strips.data()}, M), p);
    EXPECT_EQ(0, std::memcmp(rows.data(), strips.data(), rows.size() * 4)) << "M " << M;
  }
  SmallMoe m(64, 32, 32);
  const int64_t T = m.T, H = m.H, I = m.I, E = m.E, TK = m.K, GE = m.G;
  std::vector<int32_t> w13s(m.w13.size()), w2s(m.w2.size());
  w4_rows_to_strips(m.w13.data(), E, H / 8, 2 * I, w13s.data());
  w4_rows_to_strips(m.w2.data(), E, I / 8, H, w2s.data());
  auto &w13 = m.w13, &w2 = m.w2;
  auto &s13 = m.s13, &s2 = m.s2, &x = m.x;
  auto& ids = m.ids;
  auto& wts = m.wts;
  std::vector<uint16_t> act(T * TK * I), act_s(act.size()), y(T * H), y_s(T * H);
  MoeW13Params p13{H, I, E, TK, GE, 0};
  moe_w13_ref(make_args({x.data(), w13.data(), s13.data(), ids.data(), nullptr, nullptr, act.data()}, T), p13);
  p13.QL = 1;
  moe_w13_ref(make_args({x.data(), w13s.data(), s13.data(), ids.data(), nullptr, nullptr, act_s.data()}, T), p13);
  EXPECT_EQ(act, act_s);
  MoeW2Params p2{H, I, E, TK, GE, 0, 1};
  moe_w2_ref(make_args({act.data(), w2.data(), s2.data(), ids.data(), wts.data(), nullptr, nullptr, y.data()}, T), p2);
  p2.QL = 1;
  moe_w2_ref(make_args({act.data(), w2s.data(), s2.data(), ids.data(), wts.data(), nullptr, nullptr, y_s.data()}, T), p2);
  EXPECT_EQ(y, y_s);
}

TEST(Moe, ExpertsMatchPerExpertGemmsAndCombinePathsAgree) {
  SmallMoe m(16, 8, 8);
  const int64_t T = m.T, H = m.H, I = m.I, E = m.E, K = m.K, G = m.G;
  auto &w13 = m.w13, &w2 = m.w2;
  auto &s13 = m.s13, &s2 = m.s2, &x = m.x;
  auto& ids = m.ids;
  auto& wts = m.wts;
  std::vector<int32_t> off(E + 1), sorted(T * K);
  moe_align_ref(make_args({ids.data(), off.data(), sorted.data()}, T), MoeAlignParams{E, K});
  std::vector<uint16_t> act(T * K * I), act_g(T * K * I);
  MoeW13Params p13{H, I, E, K, G, 0};
  moe_w13_ref(make_args({x.data(), w13.data(), s13.data(), ids.data(), nullptr, nullptr, act.data()}, T), p13);
  p13.GROUPED = 1;
  moe_w13_ref(make_args({x.data(), w13.data(), s13.data(), ids.data(), off.data(), sorted.data(), act_g.data()}, T), p13);
  EXPECT_EQ(act, act_g);
  // Slot 3 (token 1, expert 1) against two GEMM_W4 calls on expert 1's columns.
  {
    const int64_t e = 1;
    std::vector<int32_t> q1(H / 8 * I), q3(H / 8 * I);
    std::vector<uint16_t> c1(H / G * I), c3(H / G * I);
    for (int64_t r = 0; r < H / 8; ++r)
      for (int64_t n = 0; n < I; ++n) {
        q1[r * I + n] = w13[(e * (H / 8) + r) * 2 * I + n];
        q3[r * I + n] = w13[(e * (H / 8) + r) * 2 * I + I + n];
      }
    for (int64_t r = 0; r < H / G; ++r)
      for (int64_t n = 0; n < I; ++n) {
        c1[r * I + n] = s13[(e * (H / G) + r) * 2 * I + n];
        c3[r * I + n] = s13[(e * (H / G) + r) * 2 * I + I + n];
      }
    std::vector<float> g(I), u(I);
    GemmW4Params gp{H, I, G, MM_DT_F32, 0, 0};
    gemm_w4_ref(make_args({x.data() + 1 * H, q1.data(), c1.data(), g.data()}, 1), gp);
    gemm_w4_ref(make_args({x.data() + 1 * H, q3.data(), c3.data(), u.data()}, 1), gp);
    for (int64_t n = 0; n < I; ++n)
      EXPECT_EQ(bf16_to_f32(act[3 * I + n]), round_bf16(g[n] / (1.0f + std::exp(-g[n])) * u[n])) << n;
  }
  std::vector<uint16_t> y(T * H), y2(T * H);
  std::vector<float> contrib(T * K * H);
  moe_w2_ref(make_args({act.data(), w2.data(), s2.data(), ids.data(), wts.data(), nullptr, nullptr, y.data()}, T),
             MoeW2Params{H, I, E, K, G, 0, 1});
  moe_w2_ref(make_args({act.data(), w2.data(), s2.data(), ids.data(), wts.data(), off.data(), sorted.data(), contrib.data()}, T),
             MoeW2Params{H, I, E, K, G, 1, 0});
  moe_combine_ref(make_args({contrib.data(), y2.data()}, T), MoeCombineParams{H, K});
  EXPECT_EQ(y, y2);
}

TEST(MoeAlign, LeavesOutExpertsNotHeld) {
  // Experts [2, 4) of 4 held (an expert-parallel rank, E0 = 2, E = 2): slots 0, 3 and 4.
  MoeAlignParams p;
  p.E = 2; p.TOPK = 2; p.E0 = 2;
  std::vector<int32_t> ids = {2, 0, 0, 3, 2, 1};
  std::vector<int32_t> off(3), sorted(6, -1);
  moe_align_ref(make_args({ids.data(), off.data(), sorted.data()}, 3), p);
  EXPECT_EQ(off, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(sorted, (std::vector<int32_t>{0, 4, 3, -1, -1, -1}));
}

// Expert parallelism (docs/parallel.md): each of 2 ranks runs the MoE kinds on its half of the
// experts (E0, E), both the decode path (W13, W2 with COMBINE) and the prefill path (ALIGN, grouped
// W13, W2 per slot, COMBINE with EL), and ALL_REDUCE sums the ranks' bf16 outputs. Every held
// slot's act row and f32 contribution must equal the unsharded one bit for bit (same expert, same
// arithmetic); the sums differ from the unsharded ones only by the rounding of the ranks' partial
// sums to bf16 before the all-reduce. The rows a rank does not write start as NaN, so a kernel
// that read another rank's slot would poison the result.
TEST(Moe, ExpertParallelRanksSumToTheUnshardedMoe) {
  const int64_t T = 6, H = 32, I = 16, E = 4, K = 2, G = 8, EP = 2, EL = E / EP;
  std::vector<int32_t> w13(E * H / 8 * 2 * I), w2(E * I / 8 * H);
  for (size_t i = 0; i < w13.size(); ++i) w13[i] = static_cast<int32_t>(splitmix64(i + 300));
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<int32_t>(splitmix64(i + 700));
  std::vector<uint16_t> s13(E * H / G * 2 * I), s2(E * I / G * H);
  for (size_t i = 0; i < s13.size(); ++i) s13[i] = f32_to_f16(0.03f * ((i % 7) - 3.0f) + 0.01f);
  for (size_t i = 0; i < s2.size(); ++i) s2[i] = f32_to_f16(0.02f * ((i % 5) - 2.0f) + 0.015f);
  std::vector<uint16_t> x(T * H);
  for (size_t i = 0; i < x.size(); ++i) x[i] = f32_to_bf16(std::sin(0.7f * i) + 0.1f);
  // Token 2 routes to two experts of rank 0, token 5 to two of rank 1, the others across both.
  std::vector<int32_t> ids = {3, 0, 1, 2, 0, 1, 2, 3, 1, 3, 3, 2};
  std::vector<float> wts(T * K);
  for (size_t i = 0; i < wts.size(); ++i) wts[i] = 0.2f + 0.05f * static_cast<float>(i);
  const float nan = std::nanf("");

  // Unsharded: decode path y, prefill path (per-slot rows) contrib.
  std::vector<uint16_t> act(T * K * I), y(T * H);
  std::vector<float> contrib(T * K * H);
  moe_w13_ref(make_args({x.data(), w13.data(), s13.data(), ids.data(), nullptr, nullptr, act.data()}, T),
              MoeW13Params{H, I, E, K, G, 0});
  moe_w2_ref(make_args({act.data(), w2.data(), s2.data(), ids.data(), wts.data(), nullptr, nullptr, y.data()}, T),
             MoeW2Params{H, I, E, K, G, 0, 1});
  {
    std::vector<int32_t> off(E + 1), sorted(T * K);
    moe_align_ref(make_args({ids.data(), off.data(), sorted.data()}, T), MoeAlignParams{E, K});
    moe_w2_ref(make_args({act.data(), w2.data(), s2.data(), ids.data(), wts.data(), off.data(), sorted.data(),
                          contrib.data()}, T),
               MoeW2Params{H, I, E, K, G, 2, 0});
  }

  std::vector<std::vector<uint16_t>> dec(EP, std::vector<uint16_t>(T * H)), pre(EP, std::vector<uint16_t>(T * H));
  for (int64_t r = 0; r < EP; ++r) {
    const int64_t e0 = r * EL;
    // The rank's weights: experts [e0, e0 + EL) of the stacks, as the compiler slices them.
    std::vector<int32_t> q13(w13.begin() + e0 * H / 8 * 2 * I, w13.begin() + (e0 + EL) * H / 8 * 2 * I);
    std::vector<uint16_t> c13(s13.begin() + e0 * H / G * 2 * I, s13.begin() + (e0 + EL) * H / G * 2 * I);
    std::vector<int32_t> q2(w2.begin() + e0 * I / 8 * H, w2.begin() + (e0 + EL) * I / 8 * H);
    std::vector<uint16_t> c2(s2.begin() + e0 * I / G * H, s2.begin() + (e0 + EL) * I / G * H);
    MoeW13Params p13{H, I, EL, K, G, 0};
    p13.E0 = e0;
    MoeW2Params p2{H, I, EL, K, G, 0, 1};
    p2.E0 = e0;
    // Decode path.
    std::vector<uint16_t> ract(T * K * I, f32_to_bf16(nan));
    moe_w13_ref(make_args({x.data(), q13.data(), c13.data(), ids.data(), nullptr, nullptr, ract.data()}, T), p13);
    moe_w2_ref(make_args({ract.data(), q2.data(), c2.data(), ids.data(), wts.data(), nullptr, nullptr, dec[r].data()}, T),
               p2);
    // Prefill path.
    MoeAlignParams pa{EL, K};
    pa.E0 = e0;
    std::vector<int32_t> off(EL + 1), sorted(T * K);
    moe_align_ref(make_args({ids.data(), off.data(), sorted.data()}, T), pa);
    std::vector<uint16_t> gact(T * K * I, f32_to_bf16(nan));
    p13.GROUPED = 2;
    moe_w13_ref(make_args({x.data(), q13.data(), c13.data(), ids.data(), off.data(), sorted.data(), gact.data()}, T),
                p13);
    std::vector<float> rc(T * K * H, nan);
    p2.GROUPED = 2;
    p2.COMBINE = 0;
    moe_w2_ref(make_args({gact.data(), q2.data(), c2.data(), ids.data(), wts.data(), off.data(), sorted.data(), rc.data()},
                         T),
               p2);
    MoeCombineParams pc{H, K};
    pc.E0 = e0;
    pc.EL = EL;
    moe_combine_ref(make_args({rc.data(), pre[r].data(), ids.data()}, T), pc);
    for (int64_t s = 0; s < T * K; ++s) {
      if (ids[s] < e0 || ids[s] >= e0 + EL) continue;
      for (int64_t i = 0; i < I; ++i) {
        EXPECT_EQ(ract[s * I + i], act[s * I + i]) << "rank " << r << " slot " << s;
        EXPECT_EQ(gact[s * I + i], act[s * I + i]) << "rank " << r << " slot " << s;
      }
      for (int64_t n = 0; n < H; ++n) EXPECT_EQ(rc[s * H + n], contrib[s * H + n]) << "rank " << r << " slot " << s;
    }
  }
  // Both paths give each rank the same partial sums (j ascending over its slots).
  EXPECT_EQ(dec, pre);
  std::vector<uint16_t> partial0 = dec[0];
  AllReduceParams ar{H, MM_DT_BF16, EP, 0};
  all_reduce_ref(make_args({dec[0].data(), dec[1].data()}, T), ar);
  EXPECT_EQ(dec[0], dec[1]);
  // Rounding bound: each partial and the sum are rounded to bf16 once (relative 2^-9 each), the
  // unsharded sum once; 2^-8 of the magnitudes involved covers them with margin.
  for (int64_t i = 0; i < T * H; ++i) {
    const float p0 = bf16_to_f32(partial0[i]), sum = bf16_to_f32(dec[0][i]), ref = bf16_to_f32(y[i]);
    const float bound = std::ldexp(std::fabs(p0) + std::fabs(sum - p0) + std::fabs(ref), -8) + 1e-6f;
    EXPECT_NEAR(sum, ref, bound) << i;
  }
  // Tokens whose experts all sit on one rank get that rank's sum exactly (the other adds +0).
  for (int64_t t : {2, 5})
    for (int64_t n = 0; n < H; ++n) EXPECT_EQ(dec[0][t * H + n], y[t * H + n]) << t;
}

TEST(Sample, GreedyTiesAndDeterminism) {
  const int64_t V = 5;
  std::vector<float> logits = {1, 3, 3, 0, -1};
  std::vector<float> temp = {0}, topp = {1};
  std::vector<int32_t> topk = {0}, out(1);
  std::vector<uint64_t> seed = {42};
  SampleParams p{V};
  auto run = [&](int64_t step) {
    mm_kernel_args a = make_args({logits.data(), temp.data(), topk.data(), topp.data(), seed.data(), out.data()}, 1, 1);
    a.dim[MM_DIM_STEP] = step;
    sample_ref(a, p);
    return out[0];
  };
  EXPECT_EQ(run(0), 1);  // tie between 1 and 2 -> lower id
  temp[0] = 1.0f;
  topk[0] = 1;
  EXPECT_EQ(run(7), 1);  // top_k = 1 is greedy whatever u is
  topk[0] = 0;
  const int32_t a = run(3), b = run(3);
  EXPECT_EQ(a, b);  // same seed and step: same token
  // The empirical distribution over steps follows softmax(logits).
  logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f), -INFINITY, -INFINITY};
  std::map<int32_t, int> counts;
  const int n = 4000;
  for (int s = 0; s < n; ++s) ++counts[run(s)];
  EXPECT_NEAR(counts[0] / static_cast<double>(n), 0.5, 0.04);
  EXPECT_NEAR(counts[1] / static_cast<double>(n), 0.3, 0.04);
  EXPECT_NEAR(counts[2] / static_cast<double>(n), 0.2, 0.04);
  EXPECT_EQ(counts[3] + counts[4], 0);
  // top_p = 0.6 keeps {0, 1}: mass 0.8 renormalized.
  topp[0] = 0.6f;
  counts.clear();
  for (int s = 0; s < n; ++s) ++counts[run(s)];
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[0] / static_cast<double>(n), 0.625, 0.04);
  // Temperature 0.5 squares the odds: p ~ {0.25, 0.09, 0.04} / 0.38 (the exponential race draws
  // from softmax(logits / temperature)).
  topp[0] = 1.0f;
  temp[0] = 0.5f;
  counts.clear();
  for (int s = 0; s < n; ++s) ++counts[run(s)];
  EXPECT_NEAR(counts[0] / static_cast<double>(n), 0.25 / 0.38, 0.04);
  EXPECT_NEAR(counts[1] / static_cast<double>(n), 0.09 / 0.38, 0.04);
  EXPECT_NEAR(counts[2] / static_cast<double>(n), 0.04 / 0.38, 0.03);
  // Only -inf logits: each is the maximum (x = 0), so the draw is uniform, as with the masses.
  logits = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  temp[0] = 1.0f;
  counts.clear();
  for (int s = 0; s < n; ++s) ++counts[run(s)];
  for (int32_t id = 0; id < V; ++id) EXPECT_NEAR(counts[id] / static_cast<double>(n), 0.2, 0.04) << id;
  // One NaN next to finite logits: never drawn.
  logits = {NAN, 0.0f, 0.0f, -1.0f, 2.0f};
  counts.clear();
  for (int s = 0; s < 200; ++s) ++counts[run(s)];
  EXPECT_EQ(counts[0], 0);
}

TEST(ThreadPool, AnExceptionInAChunkReachesTheCaller) {
  // A chunk that throws (std::bad_alloc in a kernel's scratch vector) used to escape a worker
  // thread: std::terminate. It is rethrown in the caller, and the pool keeps working.
  const int threads = num_threads();
  set_num_threads(4);
  EXPECT_THROW(parallel_for(64, 1,
                            [](int64_t b, int64_t) {
                              if (b >= 32) throw std::bad_alloc();
                            }),
               std::bad_alloc);
  std::atomic<int64_t> sum{0};
  parallel_for(100, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950);
  set_num_threads(1);
  EXPECT_THROW(parallel_for(8, 1, [](int64_t, int64_t) { throw std::runtime_error("x"); }), std::runtime_error);
  parallel_for(8, 1, [&](int64_t, int64_t) { sum = 0; });
  EXPECT_EQ(sum.load(), 0);
  set_num_threads(threads);
}

}  // namespace
}  // namespace mm::ref
