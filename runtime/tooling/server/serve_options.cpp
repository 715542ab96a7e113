#include "runtime/tooling/server/serve_options.h"

#include <CLI/CLI.hpp>

namespace mm::rt::server {

namespace {

// vLLM flags of `vllm serve` that have no meaning for mmrun: accepted, ignored, reported.
struct IgnoredFlag {
  const char* names;  // CLI11 names
  bool takes_value;
  const char* why;
};

constexpr IgnoredFlag kIgnored[] = {
    {"--trust-remote-code", false, "mmrun runs no model code from the checkpoint"},
    {"--tensor-parallel-size", true, "sharding is compiled into the plan (mmc compile --tp)"},
    {"--pipeline-parallel-size", true, "sharding is compiled into the plan"},
    {"--data-parallel-size", true, "mmrun serves one engine per process"},
    {"--enable-expert-parallel", false, "sharding is compiled into the plan (mmc compile --ep)"},
    {"--dtype", true, "activations are bf16 as compiled into the plan"},
    {"-q,--quantization", true, "the plan records the checkpoint's quantization"},
    {"--download-dir", true, "mmrun reads local files only"},
    {"--revision", true, "mmrun reads local files only"},
    {"--tokenizer-revision", true, "mmrun reads local files only"},
    {"--hf-token", true, "mmrun reads local files only"},
    {"--enforce-eager", false, "decode always runs as captured CUDA graphs"},
    {"--enable-chunked-prefill", false, "prefill is always chunked (--max-num-batched-tokens)"},
    {"--block-size", true, "the KV-cache block size is compiled into the plan"},
    {"--swap-space", true, "the KV cache stays on the device"},
    {"--cpu-offload-gb", true, "weights stay on the device"},
    {"--max-seq-len-to-capture", true, "every decode batch size is captured"},
    {"--disable-log-requests", false, "mmrun does not log requests"},
    {"--enable-log-requests", false, "mmrun does not log requests"},
    {"--disable-log-stats", false, "statistics are in GET /metrics"},
    {"--uvicorn-log-level", true, "mmrun's HTTP server is cpp-httplib"},
    {"--disable-uvicorn-access-log", false, "mmrun's HTTP server is cpp-httplib"},
    {"--disable-fastapi-docs", false, "mmrun has no documentation endpoints"},
    {"--max-log-len", true, "mmrun does not log requests"},
    {"-O,--compilation-config", true, "the plan is compiled ahead of time (mmc compile)"},
    {"--async-scheduling", false, "the engine thread schedules between steps"},
    {"--speculative-config", true, "mmrun has no speculative decoding"},
    {"--limit-mm-per-prompt", true, "the model takes text only"},
    {"--allowed-origins", true, "mmrun sends no CORS headers"},
    {"--allowed-methods", true, "mmrun sends no CORS headers"},
    {"--allowed-headers", true, "mmrun sends no CORS headers"},
    {"--allow-credentials", false, "mmrun sends no CORS headers"},
};

// The long name of a CLI11 names string ("-tp,--tensor-parallel-size" -> "--tensor-parallel-size").
std::string long_name(const char* names) {
  std::string s = names;
  const size_t comma = s.rfind(',');
  return comma == std::string::npos ? s : s.substr(comma + 1);
}

}  // namespace

void add_serve_flags(CLI::App* cmd, ServeOptions& o) {
  cmd->add_option("PLAN", o.plan, "plan file (.mmp)")->required();
  cmd->add_option("--weights", o.weights, "model directory (weights, tokenizer, chat template), or 'random'");
  cmd->add_option("--tokenizer", o.tokenizer_dir, "directory with tokenizer.json (default: --weights; needed with random)");
  cmd->add_option("--device", o.device, "cuda or host (default: cuda if usable, else host)")
      ->check(CLI::IsMember({"cuda", "host"}));
  cmd->add_option("--host", o.host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", o.port, "port to listen on (default 8000; 0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--served-model-name", o.served_model_names,
                  "model name(s) requests may use (repeatable; default: the PLAN argument)")
      ->allow_extra_args(false);
  cmd->add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on /v1 endpoints");
  cmd->add_option("--max-num-seqs", o.max_num_seqs, "sequences generated at once (default: the plan's max batch)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-model-len", o.max_model_len, "longest prompt + answer in tokens (default: the plan's limit)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                  "prompt tokens prefilled per scheduler step (default 2048)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-queued-requests", o.max_queued_requests,
                  "requests that may wait for a sequence slot; more are refused with 429 (default 64)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-request-bytes", o.max_request_bytes, "largest request body; larger ones get 413 (default 16 MiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                  "share of the device memory left after weights the KV cache may take (default 0.9)")
      ->check(CLI::Range(0.01, 1.0));
  cmd->add_option("--kv-cache-dtype", o.kv_cache_dtype, "must match the plan's (auto: the plan's)")
      ->check(CLI::IsMember({"auto", "bf16", "bfloat16", "fp8", "fp8_e4m3"}));
  cmd->add_option("--reasoning-parser", o.reasoning_parser,
                  "minimax_m2: thinking in reasoning_content; minimax_m2_append_think: in content after <think>; "
                  "none (default): raw text")
      ->check(CLI::IsMember({"minimax_m2", "minimax_m2_append_think", "none"}));
  cmd->add_option("--tool-call-parser", o.tool_call_parser, "minimax_m2: <minimax:tool_call> blocks become tool_calls")
      ->check(CLI::IsMember({"minimax_m2"}));
  cmd->add_flag("--enable-auto-tool-choice", o.enable_auto_tool_choice,
                "let the model decide when to call tools (tool_choice auto; needs --tool-call-parser)");
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o.enable_prefix_caching,
                "reuse the KV cache of the longest cached prompt prefix (default on)");
  cmd->add_option("--generation-config", o.generation_config,
                  "sampling defaults: auto (the model's generation_config.json), vllm (none), or a directory");
  cmd->add_option("--load-format", o.load_format, "dummy: random weights (as --weights random)")
      ->check(CLI::IsMember({"auto", "safetensors", "dummy"}));
  cmd->add_option("--seed", o.seed, "seed of --weights random");
  cmd->add_option("--threads", o.threads, "host backend threads (default: all cores)")->check(CLI::NonNegativeNumber);
  for (const IgnoredFlag& f : kIgnored) {
    const std::string description = std::string("vLLM flag, ignored: ") + f.why;
    if (f.takes_value)
      cmd->add_option(f.names, description)->allow_extra_args(false);
    else
      cmd->add_flag(f.names, description);
  }
}

std::vector<std::string> ignored_flag_notices(const CLI::App* cmd) {
  std::vector<std::string> out;
  for (const IgnoredFlag& f : kIgnored) {
    const std::string name = long_name(f.names);
    if (cmd->count(name) > 0) out.push_back("note: " + name + " ignored: " + f.why);
  }
  return out;
}

std::string check_serve_options(ServeOptions& o) {
  if (o.load_format == "dummy") {
    if (!o.weights.empty() && o.weights != "random")
      return "--load-format dummy means random weights, but --weights is " + o.weights;
    o.weights = "random";
  }
  if (o.weights.empty()) return "--weights DIR|random is required";
  if (o.enable_auto_tool_choice && o.tool_call_parser.empty())
    return "--enable-auto-tool-choice needs --tool-call-parser minimax_m2";
  if (o.served_model_names.empty()) o.served_model_names.push_back(o.plan);
  for (const auto& n : o.served_model_names)
    if (n.empty()) return "--served-model-name must not be empty";
  return "";
}

}  // namespace mm::rt::server
