// Metrics (runtime/tooling/server/metrics.h): Prometheus text with cumulative histogram buckets,
// counters and the scheduler's gauges.
#include <gtest/gtest.h>

#include "runtime/tooling/server/metrics.h"

namespace mm::rt::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5.0);
  std::string out;
  h.render(out, "x", "a=\"b\"");
  EXPECT_TRUE(has_line(out, "x_bucket{a=\"b\",le=\"0.10000000000000001\"} 1")) << out;
  EXPECT_TRUE(has_line(out, "x_bucket{a=\"b\",le=\"1\"} 2")) << out;
  EXPECT_TRUE(has_line(out, "x_bucket{a=\"b\",le=\"+Inf\"} 3")) << out;
  EXPECT_TRUE(has_line(out, "x_count{a=\"b\"} 3")) << out;
  EXPECT_TRUE(has_line(out, "x_sum{a=\"b\"} 5.5499999999999998")) << out;
}

TEST(Metrics, Render) {
  Metrics m("m\"27");
  m.add_prompt_tokens(10);
  m.add_generation_tokens(3);
  m.add_prefix_cache(10, 9);
  m.add_finished("stop");
  m.add_rejected("queue_full");
  m.observe_time_to_first_token(0.02);
  m.observe_inter_token_latency(0.01);
  EngineGauges g;
  g.running = 2;
  g.waiting = 1;
  g.kv_blocks_total = 100;
  g.kv_blocks_used = 25;
  g.kv_blocks_cached = 5;
  g.kv_blocks_free = 70;
  const std::string out = m.render(g, 4096);
  const std::string l = "{model_name=\"m\\\"27\"}";
  EXPECT_TRUE(has_line(out, "mmrun:num_requests_running" + l + " 2")) << out;
  EXPECT_TRUE(has_line(out, "mmrun:num_requests_waiting" + l + " 1"));
  EXPECT_TRUE(has_line(out, "mmrun:kv_blocks_used" + l + " 25"));
  EXPECT_TRUE(has_line(out, "mmrun:kv_blocks_cached" + l + " 5"));
  EXPECT_TRUE(has_line(out, "mmrun:kv_cache_usage_perc" + l + " 0.25"));
  EXPECT_TRUE(has_line(out, "mmrun:prompt_tokens_total" + l + " 10"));
  EXPECT_TRUE(has_line(out, "mmrun:generation_tokens_total" + l + " 3"));
  EXPECT_TRUE(has_line(out, "mmrun:prefix_cache_hits_total" + l + " 9"));
  EXPECT_TRUE(has_line(out, "mmrun:request_success_total{model_name=\"m\\\"27\",finished_reason=\"stop\"} 1"));
  EXPECT_TRUE(has_line(out, "mmrun:request_rejected_total{model_name=\"m\\\"27\",reason=\"queue_full\"} 1"));
  EXPECT_TRUE(has_line(out, "mmrun:time_to_first_token_seconds_count" + l + " 1"));
  EXPECT_TRUE(has_line(out, "mmrun:inter_token_latency_seconds_count" + l + " 1"));
  EXPECT_TRUE(has_line(out, "# TYPE mmrun:time_to_first_token_seconds histogram"));
  EXPECT_TRUE(has_line(out, "process_resident_memory_bytes 4096"));
  EXPECT_GT(resident_memory_bytes(), 0);
}

}  // namespace
}  // namespace mm::rt::server
