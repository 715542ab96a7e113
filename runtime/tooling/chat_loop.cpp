#include "runtime/tooling/chat_loop.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "runtime/chat/chat_template.h"
#include "runtime/tooling/npy.h"
#include "runtime/tooling/text_assets.h"
#include "runtime/tooling/text_session.h"
#include "support/file_util.h"
#include "support/json_util.h"

namespace mm::rt {

namespace {

using nlohmann::ordered_json;

constexpr const char* kDim = "\x1b[2m";
constexpr const char* kCyan = "\x1b[36m";
constexpr const char* kReset = "\x1b[0m";

int report(const Error& e, std::ostream& err) {
  err << "error: " << e.message << "\n";
  return e.exit_code();
}

bool colour_for(int fd) { return ::isatty(fd) != 0 && std::getenv("NO_COLOR") == nullptr; }

// What the text commands need besides the backend: the tokenizer, the tools list.
struct TextAssets {
  text::Tokenizer tokenizer;
  ordered_json tools;  // null or an array
  std::string tokenizer_path;
};

// The tokenizer and template check of text_assets.h, plus --tools.
Expected<TextAssets> load_text_assets(const mm_plan_info& plan, const GenerateOptions& o, bool chat, std::ostream& err) {
  auto text = load_model_text(plan, o.weights, o.tokenizer_dir, chat, err);
  if (!text) return text.error();
  TextAssets a{std::move(text->tokenizer), ordered_json(nullptr), text->tokenizer_path};
  if (!o.tools_file.empty()) {
    auto tools_text = read_regular_file(o.tools_file, "--tools", kMaxToolsFileBytes);
    if (!tools_text) return tools_text.error();
    // Strict: duplicate keys and nesting deeper than kMaxJsonDepth are refused here, before the
    // renderer and the tool-call parser walk the schemas.
    auto tools = parse_ordered_json_strict(*tools_text, "--tools " + o.tools_file);
    if (!tools) return tools.error();
    a.tools = std::move(*tools);
    if (!a.tools.is_array())
      return Error::bad_input("--tools " + o.tools_file +
                              ": expected a JSON array of OpenAI tools ([{\"type\": \"function\", \"function\": {...}}]), found " +
                              json_type_name(a.tools));
  }
  return a;
}

ordered_json tool_call_json(const text::ToolCall& c) {
  ordered_json j;
  j["id"] = c.id;
  j["type"] = "function";
  j["function"] = {{"name", c.name}, {"arguments", c.arguments}};
  return j;
}

// SIGINT while chatting: the handler only raises a flag, which the generation loop (between
// tokens) and the line reader (read() interrupted) look at.
std::atomic<bool> g_interrupted{false};

void on_sigint(int) { g_interrupted.store(true); }

// While reading a line, read() must return EINTR on Ctrl-C (no SA_RESTART); while generating,
// interrupted writes to the terminal must be restarted instead, or stdout would fail mid-answer.
void set_sigint(bool restart, struct sigaction* previous) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGINT, &sa, previous);
}

class LineReader {
 public:
  enum class Result { Line, Eof, Interrupted };
  explicit LineReader(int fd) : fd_(fd) {}
  Result next(std::string* line) {
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return Result::Line;
      }
      // A Ctrl-C that lands after the prompt is printed but before read() blocks would not
      // interrupt the read: check the flag, and wait in short polls so it is seen either way.
      if (g_interrupted.load()) {
        buf_.clear();  // the terminal dropped the line being typed, so do we
        return Result::Interrupted;
      }
      struct pollfd pfd {fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, 100);
      if (ready == 0 || (ready < 0 && errno == EINTR)) continue;
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (buf_.empty()) return Result::Eof;
        *line = std::move(buf_);
        buf_.clear();
        return Result::Line;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

void print_stats(const TextGenResult& r, std::ostream& err) {
  char line[256];
  std::snprintf(line, sizeof line,
                "[%zu tokens, %s; prompt %lld tokens (%lld reused from the KV cache), prefill %.3f s, "
                "decode %.2f tok/s]\n",
                r.ids.size(), finish_reason_name(r.reason), static_cast<long long>(r.prompt_tokens),
                static_cast<long long>(r.reused_tokens), r.prefill_s,
                r.decode_s > 0 ? r.decoded / r.decode_s : 0.0);
  err << line;
}

}  // namespace

