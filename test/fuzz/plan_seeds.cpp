// mm-fuzz-plan-seeds OUT_DIR: writes the plan seeds of fuzz_plan, the test plans of
// test/unit/runtime/test_plan.h in their variants (a fuzzing build has no mmc to compile plans).
#include <cstdio>
#include <fstream>
#include <string>

#include "test/unit/runtime/test_plan.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mm-fuzz-plan-seeds OUT_DIR\n");
    return 2;
  }
  using mm::rt::test::TinyModel;
  struct Seed {
    const char* name;
    TinyModel model;
  };
  TinyModel fp8, wide, tiny;
  fp8.fp8_kv = true;
  wide.V = 2112;
  wide.max_seq_len = 1024;
  wide.max_batch = 16;
  tiny.L = 1;
  tiny.E = 2;
  tiny.TOPK = 1;
  const Seed seeds[] = {{"tiny.mmp", TinyModel{}}, {"fp8.mmp", fp8}, {"wide.mmp", wide}, {"one-layer.mmp", tiny}};
  for (const Seed& s : seeds) {
    const auto bytes = mm::rt::test::build_tiny_plan(s.model);
    std::ofstream f(std::string(argv[1]) + "/" + s.name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) return 1;
  }
  return 0;
}
