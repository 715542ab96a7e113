// Bandwidth of the decode kernels that dominate a decode step (GEMM_W4 variant 0, MOE_W13 and
// MOE_W2 direct variants) at the full-size model's shapes; the bandwidth counts the weight bytes
// the launch must read (qweight + scales of the experts it touches). Three timings per kernel:
//   flush   - a 256 MiB memset before every timed launch, events around the kernel alone (the
//             first bench's method; the memset leaves L2 full of dirty lines, so the kernel's
//             reads also pay their write-back, and the ~2-3 us launch latency is in the time);
//   rflush  - the same, but L2 is flushed by reading 256 MiB (clean lines, as in a decode step,
//             whose other kernels write only a few KB of activations);
//   stream  - R launches back to back over R distinct copies of the weights (> 150 MB, so
//             nothing stays in L2) with the programmatic-launch attribute, replayed as one CUDA
//             graph, events around it, divided by R: what consecutive layers of a decode step see.
// Each GEMV twice: QL 0 (GPTQ rows) and QL 1 (strips of 32 columns, the plans' layout).
// Run: kernels_gpu_test --gtest_filter='GpuBench.*'. For Nsight Compute, MM_BENCH_PROFILE=1 makes
// every timing a single launch and skips the graphs.
#include <cstdlib>

#include "test/gpu/gpu_harness.h"

namespace mm::gputest {
namespace {
using kernels::Kind;

// Reads n 16-byte words (L2 flush that leaves clean lines); the xor keeps the loads alive.
constexpr const char* kReadFlushSrc = R"(
extern "C" __global__ void mm_bench_read_flush(const mm_kernel_args args) {
  const uint4* p = (const uint4*)args.ptr[0];
  const long long n = args.dim[0];
  unsigned a = 0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const uint4 v = p[i];
    a ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (a == 0x9E3779B9u) ((unsigned*)args.ptr[1])[0] = a;
}
)";

// Spins for args.dim[0] ns of %globaltimer; block 0 writes the SM clock cycles and ns it saw.
constexpr const char* kSpinSrc = R"(
extern "C" __global__ void mm_bench_spin(const mm_kernel_args args) {
  unsigned long long t0, t1;
  const long long c0 = clock64();
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1)); } while ((long long)(t1 - t0) < args.dim[0]);
  const long long c1 = clock64();
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    ((long long*)args.ptr[0])[0] = c1 - c0;
    ((long long*)args.ptr[0])[1] = (long long)(t1 - t0);
  }
}
)";

rt::Kernel load_raw(const char* name, const char* body, bool& ok) {
  const std::string src = std::string(kernels::embedded_source("abi.h")) + body;
  auto res = ctx().nvrtc->compile(name, src);
  EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
  ok = res.ok();
  if (!ok) return {};
  rt::KernelImage img;
  img.name = name;
  for (const auto& bin : (*res)->binaries)
    img.cubins.emplace_back(bin.arch, std::string_view(reinterpret_cast<const char*>(bin.cubin.data()), bin.cubin.size()));
  auto k = ctx().dev->load(img);
  EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.error().message);
  ok = k.ok();
  return ok ? *k : rt::Kernel{};
}

// The SM clock seen by a 20 us spin (MHz). The card's clocks are left alone (METHOD.md); an idle
// card runs its SMs slowly until it has been busy for a while, so the benches warm it up first.
struct Clock {
  rt::Kernel spin{};
  Buf out{16};
  bool ok = false;
  Clock() {
    spin = load_raw("mm_bench_spin", kSpinSrc, ok);
    if (ok) out.upload();
  }
  void run(int64_t ns, unsigned blocks) {
    mm_kernel_args a{};
    a.ptr[0] = out.dev;
    a.dim[0] = ns;
    EXPECT_TRUE(ctx().dev->launch(spin, rt::Dim3{blocks, 1, 1}, rt::Dim3{128, 1, 1}, 0, a).ok());
    EXPECT_TRUE(ctx().dev->synchronize().ok());
  }
  double mhz() {
    run(20000, 1);
    const auto v = out.download();
    int64_t c[2];
    std::memcpy(c, v.data(), 16);
    return c[1] > 0 ? 1e3 * static_cast<double>(c[0]) / static_cast<double>(c[1]) : 0.0;
  }
  void warm_up() {
    const double before = mhz();
    for (int i = 0; i < 10; ++i) run(30'000'000, static_cast<unsigned>(ctx().dev->info().sm_count * 4));   // 0.3 s busy
    std::printf("[bench] SM clock %.0f MHz idle, %.0f MHz after 0.3 s busy\n", before, mhz());
  }
};

