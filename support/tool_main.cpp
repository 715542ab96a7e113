#include "support/tool_main.h"

#include <cstdio>
#include <exception>
#include <new>

namespace mm {

int run_tool(const char* tool, const std::function<int()>& body) noexcept {
  // stdio rather than iostreams: after a bad_alloc, formatting must not need the heap.
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory (an allocation failed; free memory, or lower "
                         "--max-seq-len or the input size)\n", tool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", tool, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: internal error: an unknown exception\n", tool);
  }
  std::fflush(stderr);
  return 3;
}

}  // namespace mm
