// specialize(): parameter checks, names, baked constants, grid formulas; NVRTC driver: error
// report with the offending generated line, deduplication, arch parsing.
#include <gtest/gtest.h>

#include <thread>

#include "codegen/kernels/abi.h"
#include "codegen/kernels/specialize.h"
#include "codegen/nvrtc/nvrtc_compiler.h"

namespace {
using mm::kernels::Kind;
using mm::kernels::Params;
using mm::kernels::specialize;
using mm::kernels::kernel_source;

Params w4(int64_t k, int64_t n, int64_t g, int64_t variant) {
  return Params{{{"K", k}, {"N", n}, {"G", g}, {"OUT", 0}, {"VARIANT", variant}}, {}};
}

TEST(Specialize, KindNamesRoundTrip) {
  for (int k = 0; k < static_cast<int>(Kind::COUNT); ++k) {
    const auto name = mm::kernels::kind_name(static_cast<Kind>(k));
    auto back = mm::kernels::kind_from_name(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(static_cast<int>(*back), k);
  }
  EXPECT_FALSE(mm::kernels::kind_from_name("GEMM_W8").has_value());
}

TEST(Specialize, BakesConstantsAndNamesTheEntry) {
  auto s = specialize(Kind::GEMM_W4, w4(3072, 8192, 128, 0));
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto src = kernel_source(*s);
  ASSERT_TRUE(src.ok()) << src.error().message;
  EXPECT_EQ(src->entry, "gemm_w4_bm64_cs1_g128_k3072_mdim0_n8192_out0_ql0_u2_variant0_wk8");
  EXPECT_NE(src->source.find("constexpr int K = 3072;"), std::string::npos);
  EXPECT_NE(src->source.find("#define MM_ENTRY " + src->entry), std::string::npos);
  EXPECT_NE(src->source.find("struct mm_kernel_args"), std::string::npos);  // abi.h is embedded
  // The typed operand views of the registry, in ptr[] order.
  EXPECT_NE(src->source.find("const mm_bf16* x = (const mm_bf16*)(a).ptr[0];"), std::string::npos);
  EXPECT_NE(src->source.find("const mm_u32* qw = (const mm_u32*)(a).ptr[1];"), std::string::npos);
  EXPECT_NE(src->source.find("void* y = (void*)(a).ptr[3];"), std::string::npos);
  EXPECT_EQ(s->block[0], 256);
  const int64_t dims[8] = {5, 1, 1, 100, 0, 0, 0, 0};
  EXPECT_EQ(s->grid[0].eval(dims), 8192 / 32);   // one block of 8 warps per 32-column strip
  EXPECT_EQ(s->grid[1].eval(dims), 1);
  auto p = specialize(Kind::GEMM_W4, w4(3072, 8192, 128, 1));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->grid[0].eval(dims), 64);
  EXPECT_EQ(p->grid[1].eval(dims), 1);   // ceil(5 / 64)
  const int64_t big[8] = {129, 1, 1, 1, 0, 0, 0, 0};
  EXPECT_EQ(p->grid[1].eval(big), 3);
}

TEST(Specialize, FloatParamsChangeTheName) {
  Params a{{{"N", 256}, {"WDT", 0}, {"RESIDUAL", 0}, {"GATHER", 0}}, {{"EPS", 1e-6}}};
  Params b = a;
  b.floats["EPS"] = 1e-5;
  auto sa = specialize(Kind::RMS_NORM, a), sb = specialize(Kind::RMS_NORM, b);
  ASSERT_TRUE(sa.ok() && sb.ok());
  auto ca = kernel_source(*sa), cb = kernel_source(*sb);
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_NE(ca->entry, cb->entry);
  EXPECT_NE(ca->source.find("constexpr double EPS = 9.9999999999999995e-07;"), std::string::npos);
  // A 16-bit weight view follows WDT.
  EXPECT_NE(ca->source.find("const mm_bf16* w = (const mm_bf16*)(a).ptr[2];"), std::string::npos);
  Params f16 = a;
  f16.ints["WDT"] = 1;
  auto s16 = specialize(Kind::RMS_NORM, f16);
  ASSERT_TRUE(s16.ok());
  EXPECT_NE(kernel_source(*s16)->source.find("const __half* w = (const __half*)(a).ptr[2];"), std::string::npos);
}

TEST(Specialize, RejectsMissingParameter) {
  auto s = specialize(Kind::GEMM_W4, Params{{{"K", 3072}, {"G", 128}, {"OUT", 0}, {"VARIANT", 0}}, {}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("GEMM_W4"), std::string::npos);
  EXPECT_NE(s.error().message.find("missing parameter N"), std::string::npos);
}

TEST(Specialize, RejectsUnknownParameterAndWrongType) {
  Params p = w4(3072, 8192, 128, 0);
  p.ints["NN"] = 3;
  auto s = specialize(Kind::GEMM_W4, p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unknown parameter NN"), std::string::npos) << s.error().message;
  Params q = w4(3072, 8192, 128, 0);
  q.ints.erase("N");
  q.floats["N"] = 8192.5;
  auto t = specialize(Kind::GEMM_W4, q);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("parameter N must be an integer"), std::string::npos) << t.error().message;
}

TEST(Specialize, TemplateRulesComeOnTopOfTheKindsRules) {
  // G = 32 is a valid GEMM_W4 (the reference takes it) but the CUDA template tiles by 64.
  auto s = specialize(Kind::GEMM_W4, w4(3072, 8192, 32, 0));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("G = 32 must be a multiple of 64"), std::string::npos) << s.error().message;
}

TEST(Specialize, SourceNeedsTheDerivedConstants) {
  auto s = kernel_source(Kind::GEMM_W4, w4(3072, 8192, 128, 0));  // not specialized: no WK/CS/THREADS
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("derived parameter"), std::string::npos);
}