struct Flush {
  size_t bytes = size_t{256} << 20;
  void* buf = nullptr;
  void* sink = nullptr;
  rt::Kernel reader{};
  bool ok = false;
  Flush() {
    auto b = ctx().dev->alloc(bytes);
    auto s = ctx().dev->alloc(64);
    if (!b.ok() || !s.ok()) return;
    buf = *b;
    sink = *s;
    EXPECT_TRUE(ctx().dev->memset_async(buf, 1, bytes).ok());
    const std::string src = std::string(kernels::embedded_source("abi.h")) + kReadFlushSrc;
    auto res = ctx().nvrtc->compile("mm_bench_read_flush", src);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    if (!res.ok()) return;
    rt::KernelImage img;
    img.name = "mm_bench_read_flush";
    for (const auto& bin : (*res)->binaries)
      img.cubins.emplace_back(bin.arch, std::string_view(reinterpret_cast<const char*>(bin.cubin.data()), bin.cubin.size()));
    auto k = ctx().dev->load(img);
    EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.error().message);
    if (!k.ok()) return;
    reader = *k;
    ok = true;
  }
  ~Flush() {
    if (buf) (void)ctx().dev->free(buf);
    if (sink) (void)ctx().dev->free(sink);
  }
  void dirty(int i) { EXPECT_TRUE(ctx().dev->memset_async(buf, i & 0xff, bytes).ok()); }
  void clean() {
    mm_kernel_args a{};
    a.ptr[0] = buf;
    a.ptr[1] = sink;
    a.dim[0] = static_cast<int64_t>(bytes / 16);
    EXPECT_TRUE(ctx().dev->launch(reader, rt::Dim3{132 * 8, 1, 1}, rt::Dim3{512, 1, 1}, 0, a).ok());
  }
};

bool profile_mode() { return std::getenv("MM_BENCH_PROFILE") != nullptr; }

// One launch per timing, after a dirty (memset) or clean (read) L2 flush; median of 20, in us.
double time_us(const Compiled& k, const std::vector<Buf*>& ops, const std::vector<int64_t>& dims, Flush& fl,
               bool clean_flush) {
  const int kIters = profile_mode() ? 1 : 20;
  launch(k, ops, dims);   // warm-up (module load, clocks)
  return median_event_us(
      kIters, [&](int i) { if (clean_flush) fl.clean(); else fl.dirty(i); },
      [&] { launch(k, ops, dims, /*sync=*/false); });
}

// R launches back to back (operand sets opsets[0..R-1], distinct weights) captured in one CUDA
// graph (so host launch latency is out of the picture, as in the runtime's decode graph), per
// launch, median of 5. MM_BENCH_PROFILE=1 (single launches for ncu) skips it: returns 0.
double time_stream_us(const Compiled& k, const std::vector<std::vector<Buf*>>& opsets, const std::vector<int64_t>& dims,
                      Flush& fl, bool pdl = false) {
  if (profile_mode()) return 0.0;
  EXPECT_TRUE(ctx().dev->begin_capture().ok());
  for (const auto& ops : opsets) launch(k, ops, dims, /*sync=*/false, pdl);
  auto g = ctx().dev->end_capture();
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
  if (!g.ok()) return -1;
  EXPECT_TRUE(ctx().dev->launch_graph(*g).ok());   // warm-up (graph upload)
  // The flush is ~85 us of GPU work: the events and the graph are queued before it ends.
  const double us = median_event_us(5, [&](int) { fl.clean(); }, [&] { EXPECT_TRUE(ctx().dev->launch_graph(*g).ok()); });
  EXPECT_TRUE(ctx().dev->synchronize().ok());
  EXPECT_TRUE(ctx().dev->destroy_graph(*g).ok());
  return us / static_cast<double>(opsets.size());
}

