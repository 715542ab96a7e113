// mmrun: a thin main over the runtime library (design.md section 6).
//   mmrun generate PLAN --weights DIR|random [--device cuda|host]
//         (--prompt TEXT [--chat] [--system TEXT] [--tools FILE] | --prompt-ids 1,2,3 [--force-ids 4,5,6])
//         [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--stop S]...
//         [--ignore-eos] [--print-ids] [--dump-logits FILE.npy] [--max-seq-len N] [--tokenizer DIR]
//   mmrun chat PLAN --weights DIR|random [--tokenizer DIR] [--system TEXT] [--tools FILE]
//         [sampling flags] [--max-new-tokens N] [--stop S]... [--verbose]
//   mmrun serve PLAN --weights DIR|random [--host H] [--port P] [--served-model-name N] [--api-key K]
//         [--max-num-seqs N] [--max-model-len N] [--reasoning-parser P] [--tool-call-parser minimax_m2]
//         [--enable-auto-tool-choice] [...; docs/server.md]
//   mmrun tokenize MODEL_DIR --text TEXT
//   mmrun bench PLAN --weights DIR|random [--batch 1,4,16] [--depth 0,4096] [--pp N] [--tg N] [--runs N]
//         [--json] [--load] [--device cuda|host] [--threads N] [--load-threads N] [--load-io auto|direct|buffered]
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/tooling/bench.h"
#include "runtime/tooling/chat_loop.h"
#include "runtime/tooling/generate.h"
#include "runtime/tooling/server/serve.h"
#include "runtime/tooling/server/serve_options.h"
#include "runtime/tokenizer/tokenizer.h"
#include "support/tool_main.h"

