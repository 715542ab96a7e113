// mm-prefill-bench PLAN [PP [DEPTH [REPEAT]]]: prefill throughput of a plan on the cuda backend
// with random weights, in one process (weights loaded once), through the C API:
//   warm-up      one prompt of PP tokens (module loading, clocks), released;
//   pp@0         REPEAT prompts of PP tokens into an empty sequence (median);
//   ttft@DEPTH   one prompt of DEPTH tokens (the time to first token of a long prompt);
//   pp@DEPTH     PP more tokens appended to that sequence (a prompt continued at depth).
// Defaults: PP 2048, DEPTH 16384, REPEAT 3. The plan's --max-seq-len must hold DEPTH + PP. Token ids
// are a fixed pseudo-random walk over the vocabulary (random weights: routing is spread over the
// experts either way). Prints one line per measurement: tokens, seconds, tokens per second.
// A stand-in until `mmrun bench` lands; scripts/gpu_check.sh runs it in its `prefill` step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mm/mm_runtime.h"

namespace {

bool ok(mm_status st, const char* what) {
  if (mm_status_get_code(st) == MM_STATUS_OK) return true;
  std::fprintf(stderr, "mm-prefill-bench: %s: %s\n", what, mm_status_get_message(st));
  mm_status_free(st);
  return false;
}

std::vector<int32_t> ids(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  uint64_t x = seed;
  for (auto& t : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(vocab));
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mm-prefill-bench PLAN [PP [DEPTH [REPEAT]]]\n");
    return 2;
  }
  const int64_t pp = argc > 2 ? std::atoll(argv[2]) : 2048;
  const int64_t depth = argc > 3 ? std::atoll(argv[3]) : 16384;
  const int repeat = argc > 4 ? std::atoi(argv[4]) : 3;
  if (pp <= 0 || depth < 0 || repeat <= 0) {
    std::fprintf(stderr, "mm-prefill-bench: PP and REPEAT must be positive, DEPTH not negative\n");
    return 2;
  }
  mm_plan* plan = nullptr;
  if (!ok(mm_plan_load(argv[1], &plan), "plan")) return 1;
  mm_plan_info info;
  if (!ok(mm_plan_get_info(plan, &info), "plan info")) return 1;
  mm_session_options o{};
  o.weights = "random";
  o.device = "cuda";
  o.max_seq_len = std::max<int64_t>(depth + pp, pp);
  o.max_seqs = 1;
  o.seed = 1;
  mm_session* s = nullptr;
  if (!ok(mm_session_init(plan, &o, &s), "session")) return 3;
  std::printf("plan %s: %lld layers, KV %s, prefill chunk %lld\n", argv[1], static_cast<long long>(info.num_layers),
              info.kv_cache_dtype, static_cast<long long>(info.max_prefill_tokens));
  const mm_sampling greedy{0.f, 0, 1.f, 0};
  auto prefill = [&](const std::vector<int32_t>& p, double* sec) {
    int32_t next = -1;
    const auto t0 = std::chrono::steady_clock::now();
    const bool good = ok(mm_session_prefill(s, 0, p.data(), static_cast<int64_t>(p.size()), &greedy, 0, nullptr, &next),
                         "prefill");
    *sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return good;
  };
  auto report = [](const char* what, int64_t n, double sec) {
    std::printf("%-12s %6lld tokens %8.3f s %9.1f tok/s\n", what, static_cast<long long>(n), sec, n / sec);
  };
  double sec = 0;
  if (!prefill(ids(pp, info.vocab_size, 1), &sec) || !ok(mm_session_release(s, 0), "release")) return 3;
  report("warm-up", pp, sec);
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    if (!prefill(ids(pp, info.vocab_size, 2 + r), &sec) || !ok(mm_session_release(s, 0), "release")) return 3;
    times.push_back(sec);
  }
  std::sort(times.begin(), times.end());
  report("pp@0", pp, times[times.size() / 2]);
  if (depth > 0) {
    if (!prefill(ids(depth, info.vocab_size, 100), &sec)) return 3;
    report(("ttft@" + std::to_string(depth)).c_str(), depth, sec);
    if (!prefill(ids(pp, info.vocab_size, 101), &sec)) return 3;
    report(("pp@" + std::to_string(depth)).c_str(), pp, sec);
  }
  mm_session_free(s);
  mm_plan_free(plan);
  return 0;
}