void report(const char* what, double bytes, double us) {
  std::printf("[bench] %-44s %8.1f us  %7.1f GB/s  (%.1f MB)\n", what, us, bytes / (us * 1e3), bytes / 1e6);
  ::testing::Test::RecordProperty(what, std::to_string(bytes / (us * 1e3)) + " GB/s");
}
void report3(const char* what, double bytes, double flush, double rflush, double stream) {
  std::printf("[bench] %-40s flush %6.1f us %6.0f GB/s | rflush %6.1f us %6.0f GB/s | stream %6.1f us %6.0f GB/s  (%.1f MB)\n",
              what, flush, bytes / (flush * 1e3), rflush, bytes / (rflush * 1e3), stream, bytes / (stream * 1e3), bytes / 1e6);
  ::testing::Test::RecordProperty(what, std::to_string(bytes / (stream * 1e3)) + " GB/s (stream)");
}

// R distinct copies of a K x N packed weight and its scales (160 MB or more together, so nothing
// stays in L2 between launches), with x [M, K] and y [M, N]: the GEMM_W4 operand sets of a stream.
struct GemvOperands {
  Buf x, y;
  size_t wbytes;
  std::vector<std::unique_ptr<Buf>> bufs;
  std::vector<std::vector<Buf*>> opsets;
  GemvOperands(int64_t K, int64_t N, int64_t M)
      : x(M * K * 2), y(M * N * 2), wbytes(static_cast<size_t>(K / 8 * N * 4 + K / 128 * N * 2)) {
    fill_bf16(x);
    x.upload(); y.upload();
    const int R = static_cast<int>(std::min<size_t>(16, (size_t{160} << 20) / wbytes + 1));
    for (int r = 0; r < R; ++r) {
      bufs.push_back(std::make_unique<Buf>(K / 8 * N * 4));
      Buf* q = bufs.back().get();
      bufs.push_back(std::make_unique<Buf>(K / 128 * N * 2));
      Buf* sc = bufs.back().get();
      fill_u32(*q); fill_f16(*sc, 0.002f, 0.02f, true);
      q->upload(); sc->upload();
      opsets.push_back({&x, q, sc, &y});
    }
  }
};