TEST(Specialize, CollectiveHasNoSource) {
  auto s = specialize(Kind::ALL_REDUCE, Params{{{"N", 256}, {"DT", 0}, {"RANKS", 2}}, {}});
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto src = kernel_source(*s);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.error().message.find("collective"), std::string::npos) << src.error().message;
}

TEST(Registry, DescribesEveryKind) {
  for (size_t k = 0; k < mm::kernels::kKindCount; ++k) {
    const auto& info = mm::kernels::kind_info(static_cast<Kind>(k));
    EXPECT_GT(info.slots, 0) << info.name;
    EXPECT_LE(info.slots, MM_MAX_PTRS) << info.name;
    // A collective (ALL_REDUCE) has no template; every other kind has one.
    EXPECT_EQ(mm::kernels::embedded_source(info.file).empty(), mm::kernels::is_collective(info)) << info.name;
    EXPECT_NE(mm::kernels::find_param(info, "THREADS"), nullptr) << info.name;
  }
  const auto& route = mm::kernels::kind_info(Kind::ROUTE_TOPK);
  EXPECT_EQ(route.slots, 5);  // x|logits, gate, bias, ids, weights
  mm::kernels::KernelParams prefill;
  ASSERT_EQ(mm::kernels::parse_params(Kind::ROUTE_TOPK,
                                      Params{{{"E", 8}, {"TOPK", 2}, {"H", 64}, {"WDT", 0}, {"FUSED_GEMM", 0}}, {}},
                                      &prefill),
            "");
  EXPECT_TRUE(mm::kernels::slot_present(Kind::ROUTE_TOPK, prefill, 0));
  EXPECT_FALSE(mm::kernels::slot_present(Kind::ROUTE_TOPK, prefill, 1));  // no gate without the GEMV
  EXPECT_TRUE(mm::kernels::slot_present(Kind::ROUTE_TOPK, prefill, 2));
  // The split-K scratch of decode attention exists only when there is more than one split (a
  // short --max-seq-len gives SPLITS = 1: the kernel writes o directly).
  for (int64_t splits : {1, 4}) {
    mm::kernels::KernelParams att;
    ASSERT_EQ(mm::kernels::parse_params(Kind::ATTENTION_DECODE,
                                        Params{{{"NQ", 4}, {"NKV", 2}, {"D", 64}, {"KVDT", 0}, {"BLOCK", 16},
                                                {"MAX_BLOCKS", 4}, {"VARIANT", 0}, {"SPLITS", splits}}, {}},
                                        &att),
              "");
    EXPECT_EQ(mm::kernels::slot_present(Kind::ATTENTION_DECODE, att, 8), splits > 1) << splits;
  }
  // ATTENTION is the prefill kernel: its split decode variants became ATTENTION_DECODE, and a
  // plan that still names one is refused with that said.
  mm::kernels::KernelParams old;
  const std::string msg = mm::kernels::parse_params(
      Kind::ATTENTION, Params{{{"NQ", 4}, {"NKV", 2}, {"D", 32}, {"KVDT", 0}, {"BLOCK", 16}, {"MAX_BLOCKS", 4}, {"VARIANT", 1}}, {}},
      &old);
  EXPECT_NE(msg.find("became ATTENTION_DECODE"), std::string::npos) << msg;
}

