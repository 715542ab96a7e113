// mm-kernel-src KIND NAME=VALUE ...: prints the specialized CUDA source of one kernel, preceded
// by a comment block with the entry, block and grid (for lit/FileCheck and for reading kernels).
// Integer values are integer parameters; values with '.', 'e' or a sign are float parameters.
// Exit codes: 0 ok, 1 bad parameters, 2 usage.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "codegen/kernels/specialize.h"

namespace {
std::string dim_text(const mm::kernels::DimExpr& d) {
  static const char* names[] = {"T", "R", "S", "CTX", "STEP", "D5", "D6", "D7"};
  if (d.dim < 0) return std::to_string(d.eval(nullptr));
  std::string s = "ceil((" + std::to_string(d.mul) + "*" + names[d.dim & 7] + " + " + std::to_string(d.add) + ") / " +
                  std::to_string(d.div) + ")";
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mm-kernel-src KIND NAME=VALUE ...\n");
    return 2;
  }
  auto kind = mm::kernels::kind_from_name(argv[1]);
  if (!kind) {
    std::fprintf(stderr, "mm-kernel-src: unknown kernel kind '%s'\n", argv[1]);
    return 2;
  }
  mm::kernels::Params p;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "mm-kernel-src: expected NAME=VALUE, got '%s'\n", argv[i]);
      return 2;
    }
    const std::string k = a.substr(0, eq), v = a.substr(eq + 1);
    char* end = nullptr;
    if (v.find_first_of(".eE") == std::string::npos) {
      const long long iv = std::strtoll(v.c_str(), &end, 10);
      if (end && *end == '\0' && !v.empty()) { p.ints[k] = iv; continue; }
    }
    const double fv = std::strtod(v.c_str(), &end);
    if (!end || *end != '\0' || v.empty()) {
      std::fprintf(stderr, "mm-kernel-src: value of %s is not a number: '%s'\n", k.c_str(), v.c_str());
      return 2;
    }
    p.floats[k] = fv;
  }
  auto s = mm::kernels::specialize(*kind, p);
  if (!s.ok()) {
    std::fprintf(stderr, "mm-kernel-src: %s\n", s.error().message.c_str());
    return 1;
  }
  auto src = mm::kernels::kernel_source(*s);
  if (!src.ok()) {
    std::fprintf(stderr, "mm-kernel-src: %s\n", src.error().message.c_str());
    return 1;
  }
  std::printf("// entry: %s\n// block: %d %d %d\n// grid: %s | %s | %s\n// dynamic shared: %d\n", src->entry.c_str(),
              s->block[0], s->block[1], s->block[2], dim_text(s->grid[0]).c_str(), dim_text(s->grid[1]).c_str(),
              dim_text(s->grid[2]).c_str(), s->dynamic_shared_bytes);
  std::fwrite(src->source.data(), 1, src->source.size(), stdout);
  return 0;
}
