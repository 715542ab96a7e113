// The kernel specializations a MiniMax-M2 model of each mm-synth preset needs (docs/kernels.md
// section 6), used by the NVRTC compile test and the GPU tests.
#pragma once

#include <string>
#include <vector>

#include "codegen/kernels/specialize.h"

namespace mm::test {

struct Shape {
  const char* name;
  int64_t H, I, NQ, NKV, D, DR, E, TOPK, V;
};

inline const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {"tiny", 256, 256, 4, 2, 64, 32, 8, 2, 2112},
      {"mid", 3072, 1536, 48, 8, 128, 64, 8, 4, 2112},
      {"full", 3072, 1536, 48, 8, 128, 64, 192, 8, 200064},
  };
  return s;
}

struct Config {
  std::string label;
  kernels::Kind kind;
  kernels::Params params;
};

inline std::vector<Config> model_configs(const Shape& s) {
  using kernels::Kind;
  std::vector<Config> out;
  auto add = [&](std::string label, Kind kind, std::map<std::string, int64_t> ints,
                 std::map<std::string, double> floats = {}) {
    out.push_back({std::string(s.name) + "/" + label, kind, kernels::Params{std::move(ints), std::move(floats)}});
  };
  const int64_t qkv_n = (s.NQ + 2 * s.NKV) * s.D, qd = s.NQ * s.D;
  add("embed", Kind::EMBED, {{"V", s.V}, {"H", s.H}, {"WDT", 0}});
  add("rms_norm", Kind::RMS_NORM, {{"N", s.H}, {"WDT", 0}, {"RESIDUAL", 0}, {"GATHER", 0}}, {{"EPS", 1e-6}});
  add("rms_norm_residual", Kind::RMS_NORM, {{"N", s.H}, {"WDT", 1}, {"RESIDUAL", 1}, {"GATHER", 0}}, {{"EPS", 1e-6}});
  add("rms_norm_gather", Kind::RMS_NORM, {{"N", s.H}, {"WDT", 0}, {"RESIDUAL", 1}, {"GATHER", 1}}, {{"EPS", 1e-6}});
  for (int v = 0; v < 3; ++v) {
    add("qkv_v" + std::to_string(v), Kind::GEMM_W4, {{"K", s.H}, {"N", qkv_n}, {"G", 128}, {"OUT", 0}, {"VARIANT", v}});
    add("o_proj_v" + std::to_string(v), Kind::GEMM_W4, {{"K", qd}, {"N", s.H}, {"G", 128}, {"OUT", 0}, {"VARIANT", v}});
  }
  // The v2 W4 core with 128-row tiles (one block per SM, 128 accumulators per thread).
  add("qkv_v2_bm128", Kind::GEMM_W4, {{"K", s.H}, {"N", qkv_n}, {"G", 128}, {"OUT", 0}, {"VARIANT", 2}, {"BM", 128}});
  add("moe_w13_g2_bm128", Kind::MOE_W13,
      {{"H", s.H}, {"I", s.I}, {"E", s.E}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", 2}, {"BM", 128}});
  add("moe_w2_g2_bm128", Kind::MOE_W2,
      {{"H", s.H}, {"I", s.I}, {"E", s.E}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", 2}, {"COMBINE", 0}, {"BM", 128}});
  add("gemm_w4_f32", Kind::GEMM_W4, {{"K", s.H}, {"N", s.H}, {"G", 128}, {"OUT", 2}, {"VARIANT", 0}, {"MDIM", 1}});
  add("lm_head", Kind::GEMM_DENSE, {{"K", s.H}, {"N", s.V}, {"WDT", 0}, {"OUT", 2}, {"MDIM", 1}});
  add("router", Kind::GEMM_DENSE, {{"K", s.H}, {"N", s.E}, {"WDT", 1}, {"OUT", 2}, {"MDIM", 0}});
  if (s.H % 32 == 0)   // the prefill router on tensor cores (bf16 gate)
    add("router_v2", Kind::GEMM_DENSE, {{"K", s.H}, {"N", s.E}, {"WDT", 0}, {"OUT", 2}, {"MDIM", 0}, {"VARIANT", 2}});
  for (int kvdt : {0, 3}) {
    const std::string k = kvdt ? "_fp8" : "_bf16";
    add("qk_norm_rope_kv" + k, Kind::QK_NORM_ROPE_KV,
        {{"NQ", s.NQ}, {"NKV", s.NKV}, {"D", s.D}, {"DR", s.DR}, {"WDT", 0}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", 256}},
        {{"THETA", 5e6}, {"EPS", 1e-6}});
    // Decode: blocks of 8 heads per token (SPLIT).
    if ((s.NQ + 2 * s.NKV) / 8 > 1)
      add("qk_norm_rope_kv_split" + k, Kind::QK_NORM_ROPE_KV,
          {{"NQ", s.NQ}, {"NKV", s.NKV}, {"D", s.D}, {"DR", s.DR}, {"WDT", 0}, {"KVDT", kvdt}, {"BLOCK", 16},
           {"MAX_BLOCKS", 256}, {"SPLIT", (s.NQ + 2 * s.NKV) / 8}},
          {{"THETA", 5e6}, {"EPS", 1e-6}});
    // A tensor-parallel rank's half of the heads (docs/parallel.md): the partial sums of squares
    // (STATS 1), then the norm with the all-reduced sums (STATS 0).
    if (s.NKV % 2 == 0)
      for (int stats : {0, 1})
        add("qk_norm_rope_kv_tp2_stats" + std::to_string(stats) + k, Kind::QK_NORM_ROPE_KV,
            {{"NQ", s.NQ / 2}, {"NKV", s.NKV / 2}, {"D", s.D}, {"DR", s.DR}, {"WDT", 0}, {"KVDT", kvdt},
             {"BLOCK", 16}, {"MAX_BLOCKS", 256}, {"TP", 2}, {"STATS", stats}},
            {{"THETA", 5e6}, {"EPS", 1e-6}});
    for (int v : {0, 3})
      add("attention_v" + std::to_string(v) + k, Kind::ATTENTION,
          {{"NQ", s.NQ}, {"NKV", s.NKV}, {"D", s.D}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", 256},
           {"VARIANT", v}});
    for (int v = 0; v < 2; ++v)
      add("attention_decode_v" + std::to_string(v) + k, Kind::ATTENTION_DECODE,
          {{"NQ", s.NQ}, {"NKV", s.NKV}, {"D", s.D}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", 256},
           {"VARIANT", v}, {"SPLITS", 64}});
  }
  // Head sizes besides the presets' 64 and 128 that specialize() accepts (multiples of 32): with an
  // fp8 cache, D = 32 and 96 give rows of 2 and 6 16-byte chunks (attention.cuh mm_fa_load).
  if (std::string(s.name) == "tiny")
    for (int64_t d : {32, 96})
      for (int kvdt : {0, 3})
        for (int v : {0, 3})
          add("attention_d" + std::to_string(d) + "_v" + std::to_string(v) + (kvdt == 3 ? "_fp8" : ""),
              Kind::ATTENTION,
              {{"NQ", s.NQ}, {"NKV", s.NKV}, {"D", d}, {"KVDT", kvdt}, {"BLOCK", 16}, {"MAX_BLOCKS", 256},
               {"VARIANT", v}});
  add("route_fused", Kind::ROUTE_TOPK, {{"E", s.E}, {"TOPK", s.TOPK}, {"H", s.H}, {"WDT", 0}, {"FUSED_GEMM", 1}});
  add("route_logits", Kind::ROUTE_TOPK, {{"E", s.E}, {"TOPK", s.TOPK}, {"H", s.H}, {"WDT", 0}, {"FUSED_GEMM", 0}});
  add("moe_align", Kind::MOE_ALIGN, {{"E", s.E}, {"TOPK", s.TOPK}});
  for (int g = 0; g < 3; ++g) {
    add("moe_w13_g" + std::to_string(g), Kind::MOE_W13,
        {{"H", s.H}, {"I", s.I}, {"E", s.E}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", g}});
    add("moe_w2_g" + std::to_string(g), Kind::MOE_W2,
        {{"H", s.H}, {"I", s.I}, {"E", s.E}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", g}, {"COMBINE", 0}});
  }
  add("moe_w2_combine", Kind::MOE_W2,
      {{"H", s.H}, {"I", s.I}, {"E", s.E}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", 0}, {"COMBINE", 1}});
  add("moe_combine", Kind::MOE_COMBINE, {{"H", s.H}, {"TOPK", s.TOPK}});
  // An expert-parallel rank's kernels (docs/parallel.md): the second half of the experts, [E/2, E).
  if (s.E % 2 == 0) {
    const int64_t el = s.E / 2;
    add("moe_align_ep2", Kind::MOE_ALIGN, {{"E", el}, {"TOPK", s.TOPK}, {"E0", el}});
    add("moe_w13_g0_ep2", Kind::MOE_W13,
        {{"H", s.H}, {"I", s.I}, {"E", el}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", 0}, {"E0", el}});
    add("moe_w2_combine_ep2", Kind::MOE_W2,
        {{"H", s.H}, {"I", s.I}, {"E", el}, {"TOPK", s.TOPK}, {"G", 128}, {"GROUPED", 0}, {"COMBINE", 1}, {"E0", el}});
    add("moe_combine_ep2", Kind::MOE_COMBINE, {{"H", s.H}, {"TOPK", s.TOPK}, {"E0", el}, {"EL", el}});
  }
  add("sample", Kind::SAMPLE, {{"V", s.V}});
  return out;
}

}  // namespace mm::test
