// Prefill kernel benches (GpuBench.Prefill*) at the full-size model's prefill shapes: the W4 GEMMs
// (q|k|v and o_proj over a 2048-token chunk), the grouped expert GEMMs (2048 and 4096 tokens, top-8
// of 192 experts: ~85 and ~170 rows per expert), and causal attention over a 2048-token chunk at
// depth 0 and 16384 (bf16 and fp8 KV cache). Each line gives the time (median of the timed
// launches, events around each launch), the FLOP rate counting only useful work (2 per
// multiply-add: padding rows, masked keys and dequantization are not counted) and the bandwidth
// on the bytes the launch must move at least once (weights + activations in + out). Every input
// is larger than L2 or re-read many times within the launch, so no flush is needed between
// launches. Compare the rates with a bf16 cuBLAS GEMM and a device copy measured in the same
// run (scripts/gpu_check.sh prefill prints both, scripts/gpu_ceilings.py, next to these lines).
// Run: kernels_gpu_test --gtest_filter='GpuBench.Prefill*'.
#include <algorithm>
#include <numeric>
#include <utility>

#include <tuple>

#include "test/gpu/gpu_harness.h"

namespace mm::gputest {
namespace {
using kernels::Kind;

// Median of `iters` timed launches after one warm-up, in microseconds.
double time_launch_us(const Compiled& k, const std::vector<Buf*>& ops, const std::vector<int64_t>& dims, int iters) {
  launch(k, ops, dims);
  return median_event_us(iters, [](int) {}, [&] { launch(k, ops, dims, /*sync=*/false); });
}

void report(const std::string& what, double flops, double bytes, double us) {
  std::printf("[bench] %-52s %9.1f us %7.1f TFLOP/s %7.1f GB/s\n", what.c_str(), us, flops / (us * 1e6),
              bytes / (us * 1e3));
  ::testing::Test::RecordProperty(what, std::to_string(flops / (us * 1e6)) + " TFLOP/s");
}

TEST(GpuBench, PrefillGemm) {
  MM_REQUIRE_GPU();
  std::printf("[bench] device %s, %d SMs\n", ctx().dev->info().name.c_str(), ctx().dev->info().sm_count);
  struct G { const char* name; int64_t K, N, M; };
  for (G g : {G{"qkv 3072x8192", 3072, 8192, 2048}, G{"o_proj 6144x3072", 6144, 3072, 2048}}) {
    Buf x(g.M * g.K * 2), qw(g.K / 8 * g.N * 4), sc(g.K / 128 * g.N * 2), y(g.M * g.N * 2);
    fill_bf16(x); fill_u32(qw); fill_f16(sc, 0.002f, 0.02f, true);
    x.upload(); qw.upload(); sc.upload(); y.upload();
    const double flops = 2.0 * g.M * g.K * g.N;
    const double bytes = x.host.size() + qw.host.size() + sc.host.size() + y.host.size();
    // QL 1: the words in strips of 32 columns (the plans' layout; random words either way).
    for (auto [v, bm, ql] : {std::tuple{1, 64, 0}, std::tuple{2, 64, 0}, std::tuple{2, 128, 0}, std::tuple{2, 64, 1},
                             std::tuple{2, 128, 1}}) {
      auto k = build(Kind::GEMM_W4,
                     {{{"K", g.K}, {"N", g.N}, {"G", 128}, {"OUT", 0}, {"VARIANT", v}, {"BM", bm}, {"QL", ql}}, {}});
      ASSERT_TRUE(k);
      report("GEMM_W4 v" + std::to_string(v) + " BM " + std::to_string(bm) + " QL " + std::to_string(ql) + " " + g.name +
                 " M=" + std::to_string(g.M),
             flops, bytes, time_launch_us(*k, {&x, &qw, &sc, &y}, {g.M, g.M}, 10));
    }
  }
  // The prefill router (bf16 gate [192, 3072], fp32 logits): the FMA tiles against the tensor cores.
  const int64_t M = 2048, K = 3072, N = 192;
  Buf x(M * K * 2), w(N * K * 2), y(M * N * 4);
  fill_bf16(x); fill_bf16(w, -0.1f, 0.1f);
  x.upload(); w.upload(); y.upload();
  for (int64_t v : {1, 2}) {
    auto k = build(Kind::GEMM_DENSE, {{{"K", K}, {"N", N}, {"WDT", 0}, {"OUT", 2}, {"MDIM", 0}, {"VARIANT", v}}, {}});
    ASSERT_TRUE(k);
    report("GEMM_DENSE v" + std::to_string(v) + " router 3072x192 M=2048", 2.0 * M * K * N,
           double(x.host.size() + w.host.size() + y.host.size()), time_launch_us(*k, {&x, &w, &y}, {M, M}, 10));
  }
}

TEST(GpuBench, PrefillMoe) {
  MM_REQUIRE_GPU();
  const int64_t H = 3072, I = 1536, E = 192, TOPK = 8;
  Buf w13q(E * (H / 8) * 2 * I * 4), w13s(E * (H / 128) * 2 * I * 2), w2q(E * (I / 8) * H * 4), w2s(E * (I / 128) * H * 2);
  fill_u32(w13q); fill_f16(w13s, 0.002f, 0.02f, true); fill_u32(w2q); fill_f16(w2s, 0.002f, 0.02f, true);
  for (Buf* b : {&w13q, &w13s, &w2q, &w2s}) b->upload();
  for (int64_t T : {2048, 4096}) {
    const int64_t S = T * TOPK;
    Buf x(T * H * 2), ids(S * 4), wts(S * 4), off((E + 1) * 4), sorted(S * 4), act(S * I * 2), y(S * H * 4);
    fill_bf16(x);
    fill_bf16(act);
    std::vector<int32_t> all(E);
    std::iota(all.begin(), all.end(), 0);
    for (int64_t t = 0; t < T; ++t) {   // distinct experts per token, uniform over the experts
      std::shuffle(all.begin(), all.end(), rng());
      for (int64_t j = 0; j < TOPK; ++j) { ids.h<int32_t>()[t * TOPK + j] = all[j]; wts.h<float>()[t * TOPK + j] = 0.125f; }
    }
    ref::moe_align_ref(host_args({&ids, &off, &sorted}, {T}), {E, TOPK});
    for (Buf* b : {&x, &ids, &wts, &off, &sorted, &act, &y}) b->upload();
    const std::string tt = " T=" + std::to_string(T) + " (" + std::to_string(S / E) + " rows/expert)";
    const double f13 = 2.0 * S * H * 2 * I, f2 = 2.0 * S * I * H;
    const double b13 = w13q.host.size() + w13s.host.size() + x.host.size() + act.host.size();
    const double b2 = w2q.host.size() + w2s.host.size() + act.host.size() + y.host.size();
    for (auto [g, bm, ql] : {std::tuple{1, 64, 0}, std::tuple{2, 64, 0}, std::tuple{2, 128, 0}, std::tuple{2, 64, 1},
                             std::tuple{2, 128, 1}}) {
      auto k13 = build(Kind::MOE_W13, {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", g},
                                        {"BM", bm}, {"QL", ql}}, {}});
      auto k2 = build(Kind::MOE_W2, {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", g},
                                      {"COMBINE", 0}, {"BM", bm}, {"QL", ql}}, {}});
      ASSERT_TRUE(k13 && k2);
      const std::string cfg = " grouped " + std::to_string(g) + " BM " + std::to_string(bm) + " QL " + std::to_string(ql);
      report("MOE_W13" + cfg + tt, f13, b13, time_launch_us(*k13, {&x, &w13q, &w13s, &ids, &off, &sorted, &act}, {T}, 10));
      report("MOE_W2" + cfg + tt, f2, b2, time_launch_us(*k2, {&act, &w2q, &w2s, &ids, &wts, &off, &sorted, &y}, {T}, 10));
    }
  }
}

