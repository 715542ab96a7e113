// serve_options (runtime/tooling/server/serve_options.h): the model card's `vllm serve` flags parse,
// vLLM flags without a meaning here are accepted with a notice, unknown flags are usage errors,
// and the consistency checks.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "runtime/tooling/server/serve_options.h"

namespace mm::rt::server {
namespace {

// Parses `args` (after "serve"); returns false on a CLI11 parse error.
bool parse(std::vector<std::string> args, ServeOptions* o, std::vector<std::string>* notices = nullptr) {
  CLI::App app;
  add_serve_flags(&app, *o);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return false;
  }
  if (notices) *notices = ignored_flag_notices(&app);
  return true;
}

TEST(ServeOptions, TheModelCardLine) {
  ServeOptions o;
  std::vector<std::string> notices;
  ASSERT_TRUE(parse({"m27.mmp", "--weights", "random", "--max-model-len", "32768", "--kv-cache-dtype", "fp8",
                     "--enable-auto-tool-choice", "--tool-call-parser", "minimax_m2", "--reasoning-parser",
                     "minimax_m2_append_think", "--trust-remote-code", "--tensor-parallel-size", "1", "--dtype=auto"},
                    &o, &notices));
  EXPECT_EQ(o.plan, "m27.mmp");
  EXPECT_EQ(o.max_model_len, 32768);
  EXPECT_EQ(o.kv_cache_dtype, "fp8");
  EXPECT_TRUE(o.enable_auto_tool_choice);
  EXPECT_EQ(o.tool_call_parser, "minimax_m2");
  EXPECT_EQ(o.reasoning_parser, "minimax_m2_append_think");
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 8000);
  ASSERT_EQ(notices.size(), 3u);
  EXPECT_EQ(notices[0], "note: --trust-remote-code ignored: mmrun runs no model code from the checkpoint");
  EXPECT_NE(notices[1].find("--tensor-parallel-size ignored"), std::string::npos);
  EXPECT_NE(notices[2].find("--dtype ignored"), std::string::npos);
  EXPECT_EQ(check_serve_options(o), "");
  EXPECT_EQ(o.served_model_names, std::vector<std::string>{"m27.mmp"});
}

TEST(ServeOptions, FlagsAndChecks) {
  ServeOptions o;
  ASSERT_TRUE(parse({"p.mmp", "--weights", "dir", "--served-model-name", "a", "--served-model-name", "b", "--port", "0",
                     "--no-enable-prefix-caching", "--max-num-seqs", "8", "--api-key", "k"},
                    &o));
  EXPECT_EQ(o.served_model_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.port, 0);
  EXPECT_FALSE(o.enable_prefix_caching);
  EXPECT_EQ(o.max_num_seqs, 8);
  EXPECT_EQ(o.api_key, "k");

  ServeOptions bad;
  EXPECT_FALSE(parse({"p.mmp", "--weights", "dir", "--bogus"}, &bad));
  EXPECT_FALSE(parse({"p.mmp", "--weights", "dir", "--reasoning-parser", "deepseek_r1"}, &bad));
  EXPECT_FALSE(parse({"p.mmp", "--weights", "dir", "--kv-cache-dtype", "fp16"}, &bad));
  EXPECT_FALSE(parse({"p.mmp", "--weights", "dir", "--port", "70000"}, &bad));

  ServeOptions none;
  ASSERT_TRUE(parse({"p.mmp"}, &none));
  EXPECT_EQ(check_serve_options(none), "--weights DIR|random is required");
  ServeOptions dummy;
  ASSERT_TRUE(parse({"p.mmp", "--load-format", "dummy"}, &dummy));
  EXPECT_EQ(check_serve_options(dummy), "");
  EXPECT_EQ(dummy.weights, "random");
  ServeOptions auto_only;
  ASSERT_TRUE(parse({"p.mmp", "--weights", "random", "--enable-auto-tool-choice"}, &auto_only));
  EXPECT_EQ(check_serve_options(auto_only), "--enable-auto-tool-choice needs --tool-call-parser minimax_m2");
}

}  // namespace
}  // namespace mm::rt::server