// The MoE decode at batch 1 (top-8 of 192 experts, H 3072, I 1536): R = 24 id sets that cover all
// 192 experts once, the MOE_W13 and MOE_W2 (combine) operand sets over them, and the weight bytes
// one launch of each reads.
struct MoeDecodeOperands {
  static constexpr int64_t H = 3072, I = 1536, E = 192, TOPK = 8, T = 1, R = E / TOPK;
  Buf x{T * H * 2}, w13q{E * (H / 8) * 2 * I * 4}, w13s{E * (H / 128) * 2 * I * 2}, w2q{E * (I / 8) * H * 4},
      w2s{E * (I / 128) * H * 2}, wts{T * TOPK * 4}, act{T * TOPK * I * 2}, y{T * H * 2};
  std::vector<std::unique_ptr<Buf>> idsets;
  std::vector<std::vector<Buf*>> s13, s2;
  const double b13 = TOPK * ((H / 8) * 2 * I * 4.0 + (H / 128) * 2 * I * 2.0);
  const double b2 = TOPK * ((I / 8) * H * 4.0 + (I / 128) * H * 2.0);
  MoeDecodeOperands() {
    fill_bf16(x); fill_u32(w13q); fill_f16(w13s, 0.002f, 0.02f, true); fill_u32(w2q); fill_f16(w2s, 0.002f, 0.02f, true);
    for (int64_t j = 0; j < TOPK; ++j) wts.h<float>()[j] = 0.125f;
    fill_bf16(act);
    for (Buf* b : {&x, &w13q, &w13s, &w2q, &w2s, &wts, &act, &y}) b->upload();
    std::vector<int32_t> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    for (int64_t r = 0; r < R; ++r) {
      idsets.push_back(std::make_unique<Buf>(T * TOPK * 4));
      for (int64_t j = 0; j < TOPK; ++j) idsets.back()->h<int32_t>()[j] = perm[r * TOPK + j];
      idsets.back()->upload();
      s13.push_back({&x, &w13q, &w13s, idsets.back().get(), nullptr, nullptr, &act});
      s2.push_back({&act, &w2q, &w2s, idsets.back().get(), &wts, nullptr, nullptr, &y});
    }
  }
  kernels::Params w13(int64_t ql) const {
    return {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", 0}, {"QL", ql}}, {}};
  }
  kernels::Params w2(int64_t ql) const {
    return {{{"H", H}, {"I", I}, {"E", E}, {"TOPK", TOPK}, {"G", 128}, {"GROUPED", 0}, {"COMBINE", 1}, {"QL", ql}}, {}};
  }
};

TEST(GpuBench, DecodeBandwidth) {
  MM_REQUIRE_GPU();
  Flush fl;
  ASSERT_TRUE(fl.ok);
  std::printf("[bench] device %s, %d SMs\n", ctx().dev->info().name.c_str(), ctx().dev->info().sm_count);
  Clock clk;
  ASSERT_TRUE(clk.ok);
  clk.warm_up();
  struct G { const char* name; int64_t K, N, M; };
  for (G g : {G{"GEMM_W4 v0 qkv 3072x8192 M=1", 3072, 8192, 1}, G{"GEMM_W4 v0 o_proj 6144x3072 M=1", 6144, 3072, 1},
              G{"GEMM_W4 v0 qkv 3072x8192 M=8", 3072, 8192, 8}, G{"GEMM_W4 v0 o_proj 6144x3072 M=16", 6144, 3072, 16},
              G{"GEMM_W4 v0 qkv 3072x8192 M=16", 3072, 8192, 16}, G{"GEMM_W4 v0 o_proj 6144x3072 M=8", 6144, 3072, 8}}) {
    const GemvOperands ops(g.K, g.N, g.M);
    for (int64_t ql : {0, 1}) {
      auto k = build(Kind::GEMM_W4, {{{"K", g.K}, {"N", g.N}, {"G", 128}, {"OUT", 0}, {"VARIANT", 0}, {"QL", ql}}, {}});
      ASSERT_TRUE(k);
      const double d = time_us(*k, ops.opsets[0], {g.M, g.M}, fl, false), c = time_us(*k, ops.opsets[0], {g.M, g.M}, fl, true);
      report3((std::string(g.name) + " QL" + std::to_string(ql)).c_str(), static_cast<double>(ops.wbytes), d, c,
              time_stream_us(*k, ops.opsets, {g.M, g.M}, fl, true));
    }
  }
  // MoE decode at batch 1. Stream: 24 launches whose ids cover all 192 experts once.
  const MoeDecodeOperands m;
  const int64_t T = MoeDecodeOperands::T;
  for (int64_t ql : {0, 1}) {
    auto k13 = build(Kind::MOE_W13, m.w13(ql));
    auto k2 = build(Kind::MOE_W2, m.w2(ql));
    ASSERT_TRUE(k13 && k2);
    const std::string qs = " QL" + std::to_string(ql);
    report3(("MOE_W13 decode top-8 of 192, B=1" + qs).c_str(), m.b13, time_us(*k13, m.s13[0], {T}, fl, false),
            time_us(*k13, m.s13[0], {T}, fl, true), time_stream_us(*k13, m.s13, {T}, fl, true));
    report3(("MOE_W2 decode combine top-8 of 192, B=1" + qs).c_str(), m.b2, time_us(*k2, m.s2[0], {T}, fl, false),
            time_us(*k2, m.s2[0], {T}, fl, true), time_stream_us(*k2, m.s2, {T}, fl, true));
  }
  std::printf("[bench] SM clock %.0f MHz at the end\n", clk.mhz());
}

// The other per-layer decode launches at batch 1: the fused router (ROUTE_TOPK FUSED_GEMM=1, one
// cluster of CS blocks per token; CS=1 is the former one-block-per-token kernel) against the
// unfused pair GEMM_DENSE + ROUTE_TOPK FUSED_GEMM=0, and decode attention (ATTENTION_DECODE split
// + combine, bf16 and fp8 KV) at contexts 512, 4096 and 16384. Timed after a clean (read) flush.
TEST(GpuBench, DecodeRouterAndAttention) {
  MM_REQUIRE_GPU();
  Flush fl;
  ASSERT_TRUE(fl.ok);
  Clock clk;
  ASSERT_TRUE(clk.ok);
  clk.warm_up();
  const int64_t H = 3072, E = 192, TOPK = 8, T = 1;
  Buf x(T * H * 2), gate(E * H * 2), bias(E * 4), ids(T * TOPK * 4), w(T * TOPK * 4), logits(T * E * 4);
  fill_bf16(x); fill_bf16(gate, -0.05f, 0.05f); fill_f32(bias, -0.5f, 0.5f);
  for (Buf* b : {&x, &gate, &bias, &ids, &w, &logits}) b->upload();
  const double gate_bytes = static_cast<double>(gate.host.size());
  for (int64_t cs : {1, 8}) {
    auto k = build(Kind::ROUTE_TOPK, {{{"E", E}, {"TOPK", TOPK}, {"H", H}, {"WDT", 0}, {"FUSED_GEMM", 1}, {"CS", cs}}, {}});
    ASSERT_TRUE(k);
    const std::string name = "ROUTE_TOPK fused E=192 B=1 CS=" + std::to_string(cs);
    report(name.c_str(), gate_bytes, time_us(*k, {&x, &gate, &bias, &ids, &w}, {T}, fl, true));
  }
  for (int64_t v : {0, 1, 2}) {
    auto g = build(Kind::GEMM_DENSE, {{{"K", H}, {"N", E}, {"WDT", 0}, {"OUT", 2}, {"MDIM", 0}, {"VARIANT", v}}, {}});
    ASSERT_TRUE(g);
    const std::string name = "GEMM_DENSE router v" + std::to_string(v) + " B=1";
    report(name.c_str(), gate_bytes, time_us(*g, {&x, &gate, &logits}, {T}, fl, true));
  }
  auto r0 = build(Kind::ROUTE_TOPK, {{{"E", E}, {"TOPK", TOPK}, {"H", H}, {"WDT", 0}, {"FUSED_GEMM", 0}}, {}});
  ASSERT_TRUE(r0);
  // Five slots as in the prefill lowering: no gate without the fused GEMM (kinds.def).
  report("ROUTE_TOPK from logits B=1", E * 4.0, time_us(*r0, {&logits, nullptr, &bias, &ids, &w}, {T}, fl, true));

  // Decode attention as the decode lowering emits it: ATTENTION_DECODE split (VARIANT 0) then the
  // combine (VARIANT 1), SPLITS = 256 (a plan of max_seq_len >= 4096; each token uses
  // ceil((pos + 1) / 16) splits of them, at most 256 at batch 1). Bytes: the K and V rows read
  // (plus the fp8 row scales).
  const int64_t NQ = 48, NKV = 8, D = 128, BLOCK = 16, SPLITS = 256;
  for (int64_t kvdt : {0, 3})
    for (int64_t ctxlen : {512, 4096, 16384}) {
      const int64_t MAXB = ctxlen / BLOCK, esz = kvdt == 3 ? 1 : 2;
      Buf q(NQ * D * 2), pos(4), slot(4), bt(MAXB * 4), kp(MAXB * BLOCK * NKV * D * esz), vp(kp.host.size()),
          ks(MAXB * BLOCK * NKV * 4), vs(ks.host.size()), part(NQ * SPLITS * (D + 2) * 4), o(NQ * D * 2);
      fill_bf16(q);
      if (kvdt == 3) {
        fill_fp8(kp); fill_fp8(vp);
        fill_f32(ks, 0.001f, 0.01f); fill_f32(vs, 0.001f, 0.01f);
      } else {
        fill_bf16(kp); fill_bf16(vp);
      }
      pos.h<int32_t>()[0] = static_cast<int32_t>(ctxlen - 1);
      slot.h<int32_t>()[0] = 0;
      for (int64_t b = 0; b < MAXB; ++b) bt.h<int32_t>()[b] = static_cast<int32_t>((b * 7) % MAXB);   // scattered blocks
      for (Buf* b : {&q, &pos, &slot, &bt, &kp, &vp, &ks, &vs, &part, &o}) b->upload();
      kernels::Params p{{{"NQ", NQ}, {"NKV", NKV}, {"D", D}, {"KVDT", kvdt}, {"BLOCK", BLOCK}, {"MAX_BLOCKS", MAXB},
                         {"VARIANT", 0}, {"SPLITS", SPLITS}}, {}};
      auto a = build(Kind::ATTENTION_DECODE, p);
      p.ints["VARIANT"] = 1;
      auto c = build(Kind::ATTENTION_DECODE, p);
      ASSERT_TRUE(a && c);
      std::vector<Buf*> ops = {&q, &pos, &slot, &bt, &kp, &vp, kvdt == 3 ? &ks : nullptr, kvdt == 3 ? &vs : nullptr,
                               &part, &o};
      const std::vector<int64_t> dims = {1, 1, 1, ctxlen};
      const double kv_bytes = 2.0 * ctxlen * NKV * (D * esz + (kvdt == 3 ? 4 : 0));
      const std::string tag = std::string(kvdt == 3 ? " fp8" : " bf16") + " ctx " + std::to_string(ctxlen) + " B=1";
      report(("ATTENTION_DECODE split" + tag).c_str(), kv_bytes, time_us(*a, ops, dims, fl, true));
      report(("ATTENTION_DECODE combine" + tag).c_str(), NQ * std::min<int64_t>(SPLITS, (ctxlen + 15) / 16) * (D + 2) * 4.0,
             time_us(*c, ops, dims, fl, true));
    }
}


// Reads a packed int4 matrix u32[KR, N] (KR = K/8 rows) the way the decode GEMV core does, with no
// math: warp item (strip of 32 columns, part p of P parts of the rows); per 8 rows a lane loads
// the 16-byte word quad of row 4h + (lane & 3), columns strip + 4 (lane / 4) (mm_w4_gv's pattern:
// a warp load is 4 rows x 128 contiguous bytes). TILED = 1: the same bytes laid out strip-major,
// u32[N/32][KR][32], so a warp's rows are one contiguous run. UNROLL loads in flight per lane.
// dim[0] = KR, dim[1] = N, dim[2] = P, dim[3] = TILED.
constexpr const char* kReadPatternSrc = R"(
extern "C" __global__ void mm_bench_read_pattern(const mm_kernel_args args) {
  const unsigned* m = (const unsigned*)args.ptr[0];
  const long long KR = args.dim[0], N = args.dim[1], P = args.dim[2], tiled = args.dim[3];
  const long long item = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const long long strip = item / P, p = item % P;
  if (strip * 32 >= N) return;
  const long long r0 = p * KR / P, r1 = (p + 1) * KR / P;   // multiples of 8 when 8P | KR
  unsigned a = 0;
  if (!tiled) {
    const unsigned* base = m + strip * 32 + 4 * (lane >> 2);
#pragma unroll 1
    for (long long r = r0; r < r1; r += 32) {   // 4 units of 8 rows in flight
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const long long row = r + 8 * (u >> 1) + 4 * (u & 1) + (lane & 3);
        v[u] = r + 8 * (u >> 1) < r1 ? *(const uint4*)(base + row * N) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) a ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
  } else {
    const uint4* base = (const uint4*)(m + strip * KR * 32 + r0 * 32);
    const long long n16 = (r1 - r0) * 8;   // 16-byte words of this warp's run
#pragma unroll 1
    for (long long i = lane; i < n16; i += 32 * 8) {
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) v[u] = i + 32 * u < n16 ? base[i + 32 * u] : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int u = 0; u < 8; ++u) a ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
  }
  if (a == 0x9E3779B9u) ((unsigned*)args.ptr[1])[0] = a;
}
)";

