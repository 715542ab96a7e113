// mmrun: a thin main over the runtime library (design.md section 6).
//   mmrun generate PLAN [--weights DIR|random] [--device cuda|host] --prompt-ids 1,2,3
//         [--force-ids 4,5,6] [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K]
//         [--seed S] [--print-ids] [--dump-logits FILE.npy] [--max-seq-len N]
//   mmrun tokenize MODEL_DIR --text TEXT
#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/src/generate.h"
#include "runtime/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  CLI::App app{"mmrun: run a plan compiled by mmc"};
  app.require_subcommand(1);

  mm::rt::GenerateOptions g;
  std::string prompt_ids, force_ids;
  CLI::App* gen = app.add_subcommand("generate", "generate tokens from a prompt");
  gen->add_option("PLAN", g.plan, "plan file (.mmp)")->required();
  gen->add_option("--weights", g.weights, "model directory, or 'random'")->required();
  gen->add_option("--device", g.device, "cuda or host (default: cuda if usable, else host)")
      ->check(CLI::IsMember({"cuda", "host"}));
  gen->add_option("--prompt-ids", prompt_ids, "prompt token ids, comma separated")->required();
  gen->add_option("--force-ids", force_ids,
                  "teacher forcing: feed these ids one by one instead of the sampled ones, "
                  "recording the logits of every step (prints the model's own choices)");
  gen->add_option("--max-new-tokens", g.max_new_tokens, "tokens to generate")->check(CLI::NonNegativeNumber);
  gen->add_option("--temperature", g.temperature, "sampling temperature (<= 0: greedy, the default)");
  gen->add_option("--top-p", g.top_p, "nucleus sampling mass");
  gen->add_option("--top-k", g.top_k, "sample among the k most likely (<= 0: all)");
  gen->add_option("--seed", g.seed, "sampling seed (also seeds --weights random)");
  gen->add_flag("--print-ids", g.print_ids, "print the generated ids as a JSON array");
  gen->add_flag("--ignore-eos", g.ignore_eos, "do not stop at an end-of-sequence token");
  gen->add_option("--dump-logits", g.dump_logits, "write float32 [steps, vocab] logits as .npy");
  gen->add_option("--max-seq-len", g.max_seq_len, "KV cache capacity per sequence (default: prompt + new tokens)")
      ->check(CLI::PositiveNumber);
  gen->add_option("--threads", g.threads, "host backend threads (default: all cores)")->check(CLI::NonNegativeNumber);

  std::string model_dir, text;
  CLI::App* tok = app.add_subcommand("tokenize", "print the token ids of a text as JSON");
  tok->add_option("MODEL_DIR", model_dir, "model directory with tokenizer.json")->required();
  tok->add_option("--text", text, "text to tokenize")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*tok) return mm::text::tokenize_command(model_dir, text, std::cout, std::cerr);

  std::string error;
  if (!mm::rt::parse_id_list(prompt_ids, &g.prompt_ids, &error)) {
    std::cerr << "error: --prompt-ids: " << error << "\n";
    return 2;
  }
  if (!force_ids.empty() && !mm::rt::parse_id_list(force_ids, &g.force_ids, &error)) {
    std::cerr << "error: --force-ids: " << error << "\n";
    return 2;
  }
  return mm::rt::generate_command(g, std::cout, std::cerr);
}
