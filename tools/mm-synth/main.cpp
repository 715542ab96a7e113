// mm-synth: MiniMax-M2 checkpoints in the exact on-disk format of the target, with deterministic
// random weights (design.md section 6). Thin: flags in, models/synth out.
//   mm-synth --preset tiny|mid|minimax-m2.7-reap-172b --out DIR [--seed N] [--sparse]
//            [--quant auto-round|gptq] [--layers N] [--experts N] [--threads N] [--force]
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "models/synth/synth.h"
#include "support/tool_main.h"

static int tool_main(int argc, char** argv) {
  CLI::App app{"mm-synth: write a MiniMax-M2 checkpoint (AutoRound W4A16 format) with random weights"};
  mm::synth::Options opts;
  std::string quant = "auto-round";
  app.add_option("--preset", opts.preset, "model size")
      ->required()
      ->check(CLI::IsMember(mm::synth::preset_names()));
  app.add_option("--out", opts.out_dir, "output directory (created; must be empty unless --force)")
      ->required();
  app.add_option("--seed", opts.seed, "random seed of the weights");
  app.add_flag("--sparse", opts.sparse,
               "write shard data as holes (real headers and zero points): loader tests at full scale");
  app.add_option("--quant", quant, "quantization format")
      ->check(CLI::IsMember({"auto-round", "gptq"}));
  app.add_option("--layers", opts.layers, "override num_hidden_layers")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  app.add_option("--experts", opts.experts, "override num_local_experts (>= num_experts_per_tok)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_option("--threads", opts.threads, "worker threads (default: one per hardware thread)")
      ->check(CLI::Range(1, 1024));
  app.add_flag("--force", opts.force, "replace the checkpoint files of a non-empty output directory");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // design.md section 6: usage errors exit 2
  }
  opts.quant = quant == "gptq" ? mm::QuantMethod::GPTQ : mm::QuantMethod::AUTO_ROUND;

  mm::Expected<mm::synth::WriteSummary> sum = mm::synth::write_checkpoint(opts);
  if (!sum) {
    std::cerr << "mm-synth: error: " << sum.error().message << "\n";
    return sum.error().exit_code();
  }
  std::printf("mm-synth: wrote %s (preset %s, %s%s): %zu tensors in %zu shard%s, %llu bytes of tensor data\n",
              opts.out_dir.c_str(), opts.preset.c_str(), quant.c_str(), opts.sparse ? ", sparse" : "",
              sum->tensors, sum->shards, sum->shards == 1 ? "" : "s",
              static_cast<unsigned long long>(sum->bytes));
  return 0;
}

int main(int argc, char** argv) {
  return mm::run_tool("mm-synth", [&] { return tool_main(argc, argv); });
}
