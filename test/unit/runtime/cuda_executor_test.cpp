// cuda backend against the host backend (the C++ references) on a real plan compiled by mmc:
// teacher-forced along the host's greedy continuation, logits compared at every step.
// Needs a CUDA device and MM_GPU_PLAN (a .mmp with cubins for the device); MM_GPU_WEIGHTS is the
// model directory (default: random weights). run_gpu_runtime_tests.sh sets both up.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "runtime/src/cuda_executor.h"
#include "runtime/src/generate.h"
#include "runtime/src/host_executor.h"
#include "runtime/src/session.h"
#include "runtime/src/weights.h"

namespace mm::rt {
namespace {

int argmax(const float* v, int64_t n) { return static_cast<int>(std::max_element(v, v + n) - v); }

TEST(CudaExecutor, MatchesTheHostBackendTeacherForced) {
  if (!cuda_device_present()) GTEST_SKIP() << "skipped: no CUDA device";
  const char* plan_path = std::getenv("MM_GPU_PLAN");
  if (!plan_path) GTEST_SKIP() << "skipped: MM_GPU_PLAN not set (see run_gpu_runtime_tests.sh)";
  const std::string weights = std::getenv("MM_GPU_WEIGHTS") ? std::getenv("MM_GPU_WEIGHTS") : "random";
  auto plan = load_plan(plan_path);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const int64_t V = (*plan)->def().model()->vocab_size();
  const int64_t prompt_len = 40, steps = 24, max_seq_len = prompt_len + steps;
  const int64_t blocks = (max_seq_len + (*plan)->def().limits()->kv_block_size() - 1) /
                         (*plan)->def().limits()->kv_block_size();

  auto hw = weights == "random" ? random_host_weights(**plan, 11) : load_host_weights(**plan, weights, false);
  ASSERT_TRUE(hw.ok()) << hw.error().message;
  auto hex = HostExecutor::create(*plan, std::move(*hw), blocks);
  ASSERT_TRUE(hex.ok());
  auto host = Session::create(*plan, std::move(*hex), max_seq_len, 1);
  ASSERT_TRUE(host.ok()) << host.error().message;
  auto cex = CudaExecutor::create(*plan, weights, 11, blocks, false);
  ASSERT_TRUE(cex.ok()) << cex.error().message;
  std::printf("device: %s (%s)\n", (*cex)->device_info().name.c_str(), (*cex)->device_info().arch().c_str());
  auto cuda = Session::create(*plan, std::move(*cex), max_seq_len, 1);
  ASSERT_TRUE(cuda.ok()) << cuda.error().message;

  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < prompt_len; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % V));
  std::vector<float> lh, lc;
  int32_t nh = -1, nc = -1;
  ASSERT_TRUE((*host)->prefill(0, prompt, Sampling{}, 0, &lh, &nh).ok());
  Status st = (*cuda)->prefill(0, prompt, Sampling{}, 0, &lc, &nc);
  ASSERT_TRUE(st.ok()) << st.error().message;
  int exact = 0, undecided_ok = 0;
  double worst_rel = 0;
  for (int64_t step = 0; step < steps; ++step) {
    float range = 0, err = 0;
    for (int64_t v = 0; v < V; ++v) {
      range = std::max(range, std::fabs(lh[v]));
      err = std::max(err, std::fabs(lh[v] - lc[v]));
    }
    worst_rel = std::max(worst_rel, static_cast<double>(err / std::max(range, 1e-6f)));
    const int ah = argmax(lh.data(), V), ac = argmax(lc.data(), V);
    // The GPU's own sampled token must be its argmax (greedy SAMPLE on the device).
    EXPECT_EQ(nc, ac) << "step " << step;
    if (ah == ac) {
      ++exact;
    } else {
      std::vector<float> sorted(lh);
      std::partial_sort(sorted.begin(), sorted.begin() + 3, sorted.end(), std::greater<float>());
      const float margin = sorted[0] - sorted[1];
      // Host undecided (tiny top-1/top-2 margin) and the GPU's token in its top 3.
      if (margin < 0.02f * range && lh[ac] >= sorted[2]) ++undecided_ok;
      else ADD_FAILURE() << "step " << step << ": host argmax " << ah << ", cuda " << ac << ", margin " << margin;
    }
    const int32_t tok = ah;  // teacher forcing along the host's greedy continuation
    const int32_t slot = 0;
    const Sampling s{};
    std::vector<int32_t> next;
    ASSERT_TRUE((*host)->decode({&slot, 1}, {&tok, 1}, {&s, 1}, step + 1, &lh, &next).ok());
    st = (*cuda)->decode({&slot, 1}, {&tok, 1}, {&s, 1}, step + 1, &lc, &next);
    ASSERT_TRUE(st.ok()) << st.error().message;
    nc = next[0];
  }
  std::printf("exact argmax agreement %d/%lld, undecided-but-top3 %d, worst max|dlogit|/max|logit| %.4f\n",
              exact, static_cast<long long>(steps), undecided_ok, worst_rel);
  // bf16 activations with a different summation order than the reference: logits agree to a few
  // percent of their range (measured on the tiny and mid presets; see the closing note).
  EXPECT_LT(worst_rel, 0.05);
  EXPECT_GE(exact, steps * 85 / 100);
}

}  // namespace
}  // namespace mm::rt
