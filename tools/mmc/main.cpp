// mmc: the ahead-of-time compiler's command line (design.md section 6). Thin: flags in, library out.
//   mmc check MODEL_DIR
//   mmc compile MODEL_DIR -o PLAN [--target sm_121,sm_90] [--max-seq-len N] [--max-batch N]
//               [--max-prefill-tokens N] [--kv-cache-dtype bf16|fp8]
//               [--kernel-cache DIR|off] [--emit moe|moe-fused|exec|cuda|plan] [--stats]
#include <iostream>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "codegen/nvrtc/kernel_cache.h"
#include "compiler/pipeline/Compile.h"
#include "models/common/check_report.h"
#include "support/tool_main.h"

static int tool_main(int argc, char** argv) {
  CLI::App app{"mmc: ahead-of-time compiler for MiniMax-M2 mixture-of-experts models"};
  app.require_subcommand(1);

  std::string check_dir;
  auto* check = app.add_subcommand("check", "validate a checkpoint directory and print a summary");
  check->add_option("MODEL_DIR", check_dir, "checkpoint directory")->required();

  mm::compiler::CompileOptions opts;
  std::string targets = "sm_121,sm_90";
  std::string emit = "plan";
  auto* compile = app.add_subcommand("compile", "compile a checkpoint directory into a plan");
  compile->add_option("MODEL_DIR", opts.modelDir, "checkpoint directory")->required();
  compile->add_option("-o,--output", opts.output, "output plan (.mmp); '-' prints IR to stdout");
  compile->add_option("--target", targets, "comma-separated GPU archs (sm_121,sm_90,...)");
  compile->add_option("--max-seq-len", opts.maxSeqLen, "longest sequence the plan serves")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  compile->add_option("--max-batch", opts.maxBatch, "most sequences decoded at once")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  compile->add_option("--max-prefill-tokens", opts.maxPrefillTokens,
                      "prefill chunk: most prompt tokens per prefill call (capped at --max-seq-len)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  compile->add_option("--prefill-tile-rows", opts.prefillTileRows,
                      "rows per tile of the prefill W4 GEMMs: 64, 128, or 0 (automatic)")
      ->check(CLI::IsMember({int64_t{0}, int64_t{64}, int64_t{128}}));
  compile->add_option("--qweight-layout", opts.qweightLayout,
                      "device layout of the int4 words: strips (32-column strips, each one contiguous "
                      "run: the decode GEMVs' loads; default) or rows (as in the checkpoint)")
      ->check(CLI::IsMember({std::string("strips"), std::string("rows")}));
  compile->add_option("--tp", opts.tp,
                      "tensor-parallel ranks: attention split by heads, one program set and weight "
                      "slices per rank (docs/parallel.md); must divide the kv heads")
      ->check(CLI::Range(int64_t{1}, int64_t{16}));
  compile->add_option("--ep", opts.ep,
                      "expert-parallel ranks: experts split by id, each rank computes its experts' "
                      "slots and the partial outputs are all-reduced; with --tp N it must be N (the "
                      "experts split over the same ranks); must divide the experts (docs/parallel.md)")
      ->check(CLI::Range(int64_t{1}, int64_t{16}));
  compile->add_option("--kv-cache-dtype", opts.kvCacheDtype, "bf16 or fp8")
      ->check(CLI::IsMember({"bf16", "fp8"}));
  compile->add_option("--emit", emit, "stop after a phase and print it")
      ->check(CLI::IsMember({"moe", "moe-fused", "exec", "cuda", "plan"}));
  std::string kernel_cache = mm::codegen::default_kernel_cache_dir();
  compile->add_option("--kernel-cache", kernel_cache,
                      "directory of kernels NVRTC compiled before, read back instead of compiled again; "
                      "'off' compiles every kernel (default: $MMC_KERNEL_CACHE, else "
                      "$XDG_CACHE_HOME/mmc/kernels, else ~/.cache/mmc/kernels)");
  compile->add_flag("--stats", opts.stats, "print op and launch counts per program");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // design.md section 6: usage errors exit 2
  }

  if (check->parsed()) return mm::check_command(check_dir, std::cout, std::cerr);

  static const std::map<std::string, mm::compiler::EmitKind> kinds = {
      {"moe", mm::compiler::EmitKind::Moe},   {"moe-fused", mm::compiler::EmitKind::MoeFused},
      {"exec", mm::compiler::EmitKind::Exec}, {"cuda", mm::compiler::EmitKind::Cuda},
      {"plan", mm::compiler::EmitKind::Plan}};
  opts.emit = kinds.at(emit);
  opts.kernelCache = kernel_cache == "off" ? "" : kernel_cache;
  opts.targets.clear();
  for (size_t start = 0; start <= targets.size();) {
    size_t comma = targets.find(',', start);
    if (comma == std::string::npos) comma = targets.size();
    if (comma > start) opts.targets.push_back(targets.substr(start, comma - start));
    start = comma + 1;
  }
  if (opts.emit == mm::compiler::EmitKind::Plan && opts.output == "-") {
    std::cerr << "mmc compile: --emit plan needs -o PLAN (a file path)\n";
    return 2;
  }
  return mm::compiler::compileCommand(opts);
}

int main(int argc, char** argv) {
  return mm::run_tool("mmc", [&] { return tool_main(argc, argv); });
}