TEST(GpuBench, PrefillAttention) {
  MM_REQUIRE_GPU();
  const int64_t NQ = 48, NKV = 8, D = 128, BLOCK = 16, T = 2048;
  for (int64_t depth : {0, 16384}) {
    const int64_t ctx_len = depth + T, MAXB = (ctx_len + BLOCK - 1) / BLOCK;
    for (int64_t kvdt : {0, 3}) {
      const int64_t es = kvdt == 3 ? 1 : 2;
      Buf q(T * NQ * D * 2), pos(T * 4), slot(T * 4), bt(MAXB * 4), kp(MAXB * BLOCK * NKV * D * es), vp(kp.host.size()),
          ks(MAXB * BLOCK * NKV * 4), vs(ks.host.size()), o(T * NQ * D * 2);
      fill_bf16(q);
      if (kvdt == 3) {
        fill_fp8(kp);
        fill_fp8(vp);
        fill_f32(ks, 0.001f, 0.01f);
        fill_f32(vs, 0.001f, 0.01f);
      } else {
        fill_bf16(kp);
        fill_bf16(vp);
      }
      for (int64_t t = 0; t < T; ++t) {
        pos.h<int32_t>()[t] = static_cast<int32_t>(depth + t);
        slot.h<int32_t>()[t] = 0;
      }
      for (int64_t b = 0; b < MAXB; ++b) bt.h<int32_t>()[b] = static_cast<int32_t>((b * 7) % MAXB);   // scattered
      for (Buf* b : {&q, &pos, &slot, &bt, &kp, &vp, &ks, &vs, &o}) b->upload();
      // Causal work: each token attends to depth + t + 1 keys; QK^T and PV are 2 D FLOP per key each.
      const double keys = T * static_cast<double>(depth) + T * (T + 1) / 2.0;
      const double flops = 4.0 * NQ * D * keys;
      const double bytes = q.host.size() + kp.host.size() + vp.host.size() + o.host.size();
      for (int64_t v : {0, 3}) {
        if (v == 0 && depth > 0) continue;   // the FMA kernel takes seconds there
        kernels::Params p{{{"NQ", NQ}, {"NKV", NKV}, {"D", D}, {"KVDT", kvdt}, {"BLOCK", BLOCK}, {"MAX_BLOCKS", MAXB},
                           {"VARIANT", v}}, {}};
        auto k = build(Kind::ATTENTION, p);
        ASSERT_TRUE(k);
        std::vector<Buf*> ops = {&q, &pos, &slot, &bt, &kp, &vp, kvdt == 3 ? &ks : nullptr, kvdt == 3 ? &vs : nullptr, &o};
        report("ATTENTION v" + std::to_string(v) + (kvdt == 3 ? " fp8" : " bf16") + " T=2048 depth " + std::to_string(depth),
               flops, bytes, time_launch_us(*k, ops, {T, T, 1, ctx_len}, v == 0 ? 3 : 10));
      }
    }
  }
}

}  // namespace
}  // namespace mm::gputest
