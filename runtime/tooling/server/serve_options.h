// `mmrun serve` flags. The names are vLLM's (`vllm serve` of the model card carries over): flags
// with a meaning here map onto the runtime; vLLM flags without one are accepted and reported with
// a one-line notice (ignored_flag_notices), so that a copied command line starts instead of
// failing on, say, --trust-remote-code. Unknown flags are still usage errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mm::rt::server {

struct ServeOptions {
  std::string plan;
  std::string weights;                 // model directory or "random"
  std::string tokenizer_dir;           // --tokenizer (needed with --weights random)
  std::string device;                  // cuda | host | "" (cuda if usable)
  std::string host = "127.0.0.1";
  int port = 8000;                     // 0: any free port (printed at start)
  std::vector<std::string> served_model_names;  // empty: the PLAN argument, as vLLM names a model by its path
  std::string api_key;
  int64_t max_num_seqs = 0;            // 0: the plan's max_batch
  int64_t max_model_len = 0;           // 0: the plan's max_seq_len
  int64_t max_num_batched_tokens = 2048;
  int64_t max_queued_requests = 64;
  int64_t max_request_bytes = 16ll << 20;
  double gpu_memory_utilization = 0.9;
  std::string kv_cache_dtype = "auto";
  std::string reasoning_parser = "none";
  std::string tool_call_parser;        // "" or minimax_m2
  bool enable_auto_tool_choice = false;
  bool enable_prefix_caching = true;
  std::string generation_config = "auto";  // auto | vllm | a directory with generation_config.json
  std::string load_format = "auto";    // dummy = --weights random
  uint64_t seed = 0;
  int threads = 0;
};

// Registers the flags of `mmrun serve` on `cmd`.
void add_serve_flags(CLI::App* cmd, ServeOptions& options);

// After parsing: one line per vLLM flag that was given but means nothing here, saying why.
std::vector<std::string> ignored_flag_notices(const CLI::App* cmd);

// Checks that need no plan (usage errors, exit 2): the weights source, parser names, ranges.
// Returns an empty string when the options are consistent, else the message.
std::string check_serve_options(ServeOptions& options);

}  // namespace mm::rt::server
