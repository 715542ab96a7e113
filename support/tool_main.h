// The boundary of every command-line tool (design.md section 6): whatever escapes a tool's body
// as a C++ exception - std::bad_alloc above all, also a bug's std::logic_error - becomes exit code
// 3 with a message on stderr instead of std::terminate's abort and core dump.
#pragma once

#include <functional>

namespace mm {

// Runs body() and returns its exit code; an exception that escapes it prints
// "<tool>: error: out of memory ..." or "<tool>: internal error: <what>" and returns 3.
int run_tool(const char* tool, const std::function<int()>& body) noexcept;

}  // namespace mm
