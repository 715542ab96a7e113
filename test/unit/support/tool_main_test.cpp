// run_tool (support/tool_main.h): an exception escaping a tool's body is exit code 3 with a
// message, never std::terminate.
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <vector>

#include "support/tool_main.h"

namespace mm {
namespace {

TEST(RunTool, PassesTheExitCodeThrough) {
  EXPECT_EQ(run_tool("t", [] { return 0; }), 0);
  EXPECT_EQ(run_tool("t", [] { return 2; }), 2);
}

TEST(RunTool, OutOfMemoryIsExitCode3) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_tool("mmrun", []() -> int { throw std::bad_alloc(); }), 3);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("mmrun: error: out of memory"), std::string::npos);
}

TEST(RunTool, AnyOtherExceptionIsAnInternalError) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_tool("mm-inspect", []() -> int { throw std::logic_error("broken invariant"); }), 3);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("mm-inspect: internal error: broken invariant"),
            std::string::npos);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_tool("mmc", []() -> int { throw 42; }), 3);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("mmc: internal error"), std::string::npos);
}

}  // namespace
}  // namespace mm