namespace {

// Flags generate and chat share: backend, sampling, stopping, text assets.
void add_common(CLI::App* cmd, mm::rt::GenerateOptions& g, std::string& system) {
  cmd->add_option("PLAN", g.plan, "plan file (.mmp)")->required();
  cmd->add_option("--weights", g.weights, "model directory (weights, tokenizer, chat template), or 'random'")
      ->required();
  cmd->add_option("--device", g.device, "cuda or host (default: cuda if usable, else host)")
      ->check(CLI::IsMember({"cuda", "host"}));
  cmd->add_option("--temperature", g.temperature, "sampling temperature (0: greedy, the default)")
      ->check(CLI::Range(0.0f, mm::rt::kMaxTemperature));
  cmd->add_option("--top-p", g.top_p, "nucleus sampling mass")->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--top-k", g.top_k, "sample among the k most likely (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", g.seed, "sampling seed (also seeds --weights random)");
  cmd->add_flag("--ignore-eos", g.ignore_eos, "do not stop at an end-of-sequence token");
  cmd->add_option("--stop", g.stop, "stop when the output contains this text (not printed; repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--max-seq-len", g.max_seq_len, "KV cache capacity per sequence")
      ->check(CLI::Range(int64_t{1}, mm::rt::kMaxTokensFlag));
  cmd->add_option("--threads", g.threads, "host backend threads (default: all cores)")
      ->check(CLI::Range(0, MM_MAX_THREADS));
  cmd->add_option("--tokenizer", g.tokenizer_dir, "directory with tokenizer.json (default: --weights)");
  cmd->add_option("--system", system, "system message (default: the chat template's)");
  cmd->add_option("--tools", g.tools_file, "JSON file with an array of OpenAI tools offered to the model");
}

}  // namespace

static int tool_main(int argc, char** argv) {
  CLI::App app{"mmrun: run a plan compiled by mmc"};
  app.require_subcommand(1);

  mm::rt::GenerateOptions g;
  std::string prompt_ids, force_ids, prompt_text, system;
  CLI::App* gen = app.add_subcommand("generate", "generate text or tokens from a prompt");
  add_common(gen, g, system);
  CLI::Option* text_opt = gen->add_option("--prompt", prompt_text, "prompt text (encoded with the model's tokenizer)");
  CLI::Option* ids_opt = gen->add_option("--prompt-ids", prompt_ids, "prompt token ids, comma separated");
  text_opt->excludes(ids_opt);
  gen->add_flag("--chat", g.chat, "render --prompt as a one-turn conversation with the chat template");
  gen->add_option("--force-ids", force_ids,
                  "teacher forcing: feed these ids one by one instead of the sampled ones, "
                  "recording the logits of every step (prints the model's own choices)");
  gen->add_option("--max-new-tokens", g.max_new_tokens, "tokens to generate")
      ->check(CLI::Range(int64_t{0}, mm::rt::kMaxTokensFlag));
  gen->add_flag("--print-ids", g.print_ids, "print the generated ids as a JSON array");
  gen->add_option("--dump-logits", g.dump_logits, "write float32 [steps, vocab] logits as .npy");

  mm::rt::GenerateOptions c;
  c.max_new_tokens = 512;
  std::string chat_system;
  CLI::App* chat = app.add_subcommand("chat", "interactive conversation in the terminal");
  add_common(chat, c, chat_system);
  chat->add_option("--max-new-tokens", c.max_new_tokens, "longest answer in tokens")
      ->check(CLI::Range(int64_t{1}, mm::rt::kMaxTokensFlag));
  chat->add_flag("--verbose", c.verbose, "print token counts, KV reuse and speed after each answer");

  mm::rt::server::ServeOptions so;
  CLI::App* serve = app.add_subcommand("serve", "OpenAI-compatible HTTP server (vLLM's flags; docs/server.md)");
  mm::rt::server::add_serve_flags(serve, so);

  std::string model_dir, text;
  CLI::App* tok = app.add_subcommand("tokenize", "print the token ids of a text as JSON");
  tok->add_option("MODEL_DIR", model_dir, "model directory with tokenizer.json")->required();
  tok->add_option("--text", text, "text to tokenize")->required();

  mm::rt::BenchOptions b;
  std::string batches = "1", depths = "0";
  CLI::App* bench = app.add_subcommand("bench", "prefill/decode speed against the rooflines, or --load: load rate against the disk");
  bench->add_option("PLAN", b.plan, "plan file (.mmp)")->required();
  bench->add_option("--weights", b.weights, "model directory, or 'random'")->required();
  bench->add_option("--device", b.device, "cuda or host (default: cuda if usable)")->check(CLI::IsMember({"cuda", "host"}));
  bench->add_option("--batch", batches, "sequences decoding together, comma separated (default 1)");
  bench->add_option("--depth", depths, "tokens already in the KV cache, comma separated (default 0)");
  bench->add_option("--pp", b.pp, "prompt tokens timed per sequence (default 2048)");
  bench->add_option("--tg", b.tg, "decode steps timed (default 32)");
  bench->add_option("--runs", b.runs, "repetitions, reported as mean ± sd (default 3)");
  bench->add_flag("--json", b.json, "one JSON object instead of the table");
  bench->add_flag("--load", b.load, "only the load benchmark: load rate next to the disk's sequential read rate");
  bench->add_option("--threads", b.threads, "host backend threads (default: all cores)")->check(CLI::NonNegativeNumber);
  bench->add_option("--load-threads", b.load_threads, "checkpoint reader threads (default: 4 with O_DIRECT, 1 through the page cache)")->check(CLI::NonNegativeNumber);
  bench->add_option("--load-io", b.load_io, "checkpoint reads: auto (O_DIRECT where allowed), direct or buffered")
      ->check(CLI::IsMember({"auto", "direct", "buffered"}));
  bench->add_option("--seed", b.seed, "seed of random weights, token ids and sampling");
  bench->add_option("--temperature", b.temperature, "sampling temperature of the timed tokens (0: greedy, the default)")
      ->check(CLI::Range(0.0f, mm::rt::kMaxTemperature));
  bench->add_option("--top-p", b.top_p, "nucleus sampling mass (with --temperature)")->check(CLI::Range(0.0f, 1.0f));
  bench->add_option("--top-k", b.top_k, "sample among the k most likely (0: all; with --temperature)")
      ->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*tok) return mm::text::tokenize_command(model_dir, text, std::cout, std::cerr);
  if (*bench) {
    std::string error;
    if (!mm::rt::parse_size_list(batches, &b.batches, &error) || !mm::rt::parse_size_list(depths, &b.depths, &error)) {
      std::cerr << "error: --batch/--depth: " << error << "\n";
      return 2;
    }
    return mm::rt::bench_command(b, std::cout, std::cerr);
  }
  if (*serve) return mm::rt::server::serve_command(so, mm::rt::server::ignored_flag_notices(serve), std::cerr);
  if (*chat) {
    if (chat->count("--system")) c.system = chat_system;
    return mm::rt::chat_command(c, STDIN_FILENO, std::cout, std::cerr);
  }

  if (gen->count("--system")) g.system = system;
  if (gen->count("--prompt")) {
    g.prompt_text = prompt_text;
  } else if (!gen->count("--prompt-ids")) {
    std::cerr << "error: generate needs --prompt TEXT or --prompt-ids 1,2,3\n";
    return 2;
  }
  std::string error;
  if (!g.prompt_text && !mm::rt::parse_id_list(prompt_ids, &g.prompt_ids, &error)) {
    std::cerr << "error: --prompt-ids: " << error << "\n";
    return 2;
  }
  if (!force_ids.empty() && !mm::rt::parse_id_list(force_ids, &g.force_ids, &error)) {
    std::cerr << "error: --force-ids: " << error << "\n";
    return 2;
  }
  return mm::rt::generate_command(g, std::cout, std::cerr);
}

int main(int argc, char** argv) {
  return mm::run_tool("mmrun", [&] { return tool_main(argc, argv); });
}
