// A path in gtest's temporary directory that no other test process uses: CTest runs every gtest
// case as its own process, two at a time or more, so cases of one file that wrote the same fixed
// name truncated each other's files (seen on a clean 2-core run: "0 bytes is not a plan").
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace mm::test {

// TempDir()/mm<pid>_<prefix>; callers may append to it.
inline std::string temp_path(const std::string& prefix) {
  return ::testing::TempDir() + "/mm" + std::to_string(::getpid()) + "_" + prefix;
}

}  // namespace mm::test