TEST(Specialize, RejectsKNotMultipleOfGroup) {
  auto s = specialize(Kind::GEMM_W4, w4(3000, 8192, 128, 0));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("K must be a multiple of G, itself a multiple of 8 (G = 128, K = 3000)"), std::string::npos)
      << s.error().message;
}

TEST(Specialize, RejectsOutOfRangeValue) {
  auto s = specialize(Kind::MOE_ALIGN, Params{{{"E", 512}, {"TOPK", 8}}, {}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("E = 512 must be at most 256"), std::string::npos) << s.error().message;
}

TEST(Specialize, RejectsGroupedCombine) {
  auto s = specialize(Kind::MOE_W2, Params{{{"H", 256}, {"I", 256}, {"E", 8}, {"TOPK", 2}, {"G", 128},
                                            {"GROUPED", 1}, {"COMBINE", 1}}, {}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("COMBINE = 0"), std::string::npos);
}

// The decode GEMV split (w4.cuh): all warps resident on 132 SMs x 16 warps, the groups split
// evenly, a thread block cluster only where the block's 8 warps are not enough.
TEST(Specialize, DecodeGemvSplit) {
  struct C { Kind kind; Params p; int64_t wk, cs, threads, grid0; };
  const C cases[] = {
      // qkv 3072 x 8192: 256 strips x 8 parts = 2048 warps, no cluster.
      {Kind::GEMM_W4, w4(3072, 8192, 128, 0), 8, 1, 256, 256},
      // o_proj 6144 x 3072: 96 strips x 16 parts (48 groups / 16), clusters of 2.
      {Kind::GEMM_W4, w4(6144, 3072, 128, 0), 8, 2, 256, 192},
      // W13 top-8: 8 slots x 48 column pairs x 2 warps x 4 parts (two waves of resident warps).
      {Kind::MOE_W13, Params{{{"H", 3072}, {"I", 1536}, {"E", 192}, {"TOPK", 8}, {"G", 128}, {"GROUPED", 0}}, {}},
       4, 1, 256, 48},
      // W2 combine: the 8 experts' 96 groups in 16 parts over clusters of 2.
      {Kind::MOE_W2, Params{{{"H", 3072}, {"I", 1536}, {"E", 192}, {"TOPK", 8}, {"G", 128}, {"GROUPED", 0}, {"COMBINE", 1}}, {}},
       8, 2, 256, 192},
  };
  for (const C& c : cases) {
    auto s = specialize(c.kind, c.p);
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto src = kernel_source(*s);
    ASSERT_TRUE(src.ok());
    EXPECT_EQ(s->params.ints.at("WK"), c.wk) << src->entry;
    EXPECT_EQ(s->params.ints.at("CS"), c.cs) << src->entry;
    EXPECT_EQ(s->block[0], c.threads) << src->entry;
    const int64_t dims[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    EXPECT_EQ(s->grid[0].eval(dims), c.grid0) << src->entry;
    const bool cluster = src->source.find("__cluster_dims__(") != std::string::npos;
    EXPECT_EQ(cluster, c.cs > 1) << src->entry;
  }
}

// A bench or the lowering may ask for the decode split; it is checked like any parameter.
TEST(Specialize, DecodeGemvSplitMayBeGiven) {
  Params p = w4(3072, 8192, 128, 0);
  p.ints["WK"] = 4;
  p.ints["CS"] = 2;
  p.ints["U"] = 3;
  auto s = specialize(Kind::GEMM_W4, p);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->params.ints.at("WK"), 4);
  EXPECT_EQ(s->params.ints.at("CS"), 2);
  EXPECT_EQ(s->params.ints.at("U"), 3);
  EXPECT_EQ(s->block[0], 128);
  const int64_t dims[8] = {1, 1, 1, 1, 0, 0, 0, 0};
  EXPECT_EQ(s->grid[0].eval(dims), 256 * 2);
  struct Bad { const char* key; int64_t v; const char* says; };
  for (Bad b : {Bad{"WK", 3, "WK = 3 must be 1, 2, 4 or 8"}, Bad{"CS", 9, "CS = 9 is out of range"},
                Bad{"U", 0, "U = 0 is out of range"}, Bad{"CS", 8, "WK x CS = 64 exceeds the 24 quantization groups"}}) {
    Params q = w4(3072, 8192, 128, 0);
    q.ints["WK"] = 8;
    q.ints[b.key] = b.v;
    auto r = specialize(Kind::GEMM_W4, q);
    ASSERT_FALSE(r.ok()) << b.key;
    EXPECT_NE(r.error().message.find(b.says), std::string::npos) << r.error().message;
  }
  // MOE_W13 runs 2 WK warps per block: at most 4.
  Params m{{{"H", 3072}, {"I", 1536}, {"E", 192}, {"TOPK", 8}, {"G", 128}, {"GROUPED", 0}, {"WK", 8}}, {}};
  auto r = specialize(Kind::MOE_W13, m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("WK = 8 exceeds 4"), std::string::npos) << r.error().message;
  // The prefill variants' warps are fixed by their tiles.
  Params v2 = w4(3072, 8192, 128, 2);
  v2.ints["WK"] = 4;
  r = specialize(Kind::GEMM_W4, v2);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("decode variant only"), std::string::npos) << r.error().message;
}

TEST(Specialize, GroupedMoeGridBoundsTheTiles) {
  Params p{{{"H", 3072}, {"I", 1536}, {"E", 192}, {"TOPK", 8}, {"G", 128}, {"GROUPED", 1}}, {}};
  auto s = specialize(Kind::MOE_W13, p);
  ASSERT_TRUE(s.ok());
  const int64_t dims[8] = {100, 1, 1, 100, 0, 0, 0, 0};
  // sum_e ceil(n_e / 64) <= (800 + 63 * 192) / 64
  EXPECT_EQ(s->grid[1].eval(dims), (800 + 63 * 192 + 63) / 64);
  EXPECT_EQ(s->grid[0].eval(dims), 24);
}

TEST(Nvrtc, ErrorShowsLogAndOffendingLine) {
  mm::codegen::NvrtcCompiler nvrtc({{"sm_90"}, "", false, true});
  const std::string src = "extern \"C\" __global__ void k(int* p) {\n  p[0] = undefined_thing;\n}\n";
  auto r = nvrtc.compile("broken_kernel", src);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("broken_kernel"), std::string::npos) << m;
  EXPECT_NE(m.find("sm_90"), std::string::npos) << m;
  EXPECT_NE(m.find("undefined_thing"), std::string::npos) << m;
  EXPECT_NE(m.find("  2 |   p[0] = undefined_thing;"), std::string::npos) << m;
}

