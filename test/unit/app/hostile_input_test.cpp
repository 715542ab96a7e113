// Hostile command-line values and input files through the tooling as library calls (issue 13):
// each case used to abort, overflow or allocate without bound; now each is a clear error with
// the exit code of design.md section 6. The cases that used to hang (FIFOs, /dev/zero) are lit
// tests with a timeout: test/tools/hostile-*.test; the host KV cache's growth is in session_test.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/tooling/chat_loop.h"
#include "runtime/tooling/generate.h"
#include "runtime/tooling/inspect.h"
#include "test/unit/runtime/test_plan.h"
#include "test/unit/temp_path.h"

namespace mm::rt {
namespace {

using test::TinyModel;

std::string write_plan(const std::string& name, const TinyModel& m) {
  const std::string path = mm::test::temp_path("") + name;
  auto bytes = test::build_tiny_plan(m);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModel m;
    m.V = 2112;  // the tiny tokenizer's vocabulary
    o.plan = write_plan("hostile_test.mmp", m);
    o.weights = "random";
    o.device = "host";
    o.tokenizer_dir = std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/minimax-tiny";
    o.prompt_ids = {1, 2, 3};
    o.max_new_tokens = 2;
  }
  int generate() {
    std::ostringstream out, e;
    const int rc = o.prompt_text ? text_generate_command(o, out, e) : generate_command(o, out, e);
    err = e.str();
    return rc;
  }
  GenerateOptions o;
  std::string err;
};

TEST_F(HostileTest, ThreadsBeyondTheLimitAreAUsageError) {
  // Used to start 2^31 - 1 host threads until std::thread threw std::system_error: abort.
  o.threads = std::numeric_limits<int>::max();
  EXPECT_EQ(generate(), 2);
  EXPECT_NE(err.find("--threads 2147483647 is outside [0, 1024]"), std::string::npos) << err;
  o.threads = -1;
  EXPECT_EQ(generate(), 2);
}

TEST_F(HostileTest, MaxNewTokensBeyondTheLimitIsAUsageError) {
  o.max_new_tokens = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(generate(), 2);
  EXPECT_NE(err.find("--max-new-tokens 9223372036854775807 is outside [0, 16777216]"), std::string::npos) << err;
}

TEST_F(HostileTest, ResolveMaxSeqLenSaturates) {
  // prompt + new tokens used to overflow int64 (UBSan: signed-integer-overflow) and come out
  // negative; any request beyond the plan's room means "up to the plan's limit".
  mm_plan_info info{};
  info.max_seq_len = 64;
  auto r = resolve_max_seq_len(info, 0, 5, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 64);
  r = resolve_max_seq_len(info, 0, 5, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 15);
  r = resolve_max_seq_len(info, 0, 70, std::numeric_limits<int64_t>::max());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("the prompt has 70 tokens"), std::string::npos) << r.error().message;
}

TEST_F(HostileTest, NonFiniteSamplingValuesAreUsageErrors) {
  o.temperature = std::nanf("");
  EXPECT_EQ(generate(), 2);
  EXPECT_NE(err.find("--temperature nan is outside [0, 100]"), std::string::npos) << err;
  o.temperature = 0;
  o.top_p = std::numeric_limits<float>::infinity();
  EXPECT_EQ(generate(), 2);
  EXPECT_NE(err.find("--top-p inf is outside [0, 1]"), std::string::npos) << err;
  o.top_p = 1;
  o.top_k = -5;
  EXPECT_EQ(generate(), 2);
}

TEST_F(HostileTest, ToolsNestedTooDeeplyAreRefused) {
  // 10,000 levels: used to reach the chat template's recursive JSON printer (stack overflow under
  // UBSan); the --tools reader now refuses nesting beyond 64 levels, naming the file.
  const std::string path = mm::test::temp_path("deep_tools.json");
  std::ofstream(path) << R"([{"type": "function", "function": {"name": "f", "parameters": )"
                      << std::string(10000, '[') << std::string(10000, ']') << "}}]";
  o.prompt_text = "hi";
  o.chat = true;
  o.tools_file = path;
  EXPECT_EQ(generate(), 1);
  EXPECT_NE(err.find("--tools " + path + ": invalid JSON: nesting deeper than 64 levels"), std::string::npos) << err;
}

TEST_F(HostileTest, ToolsThatAreNotAnArrayAreRefusedByType) {
  const std::string path = mm::test::temp_path("object_tools.json");
  std::ofstream(path) << R"({"type": "function"})";
  o.prompt_text = "hi";
  o.chat = true;
  o.tools_file = path;
  EXPECT_EQ(generate(), 1);
  EXPECT_NE(err.find("found an object"), std::string::npos) << err;
}

TEST(HostileInspect, NonUtf8StringsNeverAbortTheJsonWriter) {
  // nlohmann's dump() threw type_error 316 on the producer string (uncaught: abort). Now it is
  // printed with U+FFFD, or refused by the plan verifier as a bad plan; either way no abort.
  TinyModel m;
  m.corrupt = "non_utf8_producer";
  const std::string path = write_plan("hostile_utf8.mmp", m);
  std::ostringstream out, err;
  const int rc = inspect_command(path, /*json=*/true, out, err);
  ASSERT_TRUE(rc == 0 || rc == 1) << rc << " " << err.str();
  if (rc == 0) {
    const auto j = nlohmann::json::parse(out.str());
    EXPECT_EQ(j["producer"].get<std::string>(), "test\xEF\xBF\xBD\xEF\xBF\xBDplan");
  } else {
    EXPECT_NE(err.str().find(path), std::string::npos) << err.str();
  }
}

}  // namespace
}  // namespace mm::rt