ReplyPrinter::ReplyPrinter(std::ostream& out, bool chat, bool colour, const ordered_json& tools,
                           text::ToolCallIdGenerator& ids)
    : out_(out), chat_(chat), colour_(colour), tools_(tools, ids) {}

void ReplyPrinter::put(std::string_view text) {
  if (text.empty()) return;
  out_ << text;
  at_line_start_ = text.back() == '\n';
}

void ReplyPrinter::enter(Section s) {
  if (section_ == s) return;
  if (colour_) {
    if (section_ == Section::Reasoning) out_ << kReset;
    if (s == Section::Answer && !at_line_start_) put("\n");
    if (s == Section::Reasoning) out_ << kDim;
  } else {
    if (!at_line_start_) put("\n");
    put(s == Section::Reasoning ? "[reasoning]\n" : "[answer]\n");
  }
  section_ = s;
}

void ReplyPrinter::show(const text::ReasoningDelta& d) {
  if (!d.reasoning.empty()) {
    reasoning_text_ += d.reasoning;
    enter(Section::Reasoning);
    put(d.reasoning);
  }
  if (!d.content.empty()) show_answer(tools_.feed(d.content));
}

void ReplyPrinter::show_answer(const text::ToolStreamDelta& d) {
  if (!d.content.empty()) {
    answer_text_ += d.content;
    std::string_view shown = d.content;
    // The answer usually opens with the blank line that follows "</think>"; on screen the
    // section change already separates it.
    if (!answer_shown_) shown.remove_prefix(std::min(shown.size(), shown.find_first_not_of('\n')));
    if (!shown.empty()) {
      enter(Section::Answer);
      put(shown);
      answer_shown_ = true;
    }
  }
  const auto& calls = tools_.tool_calls();
  for (; calls_shown_ < calls.size(); ++calls_shown_) {
    enter(Section::Answer);
    if (!at_line_start_) put("\n");
    if (colour_) out_ << kCyan << "[tool_call]" << kReset << " ";
    else put("[tool_call] ");
    put(tool_call_json(calls[calls_shown_]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    put("\n");
  }
}

void ReplyPrinter::feed(std::string_view text) {
  if (!chat_) {
    put(text);
  } else {
    show(reasoning_.feed(text));
  }
  out_.flush();
}

void ReplyPrinter::finish() {
  if (finished_) return;
  finished_ = true;
  if (chat_) {
    show(reasoning_.finish());
    show_answer(tools_.finish());
    if (colour_ && section_ == Section::Reasoning) out_ << kReset;
  }
  if (!at_line_start_) put("\n");
  out_.flush();
}

ordered_json ReplyPrinter::assistant_message() const {
  ordered_json m;
  m["role"] = "assistant";
  m["content"] = answer_text_;
  m["reasoning_content"] = reasoning_text_;
  if (!tools_.tool_calls().empty()) {
    m["tool_calls"] = ordered_json::array();
    for (const auto& c : tools_.tool_calls()) m["tool_calls"].push_back(tool_call_json(c));
  }
  return m;
}


// The engine of one model: the plan's EOS ids plus the tokenizer's end-of-message token.
static TextEngine make_engine(const ApiPlan& plan, std::unique_ptr<ApiSession> session,
                              text::Tokenizer tokenizer) {
  std::vector<int32_t> eos = eos_ids_of(plan.eos_ids(), &tokenizer);
  return TextEngine(std::move(session), std::move(tokenizer), std::move(eos));
}

// Sampling, length and stop settings shared by `generate --prompt` and `chat`.
static TextGenParams gen_params(const GenerateOptions& o) {
  TextGenParams params;
  params.sampling = mm_sampling{o.temperature, o.top_k, o.top_p, o.seed};
  params.max_new_tokens = o.max_new_tokens;
  params.ignore_eos = o.ignore_eos;
  params.stop = o.stop;
  return params;
}

int text_generate_command(const GenerateOptions& o, std::ostream& out, std::ostream& err) {
  if (Status st = check_generate_options(o, /*chat=*/false); !st) return report(st.error(), err);
  if (o.weights.empty()) return report(Error::usage("--weights DIR|random is required"), err);
  if (!o.force_ids.empty())
    return report(Error::usage("--force-ids (teacher forcing) works on ids: use --prompt-ids with it"), err);
  if (o.prompt_text->empty()) return report(Error::bad_input("--prompt is empty"), err);
  if (!o.dump_logits.empty())
    if (Status st = check_writable(o.dump_logits); !st)
      return report(Error::bad_input("--dump-logits " + st.error().message), err);

  auto plan = ApiPlan::load(o.plan);
  if (!plan) return report(plan.error(), err);
  auto assets = load_text_assets(plan->info(), o, o.chat, err);
  if (!assets) return report(assets.error(), err);

  std::string prompt = *o.prompt_text;
  if (o.chat) {
    ordered_json messages = ordered_json::array();
    if (o.system) messages.push_back({{"role", "system"}, {"content", *o.system}});
    messages.push_back({{"role", "user"}, {"content", *o.prompt_text}});
    auto rendered = text::render_minimax_m2_chat(messages, assets->tools);
    if (!rendered) return report(rendered.error(), err);
    prompt = std::move(*rendered);
  }
  // Raw completion: the text as typed, no BOS (spec 5.1); special tokens in it are recognized,
  // as tokenizers' encode does.
  auto encoded = assets->tokenizer.encode(prompt, true);
  if (!encoded) return report(encoded.error(), err);
  const std::vector<int32_t> ids = std::move(*encoded);
  const int64_t prompt_len = static_cast<int64_t>(ids.size());
  if (prompt_len == 0) return report(Error::bad_input("--prompt encodes to no tokens"), err);

  auto resolved = resolve_max_seq_len(plan->info(), o.max_seq_len, prompt_len, o.max_new_tokens);
  if (!resolved) return report(resolved.error(), err);
  const int64_t max_seq_len = *resolved;

  auto opened = open_model(*plan, o, max_seq_len);
  if (!opened) return report(opened.error(), err);
  const mm_session_info sinfo = (*opened)->info();
  const std::string backend = sinfo.backend, details = sinfo.details;
  TextEngine engine = make_engine(*plan, std::move(*opened), std::move(assets->tokenizer));
  TextGenParams params = gen_params(o);
  params.keep_logits = !o.dump_logits.empty();

  text::ToolCallIdGenerator call_ids(o.seed);
  ReplyPrinter printer(out, o.chat, colour_for(1), assets->tools, call_ids);
  auto r = engine.generate(ids, params, [&](std::string_view t) { printer.feed(t); });
  printer.finish();
  if (!r) return report(r.error(), err);
  if (o.print_ids) {
    out << "[";
    for (size_t i = 0; i < r->ids.size(); ++i) out << (i ? ", " : "") << r->ids[i];
    out << "]\n";
  }
  out.flush();
  if (params.keep_logits)
    if (Status st = write_npy_f32(o.dump_logits, r->logits.data(), static_cast<int64_t>(r->ids.size()),
                                  plan->info().vocab_size);
        !st)
      return report(st.error(), err);
  if (r->context_full)
    err << "note: generation stopped at the maximum sequence length " << engine.max_seq_len() << "\n";
  char line[320];
  std::snprintf(line, sizeof line,
                "backend %s: weights %.1f MiB, load %.2f s; prefill %lld tokens %.3f s (%.1f tok/s); "
                "decode %lld tokens %.3f s (%.2f tok/s); finish: %s\n",
                backend.c_str(), sinfo.weight_bytes / 1048576.0, sinfo.load_seconds,
                static_cast<long long>(prompt_len), r->prefill_s, r->prefill_s > 0 ? prompt_len / r->prefill_s : 0.0,
                static_cast<long long>(r->decoded), r->decode_s, r->decode_s > 0 ? r->decoded / r->decode_s : 0.0,
                finish_reason_name(r->reason));
  err << line;
  if (!details.empty()) err << details << "\n";
  return 0;
}

int chat_command(const GenerateOptions& o, int in_fd, std::ostream& out, std::ostream& err) {
  if (Status st = check_generate_options(o, /*chat=*/true); !st) return report(st.error(), err);
  if (o.weights.empty()) return report(Error::usage("--weights DIR|random is required"), err);
  auto plan = ApiPlan::load(o.plan);
  if (!plan) return report(plan.error(), err);
  if (o.max_seq_len > plan->info().max_seq_len)
    return report(Error::bad_input("--max-seq-len " + std::to_string(o.max_seq_len) + " exceeds the plan's limit " +
                                   std::to_string(plan->info().max_seq_len)),
                  err);
  auto assets = load_text_assets(plan->info(), o, true, err);
  if (!assets) return report(assets.error(), err);
  auto opened = open_model(*plan, o, o.max_seq_len);
  if (!opened) return report(opened.error(), err);
  const mm_session_info sinfo = (*opened)->info();
  const std::string backend = sinfo.backend, details = sinfo.details;
  TextEngine engine = make_engine(*plan, std::move(*opened), std::move(assets->tokenizer));
  TextGenParams params = gen_params(o);

  const bool interactive = ::isatty(in_fd) != 0;
  const bool colour = colour_for(1);
  err << "mmrun chat: " << backend << ", context " << engine.max_seq_len()
      << " tokens. /reset clears the conversation, /exit quits, Ctrl-C stops an answer.\n";
  if (!details.empty()) err << details << "\n";

  ordered_json messages = ordered_json::array();
  auto start_conversation = [&] {
    messages = ordered_json::array();
    if (o.system) messages.push_back({{"role", "system"}, {"content", *o.system}});
  };
  start_conversation();
  text::ToolCallIdGenerator call_ids;

  struct sigaction previous {};
  set_sigint(false, &previous);
  g_interrupted.store(false);
  LineReader reader(in_fd);
  int interrupts_at_prompt = 0;
  int rc = 0;
  for (;;) {
    // Read one message; a line ending in a backslash continues on the next line.
    set_sigint(false, nullptr);
    std::string message, line;
    bool more = true, interrupted = false, eof = false;
    bool first = true;
    while (more) {
      if (interactive) {
        out << (first ? ">>> " : "... ");
        out.flush();
      }
      first = false;
      const auto res = reader.next(&line);
      if (res == LineReader::Result::Interrupted) {
        interrupted = true;
        break;
      }
      if (res == LineReader::Result::Eof) {
        eof = true;
        break;
      }
      more = !line.empty() && line.back() == '\\';
      if (more) line.pop_back();
      message += line;
      if (more) message += "\n";
    }
    if (interrupted) {
      g_interrupted.store(false);
      if (++interrupts_at_prompt >= 2) {
        out << "\n";
        break;
      }
      out << "\n(Ctrl-C again or /exit to quit)\n";
      continue;
    }
    if (eof && message.empty()) {
      if (interactive) out << "\n";
      break;
    }
    interrupts_at_prompt = 0;
    const std::string command = trim(message);
    if (command.empty()) {
      if (eof) break;
      continue;
    }
    if (command == "/exit" || command == "/quit") break;
    if (command == "/reset") {
      start_conversation();
      if (Status st = engine.reset(); !st) {
        rc = report(st.error(), err);
        break;
      }
      out << "(conversation cleared)\n";
      out.flush();
      continue;
    }
    if (command == "/help") {
      out << "/reset clears the conversation and the KV cache; /exit (or Ctrl-D) quits; a line ending in "
             "\\ continues the message; Ctrl-C stops an answer, twice at the prompt quits.\n";
      continue;
    }

    messages.push_back({{"role", "user"}, {"content", message}});
    auto rendered = text::render_minimax_m2_chat(messages, assets->tools);
    if (!rendered) {
      messages.erase(messages.end() - 1);
      report(rendered.error(), err);
      continue;
    }
    auto encoded = engine.tokenizer().encode(*rendered, true);
    if (!encoded) {
      messages.erase(messages.end() - 1);
      report(encoded.error(), err);
      continue;
    }
    const std::vector<int32_t> ids = std::move(*encoded);

    set_sigint(true, nullptr);
    g_interrupted.store(false);
    ReplyPrinter printer(out, true, colour, assets->tools, call_ids);
    auto r = engine.generate(ids, params, [&](std::string_view t) { printer.feed(t); }, &g_interrupted);
    printer.finish();
    if (!r) {
      messages.erase(messages.end() - 1);
      report(r.error(), err);
      if (r.error().kind == ErrorKind::Internal) {
        rc = r.error().exit_code();
        break;
      }
      err << "(the message was not added; /reset starts a new conversation)\n";
      continue;
    }
    // The (possibly interrupted) answer joins the history as generated.
    messages.push_back(printer.assistant_message());
    if (r->reason == FinishReason::Cancelled) out << (colour ? kDim : "") << "[interrupted]" << (colour ? kReset : "") << "\n";
    if (r->context_full) out << "[the conversation reached the maximum sequence length " << engine.max_seq_len()
                             << " tokens; /reset to start a new one]\n";
    out.flush();
    if (o.verbose) print_stats(*r, err);
    g_interrupted.store(false);
    if (eof) break;
  }
  sigaction(SIGINT, &previous, nullptr);
  out.flush();
  return rc;
}

}  // namespace mm::rt
