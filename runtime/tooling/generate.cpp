#include "runtime/tooling/generate.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <chrono>
#include <cstdio>

#include "runtime/tooling/chat_loop.h"
#include "runtime/tooling/int_list.h"
#include "runtime/tooling/npy.h"

namespace mm::rt {

namespace {

int report(const Error& e, std::ostream& err) {
  err << "error: " << e.message << "\n";
  return e.exit_code();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

bool parse_id_list(const std::string& text, std::vector<int32_t>* ids, std::string* error) {
  std::vector<int64_t> v;
  if (!parse_int_list(text, INT32_MIN, INT32_MAX, "an integer id", &v, error)) return false;
  ids->assign(v.begin(), v.end());
  return true;
}

Expected<std::unique_ptr<ApiSession>> open_model(const ApiPlan& plan, const GenerateOptions& o,
                                                 int64_t max_seq_len, int64_t max_seqs) {
  mm_session_options so{};
  so.weights = o.weights.c_str();
  so.device = o.device.empty() ? nullptr : o.device.c_str();
  so.max_seq_len = max_seq_len;
  so.max_seqs = static_cast<int32_t>(max_seqs);
  so.seed = o.seed;
  so.threads = o.threads;
  so.progress = ::isatty(2) != 0;
  return ApiSession::open(plan, so);
}

Status check_generate_options(const GenerateOptions& o, bool chat) {
  auto outside = [](const std::string& flag, const std::string& value, const std::string& range) {
    return Error::usage(flag + " " + value + " is outside " + range);
  };
  const int64_t min_new = chat ? 1 : 0;
  if (o.max_new_tokens < min_new || o.max_new_tokens > kMaxTokensFlag)
    return outside("--max-new-tokens", std::to_string(o.max_new_tokens),
                   "[" + std::to_string(min_new) + ", " + std::to_string(kMaxTokensFlag) + "]");
  if (o.max_seq_len < 0 || o.max_seq_len > kMaxTokensFlag)
    return outside("--max-seq-len", std::to_string(o.max_seq_len), "[1, " + std::to_string(kMaxTokensFlag) + "]");
  if (o.threads < 0 || o.threads > MM_MAX_THREADS)
    return outside("--threads", std::to_string(o.threads),
                   "[0, " + std::to_string(MM_MAX_THREADS) + "] (0: every core)");
  // NaN compares false with everything: test for the range itself.
  if (!(o.temperature >= 0.0f && o.temperature <= kMaxTemperature))
    return outside("--temperature", std::to_string(o.temperature),
                   "[0, " + std::to_string(static_cast<int>(kMaxTemperature)) + "] (0: greedy)");
  if (!(o.top_p >= 0.0f && o.top_p <= 1.0f))
    return outside("--top-p", std::to_string(o.top_p), "[0, 1]");
  if (o.top_k < 0) return outside("--top-k", std::to_string(o.top_k), "[0, 2147483647] (0: all)");
  return Status::success();
}

Expected<int64_t> resolve_max_seq_len(const mm_plan_info& plan, int64_t requested, int64_t prompt_len,
                                      int64_t new_tokens) {
  const int64_t plan_max = plan.max_seq_len;
  if (requested < 0) return Error::usage("--max-seq-len must be positive");
  if (requested > plan_max)
    return Error::bad_input("--max-seq-len " + std::to_string(requested) + " exceeds the plan's limit " +
                            std::to_string(plan_max) + " (recompile with mmc compile --max-seq-len)");
  // prompt + new tokens, saturating: any --max-new-tokens beyond the plan's room means "up to the
  // plan's limit", never a signed overflow.
  const int64_t room = plan_max > prompt_len ? plan_max - prompt_len : 0;
  const int64_t max_seq_len =
      requested > 0 ? requested : std::min(plan_max, prompt_len + std::clamp<int64_t>(new_tokens, 1, std::max<int64_t>(room, 1)));
  if (prompt_len > max_seq_len)
    return Error::bad_input("the prompt has " + std::to_string(prompt_len) +
                            " tokens, longer than the maximum sequence length " + std::to_string(max_seq_len) +
                            (requested ? " (--max-seq-len)" : " of the plan"));
  return max_seq_len;
}

int generate_command(const GenerateOptions& o, std::ostream& out, std::ostream& err) {
  if (o.device != "" && o.device != "cuda" && o.device != "host") {
    err << "error: --device must be cuda or host, got '" << o.device << "'\n";
    return 2;
  }
  if (Status st = check_generate_options(o, /*chat=*/false); !st) return report(st.error(), err);
  if (o.prompt_text) {
    if (!o.prompt_ids.empty()) return report(Error::usage("give either --prompt or --prompt-ids, not both"), err);
    return text_generate_command(o, out, err);
  }
  if (o.chat) return report(Error::usage("--chat needs --prompt TEXT (a conversation is text)"), err);
  if (!o.stop.empty()) return report(Error::usage("--stop needs --prompt TEXT (stop strings match text)"), err);
  if (o.prompt_ids.empty()) {
    err << "error: the prompt is empty (--prompt-ids)\n";
    return 1;
  }
  if (o.max_new_tokens < 0) {
    err << "error: --max-new-tokens must be >= 0\n";
    return 2;
  }
  if (o.weights.empty()) {
    err << "error: --weights DIR|random is required\n";
    return 2;
  }
  if (!o.dump_logits.empty())
    if (Status st = check_writable(o.dump_logits); !st) return report(Error::bad_input("--dump-logits " + st.error().message), err);

  auto plan = ApiPlan::load(o.plan);
  if (!plan) return report(plan.error(), err);
  const mm_plan_info& info = plan->info();
  const int64_t vocab = info.vocab_size;
  const int64_t prompt_len = static_cast<int64_t>(o.prompt_ids.size());
  for (size_t i = 0; i < o.prompt_ids.size(); ++i)
    if (o.prompt_ids[i] < 0 || o.prompt_ids[i] >= vocab)
      return report(Error::bad_input("--prompt-ids: id " + std::to_string(o.prompt_ids[i]) +
                                     " (item " + std::to_string(i) + ") is outside the vocabulary [0, " +
                                     std::to_string(vocab) + ") of " + o.plan), err);
  for (size_t i = 0; i < o.force_ids.size(); ++i)
    if (o.force_ids[i] < 0 || o.force_ids[i] >= vocab)
      return report(Error::bad_input("--force-ids: id " + std::to_string(o.force_ids[i]) +
                                     " (item " + std::to_string(i) + ") is outside the vocabulary [0, " +
                                     std::to_string(vocab) + ")"), err);
  const int64_t steps_wanted = o.force_ids.empty() ? o.max_new_tokens : static_cast<int64_t>(o.force_ids.size());
  auto resolved = resolve_max_seq_len(info, o.max_seq_len, prompt_len, steps_wanted);
  if (!resolved) return report(resolved.error(), err);
  const int64_t max_seq_len = *resolved;
  // Generated token i (i >= 1) is fed back at position prompt_len + i - 1.
  const int64_t steps = std::min(steps_wanted, max_seq_len - prompt_len + 1);
  if (steps < steps_wanted)
    err << "note: generation stops after " << steps << " tokens at the maximum sequence length "
        << max_seq_len << "\n";

  auto opened = open_model(*plan, o, max_seq_len);
  if (!opened) return report(opened.error(), err);
  auto& session = *opened;
  const mm_session_info sinfo = session->info();
  const std::string backend = sinfo.backend, cuda_summary = sinfo.details;
  const uint64_t weight_bytes = sinfo.weight_bytes;
  const double load_s = sinfo.load_seconds;

  const mm_sampling sampling{o.temperature, o.top_k, o.top_p, o.seed};
  std::vector<int32_t> chosen, sampled_ids;
  std::vector<float> all_logits, logits;
  const bool keep_logits = !o.dump_logits.empty();
  const std::vector<int64_t> eos = plan->eos_ids();

  double prefill_s = 0, decode_s = 0;
  int64_t decoded = 0;
  int32_t next = -1;
  for (int64_t i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Status st;
    if (i == 0) {
      st = session->prefill(0, o.prompt_ids, sampling, 0, keep_logits ? &logits : nullptr, &next);
      prefill_s = seconds_since(t0);
    } else {
      std::vector<int32_t> nexts;
      const int32_t slot = 0;
      const int32_t tok = chosen.back();
      st = session->decode({&slot, 1}, {&tok, 1}, {&sampling, 1}, i, keep_logits ? &logits : nullptr, &nexts);
      if (st) next = nexts[0];
      decode_s += seconds_since(t0);
      ++decoded;
    }
    if (!st) return report(st.error(), err);
    if (keep_logits) all_logits.insert(all_logits.end(), logits.begin(), logits.begin() + vocab);
    sampled_ids.push_back(next);
    chosen.push_back(o.force_ids.empty() ? next : o.force_ids[i]);
    if (o.force_ids.empty() && !o.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
  }

  // Under teacher forcing the model's own choices are printed (the forced ids are known).
  const std::vector<int32_t>& shown = sampled_ids;
  if (o.print_ids) {
    out << "[";
    for (size_t i = 0; i < shown.size(); ++i) out << (i ? ", " : "") << shown[i];
    out << "]\n";
  } else {
    for (size_t i = 0; i < shown.size(); ++i) out << (i ? " " : "") << shown[i];
    out << "\n";
  }
  if (keep_logits) {
    const int64_t rows = static_cast<int64_t>(sampled_ids.size());
    if (Status st = write_npy_f32(o.dump_logits, all_logits.data(), rows, vocab); !st)
      return report(st.error(), err);
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "backend %s: weights %.1f MiB, load %.2f s; prefill %lld tokens %.3f s "
                "(%.1f tok/s); decode %lld tokens %.3f s (%.2f tok/s)\n",
                backend.c_str(), weight_bytes / 1048576.0, load_s,
                static_cast<long long>(prompt_len), prefill_s, prefill_s > 0 ? prompt_len / prefill_s : 0.0,
                static_cast<long long>(decoded), decode_s, decode_s > 0 ? decoded / decode_s : 0.0);
  err << line;
  if (!cuda_summary.empty()) err << cuda_summary << "\n";
  return 0;
}

}  // namespace mm::rt
