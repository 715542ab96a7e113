#include "runtime/tooling/server/openai_request.h"

#include <cmath>
#include <limits>

#include "runtime/chat/chat_template.h"

namespace mm::rt::server {

namespace {

using json = nlohmann::ordered_json;

// A short rendering of a value for messages.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// The field, or null when absent or JSON null (clients send null for "not set").
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool as_integer(const json& v, int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return false;
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {  // 16.0 is accepted as 16, as pydantic does
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

std::optional<ApiError> get_bool(const json& b, const char* key, bool* out) {
  if (const json* v = field(b, key)) {
    if (!v->is_boolean()) return bad_request(std::string("'") + key + "' must be true or false, got " + shown(*v), key);
    *out = v->get<bool>();
  }
  return std::nullopt;
}

std::optional<ApiError> get_int(const json& b, const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
  if (const json* v = field(b, key)) {
    int64_t x = 0;
    if (!as_integer(*v, &x) || x < lo || x > hi)
      return bad_request(std::string("'") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                             (hi == std::numeric_limits<int64_t>::max() ? std::string("inf") : std::to_string(hi)) +
                             "], got " + shown(*v),
                         key);
    *out = x;
  }
  return std::nullopt;
}

std::optional<ApiError> get_number(const json& b, const char* key, double lo, bool lo_open, double hi, const char* range,
                                   std::optional<double>* out) {
  if (const json* v = field(b, key)) {
    const bool ok = v->is_number() && std::isfinite(v->get<double>()) &&
                    (lo_open ? v->get<double>() > lo : v->get<double>() >= lo) && v->get<double>() <= hi;
    if (!ok) return bad_request(std::string("'") + key + "' must be a number " + range + ", got " + shown(*v), key);
    *out = v->get<double>();
  }
  return std::nullopt;
}

// A field this server knows but cannot honour: refused unless it has its neutral value.
std::optional<ApiError> refuse_unless(const json& b, const char* key, bool neutral, const std::string& why) {
  if (field(b, key) && !neutral) return bad_request(std::string("'") + key + "' is not supported by mmrun serve: " + why, key);
  return std::nullopt;
}

bool number_is(const json* v, double x) { return !v || (v->is_number() && v->get<double>() == x); }

std::string unsupported_number_message(const char* key, const char* neutral) {
  return std::string("sampling runs on the device without it; leave it out or send ") + neutral + " (" + key + ")";
}

// Fields shared by both endpoints. `max_tokens` gets the requested answer length, if any.
std::optional<ApiError> parse_common(const json& b, Endpoint ep, const ServerConfig& c, PreparedRequest* p,
                                     std::optional<int64_t>* max_tokens) {
  if (const json* m = field(b, "model")) {
    if (!m->is_string()) return bad_request("'model' must be a string, got " + shown(*m), "model");
    p->model = m->get<std::string>();
    bool known = false;
    for (const auto& name : c.model_names) known = known || name == p->model;
    if (!known) {
      ApiError e{404, "The model `" + p->model + "` does not exist.", "invalid_request_error", "model", "model_not_found"};
      return e;
    }
  } else {
    p->model = c.model_names.empty() ? std::string() : c.model_names.front();
  }

  if (const json* n = field(b, "n")) {
    int64_t x = 0;
    if (!as_integer(*n, &x) || x != 1)
      return bad_request("'n' must be 1: mmrun serve returns one choice per request (send n parallel requests instead), got " +
                             shown(*n),
                         "n");
  }
  if (const json* n = field(b, "best_of")) {
    int64_t x = 0;
    if (!as_integer(*n, &x) || x != 1)
      return bad_request("'best_of' must be 1: mmrun serve returns one choice per request, got " + shown(*n), "best_of");
  }

  if (auto e = get_bool(b, "stream", &p->stream)) return e;
  if (const json* so = field(b, "stream_options")) {
    if (!p->stream) return bad_request("'stream_options' is only allowed with 'stream': true", "stream_options");
    if (!so->is_object()) return bad_request("'stream_options' must be an object, got " + shown(*so), "stream_options");
    if (auto e = get_bool(*so, "include_usage", &p->include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }

  SamplingSettings& s = p->generation.sampling;
  std::optional<double> temperature, top_p;
  if (auto e = get_number(b, "temperature", 0, false, std::numeric_limits<double>::max(), ">= 0", &temperature)) return e;
  if (auto e = get_number(b, "top_p", 0, true, 1, "in (0, 1]", &top_p)) return e;
  std::optional<int64_t> top_k, seed_signed;
  if (auto e = get_int(b, "top_k", -1, std::numeric_limits<int32_t>::max(), &top_k)) return e;
  s.temperature = temperature ? static_cast<float>(*temperature) : c.default_temperature;
  s.top_p = top_p ? static_cast<float>(*top_p) : c.default_top_p;
  s.top_k = top_k ? static_cast<int32_t>(std::max<int64_t>(*top_k, 0)) : c.default_top_k;
  if (const json* v = field(b, "seed")) {
    if (v->is_number_unsigned()) {
      s.seed = v->get<uint64_t>();
    } else {
      int64_t x = 0;
      if (!as_integer(*v, &x)) return bad_request("'seed' must be an integer, got " + shown(*v), "seed");
      s.seed = static_cast<uint64_t>(x);
    }
  }

  // Chat: max_completion_tokens (OpenAI's current name) wins over max_tokens.
  const int64_t inf = std::numeric_limits<int64_t>::max();
  if (auto e = get_int(b, "max_tokens", 1, inf, max_tokens)) return e;
  if (ep == Endpoint::Chat) {
    std::optional<int64_t> mct;
    if (auto e = get_int(b, "max_completion_tokens", 1, inf, &mct)) return e;
    if (mct) *max_tokens = mct;
  }

  if (const json* v = field(b, "stop")) {
    std::vector<std::string>& stop = p->generation.stop;
    if (v->is_string()) {
      stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const auto& x : *v) {
        if (!x.is_string()) return bad_request("'stop' must be a string or an array of strings, got " + shown(*v), "stop");
        stop.push_back(x.get<std::string>());
      }
    } else {
      return bad_request("'stop' must be a string or an array of strings, got " + shown(*v), "stop");
    }
    for (const auto& x : stop)
      if (x.empty()) return bad_request("'stop' strings must not be empty", "stop");
  }
  if (const json* v = field(b, "stop_token_ids")) {
    if (!v->is_array()) return bad_request("'stop_token_ids' must be an array of token ids, got " + shown(*v), "stop_token_ids");
    for (const auto& x : *v) {
      int64_t id = 0;
      if (!as_integer(x, &id) || id < 0 || id >= c.vocab_size)
        return bad_request("'stop_token_ids' holds " + shown(x) + ", not a token id in [0, " +
                               std::to_string(c.vocab_size) + ")",
                           "stop_token_ids");
      p->generation.stop_token_ids.push_back(static_cast<int32_t>(id));
    }
  }
  if (auto e = get_bool(b, "ignore_eos", &p->generation.ignore_eos)) return e;
  if (auto e = get_bool(b, "skip_special_tokens", &p->generation.skip_special_tokens)) return e;
  if (auto e = get_bool(b, "return_token_ids", &p->return_token_ids)) return e;
  std::optional<int64_t> min_tokens;
  if (auto e = get_int(b, "min_tokens", 0, inf, &min_tokens)) return e;
  if (min_tokens && *min_tokens > 0 &&
      (!p->generation.ignore_eos || !p->generation.stop.empty() || !p->generation.stop_token_ids.empty()))
    return bad_request(
        "'min_tokens' > 0 needs 'ignore_eos': true and no stop strings or stop_token_ids: mmrun serve cannot "
        "keep the model from ending its answer earlier",
        "min_tokens");
  if (min_tokens && max_tokens->has_value() && *min_tokens > **max_tokens)
    return bad_request("'min_tokens' (" + std::to_string(*min_tokens) + ") exceeds the answer length limit (" +
                           std::to_string(**max_tokens) + ")",
                       "min_tokens");

  // Known, not supported.
  if (const json* v = field(b, "logprobs")) {
    const bool off = (v->is_boolean() && !v->get<bool>()) || (v->is_number_integer() && v->get<int64_t>() == 0);
    if (!off) return bad_request("'logprobs' is not supported by mmrun serve (sampling runs on the device and returns only the token)", "logprobs");
  }
  if (auto e = refuse_unless(b, "top_logprobs", number_is(field(b, "top_logprobs"), 0), "no logprobs are returned")) return e;
  if (auto e = refuse_unless(b, "prompt_logprobs", false, "no logprobs are returned")) return e;
  if (const json* v = field(b, "logit_bias"); v && !(v->is_object() && v->empty()))
    return bad_request("'logit_bias' is not supported by mmrun serve: sampling runs on the device without it", "logit_bias");
  if (auto e = refuse_unless(b, "presence_penalty", number_is(field(b, "presence_penalty"), 0),
                             unsupported_number_message("presence_penalty", "0")))
    return e;
  if (auto e = refuse_unless(b, "frequency_penalty", number_is(field(b, "frequency_penalty"), 0),
                             unsupported_number_message("frequency_penalty", "0")))
    return e;
  if (auto e = refuse_unless(b, "repetition_penalty", number_is(field(b, "repetition_penalty"), 1),
                             unsupported_number_message("repetition_penalty", "1")))
    return e;
  if (const json* v = field(b, "use_beam_search"); v && !(v->is_boolean() && !v->get<bool>()))
    return bad_request("'use_beam_search' is not supported by mmrun serve", "use_beam_search");
  if (const json* v = field(b, "response_format")) {
    const json* type = v->is_object() ? field(*v, "type") : nullptr;
    if (!(type && type->is_string() && type->get<std::string>() == "text"))
      return bad_request("'response_format' other than {\"type\": \"text\"} is not supported by mmrun serve (no "
                         "constrained decoding)",
                         "response_format");
  }
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs"})
    if (field(b, key))
      return bad_request(std::string("'") + key + "' is not supported by mmrun serve (no constrained decoding)", key);
  return std::nullopt;
}

std::optional<ApiError> check_length(const ServerConfig& c, int64_t prompt_len, std::optional<int64_t> max_tokens,
                                     int64_t default_max, const char* what, GenerationRequest* g) {
  if (prompt_len == 0) return bad_request("the prompt is empty (it encodes to no tokens)", what);
  const int64_t n = c.max_model_len;
  if (prompt_len >= n) {
    ApiError e = bad_request("This model's maximum context length is " + std::to_string(n) +
                                 " tokens. However, your request has " + std::to_string(prompt_len) +
                                 " input tokens. Please reduce the length of the input " + what + ".",
                             what);
    e.code = "context_length_exceeded";
    return e;
  }
  if (max_tokens && *max_tokens > n - prompt_len) {
    ApiError e = bad_request("This model's maximum context length is " + std::to_string(n) +
                                 " tokens. However, you requested " + std::to_string(prompt_len + *max_tokens) +
                                 " tokens (" + std::to_string(prompt_len) + " in the " + what + ", " +
                                 std::to_string(*max_tokens) + " in the completion). Please reduce the length of the " +
                                 what + " or completion.",
                             "max_tokens");
    e.code = "context_length_exceeded";
    return e;
  }
  g->max_tokens = max_tokens ? *max_tokens : std::min(default_max, n - prompt_len);
  return std::nullopt;
}

std::optional<ApiError> parse_body(const std::string& body, json* out) {
  *out = json::parse(body, nullptr, false);
  if (out->is_discarded()) return bad_request("the request body is not valid JSON");
  if (!out->is_object()) return bad_request("the request body must be a JSON object");
  return std::nullopt;
}

// tools: null or [{type: "function", function: {name, description?, parameters?}}, ...].
std::optional<ApiError> check_tools(const json& tools) {
  if (!tools.is_array()) return bad_request("'tools' must be an array, got " + shown(tools), "tools");
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) return bad_request("'" + where + "' must be an object", where);
    const json* type = field(t, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "function")
      return bad_request("'" + where + ".type' must be \"function\"", where + ".type");
    const json* f = field(t, "function");
    if (!f || !f->is_object()) return bad_request("'" + where + ".function' must be an object", where + ".function");
    const json* name = field(*f, "name");
    if (!name || !name->is_string() || name->get<std::string>().empty())
      return bad_request("'" + where + ".function.name' must be a non-empty string", where + ".function.name");
    if (const json* params = field(*f, "parameters"); params && !params->is_object())
      return bad_request("'" + where + ".function.parameters' must be a JSON schema object", where + ".function.parameters");
  }
  return std::nullopt;
}

bool tool_exists(const json& tools, const std::string& name) {
  for (const auto& t : tools)
    if (t["function"]["name"].get<std::string>() == name) return true;
  return false;
}

}  // namespace

ApiError bad_request(std::string message, std::string param) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

std::string error_body(const ApiError& e) {
  json err;
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  json body;
  body["error"] = std::move(err);
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool reasoning_open_after(std::span<const int32_t> prompt, int32_t think_start_id, int32_t think_end_id) {
  for (size_t i = prompt.size(); i > 0; --i) {
    if (prompt[i - 1] == think_start_id) return true;
    if (prompt[i - 1] == think_end_id) return false;
  }
  return false;
}

std::optional<ApiError> prepare_chat(const std::string& body_text, const ServerConfig& c, const text::Tokenizer& tok,
                                     PreparedRequest* p) {
  json b;
  if (auto e = parse_body(body_text, &b)) return e;
  p->endpoint = Endpoint::Chat;
  std::optional<int64_t> max_tokens;
  if (auto e = parse_common(b, Endpoint::Chat, c, p, &max_tokens)) return e;

  const json* messages = field(b, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    return bad_request("'messages' must be a non-empty array of messages", "messages");
  for (size_t i = 0; i < messages->size(); ++i)
    if (!(*messages)[i].is_object())
      return bad_request("'messages[" + std::to_string(i) + "]' must be an object", "messages");

  json tools = json(nullptr);
  if (const json* t = field(b, "tools")) {
    if (auto e = check_tools(*t)) return e;
    if (!t->empty()) tools = *t;
  }
  // tool_choice: absent means "auto" with tools and "none" without, as in OpenAI's API.
  enum class Choice { None, Auto, Required, Named } choice = tools.is_null() ? Choice::None : Choice::Auto;
  std::string named;
  if (const json* tc = field(b, "tool_choice")) {
    if (tc->is_string()) {
      const std::string v = tc->get<std::string>();
      if (v == "none") choice = Choice::None;
      else if (v == "auto") choice = Choice::Auto;
      else if (v == "required") choice = Choice::Required;
      else return bad_request("'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}, got " + shown(*tc), "tool_choice");
    } else if (tc->is_object()) {
      const json* f = field(*tc, "function");
      const json* name = f && f->is_object() ? field(*f, "name") : nullptr;
      if (!name || !name->is_string())
        return bad_request("'tool_choice' names a function as {\"type\": \"function\", \"function\": {\"name\": ...}}, got " + shown(*tc), "tool_choice");
      choice = Choice::Named;
      named = name->get<std::string>();
    } else {
      return bad_request("'tool_choice' must be a string or an object, got " + shown(*tc), "tool_choice");
    }
    if ((choice == Choice::Required || choice == Choice::Named) && tools.is_null())
      return bad_request("'tool_choice' " + shown(*tc) + " needs 'tools'", "tool_choice");
    if (choice == Choice::Named && !tool_exists(tools, named))
      return bad_request("'tool_choice' names the function '" + named + "', which is not in 'tools'", "tool_choice");
  }
  if (choice == Choice::Auto && !tools.is_null() && !(c.auto_tool_choice && c.tool_parser))
    return bad_request("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                       "tool_choice");

  bool add_generation_prompt = true, continue_final = false;
  if (auto e = get_bool(b, "add_generation_prompt", &add_generation_prompt)) return e;
  if (auto e = get_bool(b, "continue_final_message", &continue_final)) return e;
  if (continue_final && add_generation_prompt && field(b, "add_generation_prompt"))
    return bad_request("'continue_final_message' and 'add_generation_prompt' cannot both be true", "continue_final_message");
  if (continue_final) add_generation_prompt = false;

  text::ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  auto rendered = text::render_minimax_m2_chat(*messages, tools, options);
  if (!rendered) return bad_request(rendered.error().message, "messages");
  std::string prompt = std::move(*rendered);
  if (continue_final) {
    // The last assistant message stays open: its end-of-message marker is cut off, as vLLM cuts
    // the rendered prompt after the final message's content.
    const json& last = messages->back();
    const json* role = field(last, "role");
    constexpr std::string_view kEnd = "[e~[\n";
    if (!role || !role->is_string() || role->get<std::string>() != "assistant" || prompt.size() < kEnd.size() ||
        prompt.compare(prompt.size() - kEnd.size(), kEnd.size(), kEnd) != 0)
      return bad_request("'continue_final_message' needs the last message to be from the assistant", "messages");
    prompt.resize(prompt.size() - kEnd.size());
  }
  GenerationRequest& g = p->generation;
  // A tokenizer regex that gives up (PCRE2 limits) is the request's text, not the server's fault.
  auto ids = tok.encode(prompt, true);
  if (!ids) return bad_request(ids.error().message, "messages");
  g.prompt = std::move(*ids);
  if (auto e = check_length(c, static_cast<int64_t>(g.prompt.size()), max_tokens, c.max_model_len, "messages", &g)) return e;

  p->reasoning = c.reasoning;
  p->reasoning_open = reasoning_open_after(g.prompt, c.think_start_id, c.think_end_id);
  g.reasoning_open = p->reasoning_open;
  p->tools = tools;
  p->parse_tools = !tools.is_null() && choice != Choice::None;
  if (choice == Choice::Required || choice == Choice::Named) {
    // The opening of the call as the model writes it after "</think>" (minimax-m2-spec.md 5.2 c);
    // for "required" the model names the function itself.
    std::string forced = p->reasoning_open ? "\n\n" : "";
    forced += "<minimax:tool_call>\n<invoke name=\"";
    if (choice == Choice::Named) forced += named + "\">\n";
    auto forced_ids = tok.encode(forced, true);
    if (!forced_ids) return bad_request(forced_ids.error().message, "tool_choice");
    g.forced = std::move(*forced_ids);
  }
  return std::nullopt;
}

std::optional<ApiError> prepare_completion(const std::string& body_text, const ServerConfig& c,
                                           const text::Tokenizer& tok, PreparedRequest* p) {
  json b;
  if (auto e = parse_body(body_text, &b)) return e;
  p->endpoint = Endpoint::Completion;
  std::optional<int64_t> max_tokens;
  if (auto e = parse_common(b, Endpoint::Completion, c, p, &max_tokens)) return e;
  if (const json* v = field(b, "suffix"); v && !(v->is_string() && v->get<std::string>().empty()))
    return bad_request("'suffix' is not supported by mmrun serve (no fill-in-the-middle)", "suffix");
  bool echo = false;
  if (auto e = get_bool(b, "echo", &echo)) return e;

  const json* prompt = field(b, "prompt");
  if (!prompt) return bad_request("'prompt' is required", "prompt");
  const json* one = prompt;
  if (prompt->is_array() && !prompt->empty() && (prompt->front().is_string() || prompt->front().is_array())) {
    if (prompt->size() != 1)
      return bad_request("'prompt' holds " + std::to_string(prompt->size()) +
                             " prompts; mmrun serve takes one per request (send parallel requests instead)",
                         "prompt");
    one = &prompt->front();
  }
  GenerationRequest& g = p->generation;
  std::string text;
  if (one->is_string()) {
    text = one->get<std::string>();
    auto ids = tok.encode(text, true);
    if (!ids) return bad_request(ids.error().message, "prompt");
    g.prompt = std::move(*ids);
  } else if (one->is_array()) {
    for (const auto& x : *one) {
      int64_t id = 0;
      if (!as_integer(x, &id) || id < 0 || id >= c.vocab_size)
        return bad_request("'prompt' holds " + shown(x) + ", not a token id in [0, " + std::to_string(c.vocab_size) + ")",
                           "prompt");
      g.prompt.push_back(static_cast<int32_t>(id));
    }
    if (echo) text = tok.decode(g.prompt);
  } else {
    return bad_request("'prompt' must be a string, an array of token ids, or an array with one of those, got " +
                           shown(*prompt),
                       "prompt");
  }
  if (echo) p->echo = std::move(text);
  // OpenAI's default answer length for completions is 16 tokens.
  return check_length(c, static_cast<int64_t>(g.prompt.size()), max_tokens, 16, "prompt", &g);
}

}  // namespace mm::rt::server
