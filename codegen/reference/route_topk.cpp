// ROUTE_TOPK reference: MiniMax-M2's sigmoid router. s = sigmoid(logits) in fp32; the TOPK experts
// with the largest s + bias are chosen (ties: lower expert id), in descending order of s + bias;
// weights are s of the chosen experts renormalized to sum 1 (the bias only selects).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void route_topk_ref(const mm_kernel_args& args, const RouteTopkParams& p) {
  using detail::ptr;
  const int64_t T = args.dim[MM_DIM_T];
  const int64_t E = p.E, K = p.TOPK, H = p.H;
  // ptr: x (fused) or logits, gate (fused only), bias, ids, weights.
  const float* bias = ptr<const float>(args, 2);
  int32_t* ids = ptr<int32_t>(args, 3);
  float* weights = ptr<float>(args, 4);

  // Fused: logits = x . gate^T in fp32 (the same dot as GEMM_DENSE, so both paths agree bitwise).
  std::vector<float> logits;
  const float* lg = nullptr;
  if (p.FUSED_GEMM) {
    logits.resize(static_cast<size_t>(T * E));
    std::vector<float> xf(static_cast<size_t>(T * H)), gf(static_cast<size_t>(E * H));
    detail::bf16_rows_to_f32(ptr<const uint16_t>(args, 0), H, T, nullptr, xf.data());
    for (int64_t i = 0; i < E * H; ++i) gf[i] = load_16bit(args.ptr[1], i, static_cast<int>(p.WDT));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e)
        logits[t * E + e] = detail::dot_f32(xf.data() + t * H, gf.data() + e * H, H);
    lg = logits.data();
  } else {
    lg = ptr<const float>(args, 0);
  }

  std::vector<float> s(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) {
      s[e] = 1.0f / (1.0f + std::exp(-lg[t * E + e]));
      choice[e] = s[e] + bias[e];
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return choice[a] > choice[b]; });
    float sum = 0.0f;
    for (int64_t j = 0; j < K; ++j) sum += s[order[j]];
    for (int64_t j = 0; j < K; ++j) {
      ids[t * K + j] = order[j];
      weights[t * K + j] = s[order[j]] / sum;
    }
  }
}

}  // namespace mm::ref