// What any kernel can do with the decode GEMVs' bytes: the read-only pattern kernel above over the
// qkv, o_proj, w13 and w2 matrix sizes, as a graph of launches over distinct copies (the `stream`
// timing of DecodeBandwidth), in the GEMV core's layout and strip-major. Explorations, run only
// with MM_BENCH_SWEEP=1 (scripts/bench.sh sweep).
bool sweep_mode() { return std::getenv("MM_BENCH_SWEEP") != nullptr; }

TEST(GpuBench, DecodeReadCeiling) {
  MM_REQUIRE_GPU();
  if (profile_mode() || !sweep_mode()) GTEST_SKIP() << "set MM_BENCH_SWEEP=1 to run (graphs only)";
  Flush fl;
  ASSERT_TRUE(fl.ok);
  Clock clk;
  ASSERT_TRUE(clk.ok);
  clk.warm_up();
  bool ok = false;
  const rt::Kernel k = load_raw("mm_bench_read_pattern", kReadPatternSrc, ok);
  ASSERT_TRUE(ok);
  Buf sink(64);
  sink.upload();
  struct S { const char* name; int64_t K, N; };
  for (S sh : {S{"qkv 3072x8192", 3072, 8192}, S{"o_proj 6144x3072", 6144, 3072}, S{"w13 x8 3072x24576", 3072, 24576},
               S{"w2 x8 12288x3072", 12288, 3072}}) {
    const int64_t KR = sh.K / 8;
    const size_t bytes = static_cast<size_t>(KR * sh.N * 4);
    const int R = static_cast<int>(std::min<size_t>(16, (size_t{160} << 20) / bytes + 1));
    std::vector<std::unique_ptr<Buf>> ms;
    for (int r = 0; r < R; ++r) {
      ms.push_back(std::make_unique<Buf>(bytes));
      ms.back()->upload();
    }
    for (int64_t tiled : {0, 1})
      for (int64_t P : {4, 8, 16}) {
        if (KR % (8 * P) != 0) continue;
        const unsigned warps = static_cast<unsigned>(sh.N / 32 * P);
        EXPECT_TRUE(ctx().dev->begin_capture().ok());
        for (int r = 0; r < R; ++r) {
          mm_kernel_args a{};
          a.ptr[0] = ms[r]->dev;
          a.ptr[1] = sink.dev;
          a.dim[0] = KR; a.dim[1] = sh.N; a.dim[2] = P; a.dim[3] = tiled;
          EXPECT_TRUE(ctx().dev->launch(k, rt::Dim3{(warps + 7) / 8, 1, 1}, rt::Dim3{256, 1, 1}, 0, a).ok());
        }
        auto g = ctx().dev->end_capture();
        ASSERT_TRUE(g.ok()) << g.error().message;
        EXPECT_TRUE(ctx().dev->launch_graph(*g).ok());
        const double us = median_event_us(5, [&](int) { fl.clean(); }, [&] { EXPECT_TRUE(ctx().dev->launch_graph(*g).ok()); }) / R;
        EXPECT_TRUE(ctx().dev->synchronize().ok());
        EXPECT_TRUE(ctx().dev->destroy_graph(*g).ok());
        std::printf("[bench] read %-20s %-12s P=%-2lld warps %5u: %6.1f us %6.0f GB/s\n", sh.name,
                    tiled ? "strip-major" : "gemv layout", static_cast<long long>(P), warps, us, bytes / (us * 1e3));
      }
  }
}

