// SAMPLE reference: temperature <= 0 is argmax (ties: lower id). Otherwise the candidates sorted by
// logit descending (ties: lower id) are truncated to the top_k first (top_k <= 0: all);
// p = softmax(logits / temperature) over those candidates (fp32, sums in candidate order); then
// truncated to the shortest prefix whose mass >= top_p (top_p >= 1: all; at least one candidate);
// u = sample_uniform(seed, STEP, row); the first candidate whose cumulative mass exceeds
// u * (mass of the prefix) wins (the last one if rounding leaves none).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

void sample_ref(const mm_kernel_args& args, const SampleParams& p) {
  using detail::ptr;
  const int64_t R = args.dim[MM_DIM_R];
  const int64_t step = args.dim[MM_DIM_STEP];
  const int64_t V = p.V;
  const float* logits = ptr<const float>(args, 0);
  const float* temperature = ptr<const float>(args, 1);
  const int32_t* top_k = ptr<const int32_t>(args, 2);
  const float* top_p = ptr<const float>(args, 3);
  const uint64_t* seed = ptr<const uint64_t>(args, 4);
  int32_t* sampled = ptr<int32_t>(args, 5);
  std::vector<int32_t> order;
  std::vector<float> prob;
  for (int64_t r = 0; r < R; ++r) {
    const float* l = logits + r * V;
    if (!(temperature[r] > 0.0f)) {
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v)
        if (l[v] > l[best]) best = v;
      sampled[r] = static_cast<int32_t>(best);
      continue;
    }
    const auto by_logit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
    const int64_t k = (top_k[r] <= 0 || top_k[r] > V) ? V : top_k[r];
    order.resize(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
    const float inv_t = 1.0f / temperature[r];
    const float mx = l[order[0]] * inv_t;
    prob.resize(static_cast<size_t>(k));
    float total = 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      prob[i] = std::exp(l[order[i]] * inv_t - mx);
      total += prob[i];
    }
    for (int64_t i = 0; i < k; ++i) prob[i] /= total;
    int64_t n = k;
    if (top_p[r] < 1.0f) {
      float cum = 0.0f;
      for (int64_t i = 0; i < k; ++i) {
        cum += prob[i];
        if (cum >= top_p[r]) {
          n = i + 1;
          break;
        }
      }
    }
    float mass = 0.0f;
    for (int64_t i = 0; i < n; ++i) mass += prob[i];
    const float target = sample_uniform(seed[r], step, r) * mass;
    int64_t pick = n - 1;
    float cum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum > target) {
        pick = i;
        break;
      }
    }
    sampled[r] = order[pick];
  }
}

}  // namespace mm::ref
