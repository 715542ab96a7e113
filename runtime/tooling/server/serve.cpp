#include "runtime/tooling/server/serve.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/tooling/runtime_api.h"
#include "runtime/tooling/server/http_server.h"
#include "runtime/tooling/server/metrics.h"
#include "runtime/tooling/server/openai_request.h"
#include "runtime/tooling/server/scheduler.h"
#include "runtime/tooling/text_assets.h"
#include "runtime/tooling/text_stream.h"

namespace mm::rt::server {

namespace {

int report(const Error& e, std::ostream& err) {
  err << "error: " << e.message << "\n";
  return e.exit_code();
}

// --kv-cache-dtype against the plan's: the KV layout is compiled into the plan.
Status check_kv_dtype(const std::string& flag, const mm_plan_info& plan) {
  if (flag == "auto") return Status::success();
  const std::string want = (flag == "fp8" || flag == "fp8_e4m3") ? "fp8" : "bf16";
  if (want == plan.kv_cache_dtype) return Status::success();
  return Error::bad_input("--kv-cache-dtype " + flag + ": the plan " + std::string(plan.path) + " stores the KV cache as " +
                          plan.kv_cache_dtype + "; compile a plan for it with `mmc compile MODEL_DIR -o PLAN --kv-cache-dtype " +
                          want + "` (or leave --kv-cache-dtype out)");
}

// Sampling defaults from generation_config.json (vLLM's --generation-config auto): temperature,
// top_p, top_k of the model; OpenAI's defaults (1, 1, all) otherwise.
Status load_generation_defaults(const std::string& setting, const std::string& model_dir, ServerConfig* c,
                                std::ostream& err) {
  if (setting == "vllm") return Status::success();
  const std::string dir = setting == "auto" ? model_dir : setting;
  if (dir.empty()) return Status::success();
  const std::string path = join_path(dir, "generation_config.json");
  std::ifstream f(path);
  if (!f) {
    if (setting != "auto") return Error::bad_input("--generation-config " + setting + ": " + path + " cannot be opened");
    return Status::success();
  }
  std::stringstream text;
  text << f.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::bad_input(path + ": not a JSON object");
  std::string used;
  if (j.contains("temperature") && j["temperature"].is_number()) {
    c->default_temperature = j["temperature"].get<float>();
    used += " temperature " + j["temperature"].dump();
  }
  if (j.contains("top_p") && j["top_p"].is_number()) {
    c->default_top_p = j["top_p"].get<float>();
    used += " top_p " + j["top_p"].dump();
  }
  if (j.contains("top_k") && j["top_k"].is_number_integer()) {
    c->default_top_k = std::max(0, j["top_k"].get<int32_t>());
    used += " top_k " + j["top_k"].dump();
  }
  if (!used.empty()) err << "sampling defaults from " << path << ":" << used << "\n";
  return Status::success();
}

int32_t token_or_none(const text::Tokenizer& tok, const char* text) {
  auto id = tok.token_id(text);
  return id ? *id : -1;
}

}  // namespace

int serve_command(ServeOptions o, const std::vector<std::string>& notices, std::ostream& err) {
  for (const auto& n : notices) err << n << "\n";
  if (std::string problem = check_serve_options(o); !problem.empty()) return report(Error::usage(problem), err);

  // Signals are taken by one thread (sigtimedwait below); every thread started from here on, the
  // backend's included, inherits the blocked mask. It stays blocked when this returns: the process
  // is about to exit, and a signal that arrives meanwhile must not turn exit 0 into death by SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto plan = ApiPlan::load(o.plan);
  if (!plan) return report(plan.error(), err);
  const mm_plan_info& info = plan->info();
  if (Status st = check_kv_dtype(o.kv_cache_dtype, info); !st) return report(st.error(), err);
  if (o.max_model_len > info.max_seq_len)
    return report(Error::bad_input("--max-model-len " + std::to_string(o.max_model_len) + " exceeds the plan's limit " +
                                   std::to_string(info.max_seq_len) + " (recompile with mmc compile --max-seq-len)"),
                  err);
  if (o.max_num_seqs > info.max_batch)
    return report(Error::bad_input("--max-num-seqs " + std::to_string(o.max_num_seqs) + " exceeds the plan's max batch " +
                                   std::to_string(info.max_batch) + " (recompile with mmc compile --max-batch)"),
                  err);
  const int64_t max_model_len = o.max_model_len > 0 ? o.max_model_len : info.max_seq_len;

  auto text = load_model_text(info, o.weights, o.tokenizer_dir, true, err);
  if (!text) return report(text.error(), err);

  ServerConfig config;
  config.model_names = o.served_model_names;
  config.max_model_len = max_model_len;
  config.vocab_size = info.vocab_size;
  config.reasoning = o.reasoning_parser == "minimax_m2"                ? ReasoningMode::Split
                     : o.reasoning_parser == "minimax_m2_append_think" ? ReasoningMode::AppendThink
                                                                       : ReasoningMode::None;
  config.tool_parser = o.tool_call_parser == "minimax_m2";
  config.auto_tool_choice = o.enable_auto_tool_choice;
  config.think_start_id = token_or_none(text->tokenizer, "<think>");
  config.think_end_id = token_or_none(text->tokenizer, "</think>");
  if (Status st = load_generation_defaults(o.generation_config, text->dir, &config, err); !st) return report(st.error(), err);

  // --max-num-seqs left out: the plan's max batch, halved while the KV cache of that many
  // full-length sequences does not fit on the device (the check comes before any allocation).
  int64_t max_num_seqs = o.max_num_seqs > 0 ? o.max_num_seqs : info.max_batch;
  mm_session_options so{};
  so.weights = o.weights.c_str();
  so.device = o.device.empty() ? nullptr : o.device.c_str();
  so.max_seq_len = max_model_len;
  so.seed = o.seed;
  so.threads = o.threads;
  so.progress = ::isatty(2) != 0;
  so.gpu_memory_utilization = o.gpu_memory_utilization;
  Expected<std::unique_ptr<ApiSession>> session = Error::internal("no session");
  for (;;) {
    so.max_seqs = static_cast<int32_t>(max_num_seqs);
    session = ApiSession::open(*plan, so);
    const bool out_of_memory = !session && session.error().message.rfind("out of device memory", 0) == 0;
    if (session || !out_of_memory || o.max_num_seqs > 0 || max_num_seqs == 1) break;
    err << "note: the KV cache of " << max_num_seqs << " sequences x " << max_model_len
        << " tokens does not fit; trying " << max_num_seqs / 2 << " (--max-num-seqs sets it)\n";
    max_num_seqs /= 2;
  }
  if (!session) {
    Error e = session.error();
    e.message += " (--max-num-seqs " + std::to_string(max_num_seqs) + " x --max-model-len " +
                 std::to_string(max_model_len) + " tokens of KV cache; lower either to need less memory)";
    return report(e, err);
  }
  const mm_session_info sinfo = (*session)->info();

  SchedulerOptions sopt;
  sopt.max_num_seqs = static_cast<int32_t>(max_num_seqs);
  sopt.max_model_len = max_model_len;
  sopt.max_batched_tokens = o.max_num_batched_tokens;
  sopt.max_queue = o.max_queued_requests;
  sopt.prefix_caching = o.enable_prefix_caching;
  sopt.eos_ids = eos_ids_of(plan->eos_ids(), &text->tokenizer);
  sopt.think_end_id = config.think_end_id;
  sopt.log = &err;
  Metrics metrics(config.model_names.front());
  Scheduler scheduler(**session, text->tokenizer, sopt, &metrics);

  HttpOptions hopt;
  hopt.api_key = o.api_key;
  hopt.max_request_bytes = o.max_request_bytes;
  hopt.threads = static_cast<int>(max_num_seqs + o.max_queued_requests + 16);
  hopt.model_root = o.weights == "random" ? o.plan : o.weights;
  HttpServer http(config, hopt, text->tokenizer, scheduler, metrics);
  if (Status st = http.bind(o.host, o.port); !st) return report(st.error(), err);

  scheduler.start();
  err << "mmrun serve: " << sinfo.backend << ", weights " << o.weights << ", " << max_num_seqs << " sequences x "
      << max_model_len << " tokens, KV " << info.kv_cache_dtype << " (" << sinfo.kv_blocks_total << " blocks of "
      << sinfo.kv_block_size << ")\n";
  if (*sinfo.details) err << sinfo.details << "\n";
  err << "serving model '" << config.model_names.front() << "' on http://" << o.host << ":" << http.port() << "\n";
  err.flush();

  // The signal thread: the first SIGTERM/SIGINT drains, a second one cancels what is left.
  std::atomic<bool> listener_done{false};
  std::thread waiter([&] {
    int seen = 0;
    for (;;) {
      timespec timeout{0, 100 * 1000 * 1000};
      const int sig = sigtimedwait(&signals, nullptr, &timeout);
      if (listener_done.load()) break;
      if (sig > 0) {
        ++seen;
        if (seen == 1) {
          const EngineGauges g = scheduler.gauges();
          err << "mmrun serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": finishing " << g.running + g.waiting
              << " request(s), taking no new ones (signal again to cancel them)\n";
          err.flush();
          http.begin_drain();
          scheduler.begin_drain();
        } else {
          err << "mmrun serve: cancelling the remaining requests\n";
          err.flush();
          scheduler.stop();
        }
      }
      if (seen > 0 && (scheduler.wait_idle(std::chrono::milliseconds(0)) || seen > 1) && http.in_flight() == 0) break;
    }
    http.stop();
  });
  const bool listened = http.listen();
  listener_done.store(true);
  waiter.join();
  scheduler.stop();
  if (!listened) return report(Error::internal("the HTTP listener on " + o.host + ":" + std::to_string(http.port()) + " failed"), err);
  err << "mmrun serve: stopped\n";
  return 0;
}

}  // namespace mm::rt::server
