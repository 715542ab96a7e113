// Bandwidth of the decode kernels that dominate a decode step (GEMM_W4 variant 0, MOE_W13 and
// MOE_W2 direct variants) at the full-size model's shapes. L2 is flushed (a 256 MiB memset)
// before every timed launch; the time is the kernel alone (events around it), the bandwidth counts
// the weight bytes the launch must read (qweight + scales of the experts it touches).
// Run: kernels_gpu_test --gtest_filter='GpuBench.*'
#include "test/gpu/gpu_harness.h"

namespace mm::gputest {
namespace {
using kernels::Kind;

double time_us(const Compiled& k, const std::vector<Buf*>& ops, const std::vector<int64_t>& dims, void* flush, size_t flush_bytes) {
  constexpr int kIters = 20;
  launch(k, ops, dims);   // warm-up (module load, clocks)
  std::vector<float> ms;
  for (int i = 0; i < kIters; ++i) {
    EXPECT_TRUE(ctx().dev->memset_async(flush, i & 0xff, flush_bytes).ok());
    auto a = ctx().dev->record_event();
    launch(k, ops, dims, /*sync=*/false);
    auto b = ctx().dev->record_event();
    if (!a.ok() || !b.ok()) return -1;
    auto t = ctx().dev->elapsed_ms(*a, *b);
    EXPECT_TRUE(t.ok());
    ms.push_back(t.ok() ? *t : 0.f);
    (void)ctx().dev->destroy_event(*a);
    (void)ctx().dev->destroy_event(*b);
  }
  std::sort(ms.begin(), ms.end());
  return 1000.0 * ms[ms.size() / 2];   // median
}

void report(const char* what, double bytes, double us) {
  std::printf("[bench] %-44s %8.1f us  %7.1f GB/s  (%.1f MB)\n", what, us, bytes / (us * 1e3), bytes / 1e6);
  ::testing::Test::RecordProperty(what, std::to_string(bytes / (us * 1e3)) + " GB/s");
}

TEST(GpuBench, DecodeBandwidth) {
  MM_REQUIRE_GPU();
  const size_t flush_bytes = size_t{256} << 20;
  auto fl = ctx().dev->alloc(flush_bytes);
  ASSERT_TRUE(fl.ok());
  std::printf("[bench] device %s, %d SMs\n", ctx().dev->info().name.c_str(), ctx().dev->info().sm_count);
  struct G { const char* name; int64_t K, N, M; };
  for (G g : {G{"GEMM_W4 v0 qkv 3072x8192 M=1", 3072, 8192, 1}, G{"GEMM_W4 v0 o_proj 6144x3072 M=1", 6144, 3072, 1},
              G{"GEMM_W4 v0 qkv 3072x8192 M=8", 3072, 8192, 8}, G{"GEMM_W4 v0 o_proj 6144x3072 M=16", 6144, 3072, 16}}) {
    auto k = build(Kind::GEMM_W4, {{{"K", g.K}, {"N", g.N}, {"G", 128}, {"OUT", 0}, {"VARIANT", 0}}, {}});
    ASSERT_TRUE(k);
    Buf x(g.M * g.K * 2), qw(g.K / 8 * g.N * 4), sc(g.K / 128 * g.N * 2), y(g.M * g.N * 2);
    fill_bf16(x); fill_u32(qw); fill_f16(sc, 0.002f, 0.02f, true);
    x.upload(); qw.upload(); sc.upload(); y.upload();
    const double us = time_us(*k, {&x, &qw, &sc, &y}, {g.M, g.M}, *fl, flush_bytes);
    report(g.name, static_cast<double>(qw.host.size() + sc.host.size()), us);
  }
  // MoE decode at batch 1: top-8 of 192 experts, H 3072, I 1536.
  const int64_t H = 3072, I = 1536, E = 192, TOPK = 8, T = 1;
  Buf x(T * H * 2), w13q(E * (H / 8) * 2 * I * 4), w13s(E * (H / 128) * 2 * I * 2), w2q(E * (I / 8) * H * 4),
      w2s(E * (I / 128) * H * 2), ids(T * TOPK * 4), wts(T * TOPK * 4), act(T * TOPK * I * 2), y(T * H * 2);
  fill_bf16(x); fill_u32(w13q); fill_f16(w13s, 0.002f, 0.02f, true); fill_u32(w2q); fill_f16(w2s, 0.002f, 0.02f, true);
  for (int64_t j = 0; j < TOPK; ++j) { ids.h<int32_t>()[j] = static_cast<int32_t>(j * 23 + 1); wts.h<float>()[j] = 0.125f; }
  fill_bf16(act);
  for (Buf* b : {&x, &w13q, &w13s, &w2q, &w2s, &ids, &wts, &act, &y}) b->upload();
  auto k13 = build(Kind::MOE_W13, {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", 0}}, {}});
  auto k2 = build(Kind::MOE_W2, {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", 0}, {"COMBINE", 1}}, {}});
  ASSERT_TRUE(k13 && k2);
  const double b13 = TOPK * ((H / 8) * 2 * I * 4.0 + (H / 128) * 2 * I * 2.0);
  const double b2 = TOPK * ((I / 8) * H * 4.0 + (I / 128) * H * 2.0);
  report("MOE_W13 decode top-8 of 192, B=1", b13,
         time_us(*k13, {&x, &w13q, &w13s, &ids, nullptr, nullptr, &act}, {T}, *fl, flush_bytes));
  report("MOE_W2 decode combine top-8 of 192, B=1", b2,
         time_us(*k2, {&act, &w2q, &w2s, &ids, &wts, nullptr, nullptr, &y}, {T}, *fl, flush_bytes));
  EXPECT_TRUE(ctx().dev->free(*fl).ok());
}

}  // namespace
}  // namespace mm::gputest