TEST(Nvrtc, DeduplicatesIdenticalSourcesAcrossThreads) {
  mm::codegen::NvrtcCompiler nvrtc({{"sm_90"}, "", false, true});
  const std::string src = "extern \"C\" __global__ void k(int* p) { p[threadIdx.x] = 1; }\n";
  std::shared_ptr<const mm::codegen::NvrtcResult> a, b;
  std::thread t1([&] { a = *nvrtc.compile("k", src); });
  std::thread t2([&] { b = *nvrtc.compile("k", src); });
  t1.join();
  t2.join();
  EXPECT_EQ(nvrtc.cached(), 1u);
  auto c = nvrtc.compile("k", src);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->get(), nvrtc.compile("k", src)->get());
  EXPECT_EQ(a->binaries[0].cubin, b->binaries[0].cubin);
  auto d = nvrtc.compile("k", src + "// other\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(nvrtc.cached(), 2u);
}

TEST(Nvrtc, RejectsBadArch) {
  mm::codegen::NvrtcCompiler nvrtc({{"gfx90a"}, "", false, true});
  auto r = nvrtc.compile("k", "extern \"C\" __global__ void k() {}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bad target architecture 'gfx90a'"), std::string::npos);
  EXPECT_EQ(mm::codegen::parse_sm("sm_121"), 121);
  EXPECT_EQ(mm::codegen::parse_sm("sm_90a"), 90);
  EXPECT_EQ(mm::codegen::parse_sm("sm_"), -1);
  EXPECT_EQ(mm::codegen::parse_sm("compute_90"), -1);
}

