// SAMPLE reference: temperature <= 0 is argmax (ties: lower id). Otherwise the candidates sorted by
// logit descending (ties: lower id) are truncated to the top_k first (top_k <= 0: all); each gets
// the fixed-point mass w_i = floor(exp((l_i - max) / temperature) * 2^40) (sample_mass below);
// then truncated to the shortest prefix whose mass >= ceil(top_p * mass of the top-k) (top_p >= 1:
// all). The token is drawn among those by an exponential race (vLLM's sampler: argmax p_i / E_i
// with E_i ~ Exp(1)), in the log domain: the candidate with the largest
// (l_i - max) / temperature - ln(E_i), E_i = -ln(u_i), u_i from splitmix64 (sample_score), ties to
// the lower id; with no finite score (all -inf or NaN logits), the first candidate.
//
// Why fixed point for the top-p cut: an fp32 running sum over 200k candidates drifts by ~1e-3 of
// the total, far more than one candidate's mass (~5e-6), so a float prefix sum does not define "the
// shortest prefix whose mass reaches top_p". Integer sums are exact and order-free. The mass and
// the race score use only IEEE-exact steps (fp32 add/sub/mul/div, fmaf, rint, power-of-two
// scaling) so that the CUDA kernel (codegen/kernels/sample.cuh, mm_sample_w and mm_sample_score)
// computes bit-identical masses and scores.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "codegen/reference/ref_util.h"

namespace mm::ref {

namespace {

uint64_t splitmix(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// floor(exp(x) * 2^40) for x = (v - mx) * invt <= 0, with v >= mx mapping to x = 0 (so the top
// candidate always weighs 2^40, even for an infinite 1/temperature). Cody-Waite reduction and a
// degree-7 Taylor polynomial, all through explicit fmaf: no contraction can change the result.
// Keep in step with mm_sample_w in codegen/kernels/sample.cuh.
uint64_t sample_mass(float v, float mx, float invt) {
  const float x = v >= mx ? 0.0f : (v - mx) * invt;
  if (!(x >= -28.0f)) return 0;   // exp(-28) * 2^40 < 1; NaN too
  const float n = std::rint(x * 1.44269504f);
  float r = std::fmaf(n, -0.693145752f, x);
  r = std::fmaf(n, -1.42860677e-6f, r);
  float p = 1.98412698e-4f;
  p = std::fmaf(p, r, 1.38888889e-3f);
  p = std::fmaf(p, r, 8.33333333e-3f);
  p = std::fmaf(p, r, 4.16666667e-2f);
  p = std::fmaf(p, r, 1.66666667e-1f);
  p = std::fmaf(p, r, 0.5f);
  p = std::fmaf(p, r, 1.0f);
  p = std::fmaf(p, r, 1.0f);
  const uint32_t e = static_cast<uint32_t>(127 + 40 + static_cast<int>(n)) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return static_cast<uint64_t>(p * scale);
}

// ln(a) for a normal a > 0: a = m 2^e, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m - 1) / (m + 1))
// by an odd polynomial. One rounding per statement (the build does not contract them). Keep in
// step with mm_sample_ln in codegen/kernels/sample.cuh.
float sample_ln(float a) {
  uint32_t b;
  std::memcpy(&b, &a, 4);
  int e = static_cast<int>(b >> 23) - 127;
  const uint32_t mb = (b & 0x7FFFFFu) | 0x3F800000u;
  float m;
  std::memcpy(&m, &mb, 4);
  if (m > 1.41421354f) {
    m = m * 0.5f;
    e += 1;
  }
  const float f = m - 1.0f;
  const float d = f + 2.0f;
  const float s = f / d;
  const float z = s * s;
  float r = 0.181818187f;
  r = std::fmaf(r, z, 0.222222224f);
  r = std::fmaf(r, z, 0.285714298f);
  r = std::fmaf(r, z, 0.400000006f);
  r = std::fmaf(r, z, 0.666666687f);
  r = r * z;
  const float s2 = s + s;
  const float lnm = std::fmaf(s, r, s2);
  return std::fmaf(static_cast<float>(e), 0.693147182f, lnm);
}

// The race score of candidate i: (v - mx) / temperature - ln(E_i), E_i = -ln(u_i),
// u_i = (top 23 bits of splitmix64(rowkey + i) + 0.5) / 2^23; -inf for -inf and NaN logits.
// Keep in step with mm_sample_score in codegen/kernels/sample.cuh.
float sample_score(float v, float mx, float invt, uint64_t rowkey, int64_t i) {
  const float x = v >= mx ? 0.0f : (v - mx) * invt;
  if (!(x > -INFINITY)) return -INFINITY;
  const uint64_t bits = splitmix(rowkey + static_cast<uint64_t>(i));
  const float u = (static_cast<float>(static_cast<uint32_t>(bits >> 41)) + 0.5f) * 1.1920929e-7f;
  const float E = -sample_ln(u);
  return x - sample_ln(E);
}

}  // namespace

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
  std::vector<uint64_t> mass;
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
    // Only the cuts need the sorted order and the masses; the race itself is order-free (ties go to
    // the lower id), so without a cut the candidates stay in id order.
    const bool cut = k < V || top_p[r] < 1.0f;
    order.resize(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    if (cut) std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
    const float invt = 1.0f / temperature[r];
    float mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) mx = std::fmax(mx, l[v]);
    int64_t n = k;
    if (top_p[r] < 1.0f) {
      mass.resize(static_cast<size_t>(k));
      uint64_t mk = 0;
      for (int64_t i = 0; i < k; ++i) mk += (mass[i] = sample_mass(l[order[i]], mx, invt));
      uint64_t target = static_cast<uint64_t>(std::ceil(static_cast<double>(std::fmax(top_p[r], 0.0f)) * static_cast<double>(mk)));
      if (target == 0) target = 1;
      if (target <= mk) {
        uint64_t cum = 0;
        for (int64_t i = 0; i < k; ++i)
          if ((cum += mass[i]) >= target) {
            n = i + 1;
            break;
          }
      }
    }
    const uint64_t rowkey = splitmix(seed[r] ^ splitmix(static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull +
                                                        static_cast<uint64_t>(r)));
    int64_t pick = 0;
    float best = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      const float sc = sample_score(l[order[i]], mx, invt, rowkey, order[i]);
      if (sc > best || (sc == best && sc > -INFINITY && order[i] < order[pick])) {
        best = sc;
        pick = i;
      }
    }
    // No finite score (all candidates' logits NaN): the first candidate in the sorted order.
    if (best == -INFINITY && !cut) std::partial_sort(order.begin(), order.begin() + 1, order.end(), by_logit);
    sampled[r] = order[pick];
  }
}

}  // namespace mm::ref