// The decode GEMVs (QL 1, the plans' layout) over their split (WK warps per block, CS blocks per
// cluster, U units per register set): `stream` timing without and with programmatic launches (as
// in a decode step); the split specialize.cpp picks is marked. Run only with MM_BENCH_SWEEP=1.
TEST(GpuBench, DecodeSplitSweep) {
  MM_REQUIRE_GPU();
  if (profile_mode() || !sweep_mode()) GTEST_SKIP() << "set MM_BENCH_SWEEP=1 to run (graphs only)";
  Flush fl;
  ASSERT_TRUE(fl.ok);
  Clock clk;
  ASSERT_TRUE(clk.ok);
  clk.warm_up();
  auto sweep = [&](const char* what, Kind kind, kernels::Params base, const std::vector<std::vector<Buf*>>& opsets,
                   const std::vector<int64_t>& dims, double bytes, const std::vector<int64_t>& wks) {
    auto picked = build(kind, base);
    ASSERT_TRUE(picked);
    const int64_t pw = picked->spec.params.ints.at("WK"), pc = picked->spec.params.ints.at("CS"),
                  pu = picked->spec.params.ints.at("U");
    for (int64_t wk : wks)
      for (int64_t cs : {1, 2, 4})
        for (int64_t u : {2, 4}) {
          kernels::Params p = base;
          p.ints["WK"] = wk; p.ints["CS"] = cs; p.ints["U"] = u;
          if (!kernels::specialize(kind, p).ok()) continue;
          auto k = build(kind, p);
          ASSERT_TRUE(k);
          const double plain = time_stream_us(*k, opsets, dims, fl), pdl = time_stream_us(*k, opsets, dims, fl, true);
          std::printf("[bench] sweep %-8s WK=%lld CS=%lld U=%lld: stream %6.1f us %5.0f GB/s | pdl %6.1f us %5.0f GB/s%s\n",
                      what, static_cast<long long>(wk), static_cast<long long>(cs), static_cast<long long>(u), plain,
                      bytes / (plain * 1e3), pdl, bytes / (pdl * 1e3), wk == pw && cs == pc && u == pu ? "  <- picked" : "");
        }
  };
  struct G { const char* name; int64_t K, N; };
  for (G g : {G{"qkv", 3072, 8192}, G{"o_proj", 6144, 3072}}) {
    const GemvOperands ops(g.K, g.N, 1);
    sweep((std::string(g.name) + " M=1").c_str(), Kind::GEMM_W4,
          {{{"K", g.K}, {"N", g.N}, {"G", 128}, {"OUT", 0}, {"VARIANT", 0}, {"QL", 1}}, {}}, ops.opsets, {1, 1},
          static_cast<double>(ops.wbytes), {2, 4, 8});
  }
  const MoeDecodeOperands m;
  sweep("w13", Kind::MOE_W13, m.w13(1), m.s13, {MoeDecodeOperands::T}, m.b13, {1, 2, 4});
  sweep("w2", Kind::MOE_W2, m.w2(1), m.s2, {MoeDecodeOperands::T}, m.b2, {4, 8});
  std::printf("[bench] SM clock %.0f MHz at the end\n", clk.mhz());
}

}  // namespace
}  // namespace mm::gputest