TEST(Nvrtc, ReportsResourceUsage) {
  mm::codegen::NvrtcCompiler nvrtc({{"sm_90", "sm_121"}, "", false, true});
  auto r = nvrtc.compile("k", "extern \"C\" __global__ void k(float* p) { __shared__ float s[256]; "
                              "s[threadIdx.x] = p[threadIdx.x]; __syncthreads(); p[threadIdx.x] = s[255 - threadIdx.x]; }\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->ptx_arch, "compute_90");
  for (const auto& b : (*r)->binaries) {
    EXPECT_GT(b.registers, 0);
    EXPECT_EQ(b.shared_bytes, 1024);
    EXPECT_EQ(b.local_bytes, 0);
  }
}

}  // namespace

// Decode attention's launch shapes (attention_decode.cuh): the split launch has a block per token
// and split slot, a warp per kv head; the combine a block per (token, q head).
TEST(Specialize, AttentionDecodeGrid) {
  Params p{{{"NQ", 48}, {"NKV", 8}, {"D", 128}, {"KVDT", 0}, {"BLOCK", 16}, {"MAX_BLOCKS", 64},
            {"VARIANT", 0}, {"SPLITS", 64}}, {}};
  auto split = specialize(Kind::ATTENTION_DECODE, p);
  ASSERT_TRUE(split.ok()) << split.error().message;
  const int64_t dims[8] = {3, 3, 3, 50, 0, 0, 0, 0};
  EXPECT_EQ(split->grid[0].eval(dims), 3);
  EXPECT_EQ(split->grid[1].eval(dims), 64);
  EXPECT_EQ(split->block[0], 32 * 8);
  p.ints["VARIANT"] = 1;
  auto combine = specialize(Kind::ATTENTION_DECODE, p);
  ASSERT_TRUE(combine.ok()) << combine.error().message;
  EXPECT_EQ(combine->grid[0].eval(dims), 3);
  EXPECT_EQ(combine->grid[1].eval(dims), 48);
}
