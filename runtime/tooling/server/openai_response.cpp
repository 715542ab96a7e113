#include "runtime/tooling/server/openai_response.h"

#include <random>

namespace mm::rt::server {

namespace {

using json = nlohmann::ordered_json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

std::string new_response_id(Endpoint endpoint) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string id = endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-";
  for (int w = 0; w < 2; ++w) {
    const uint64_t r = rng();
    for (int i = 0; i < 16; ++i) id.push_back(kHex[(r >> (4 * i)) & 0xf]);
  }
  return id;
}

ResponseWriter::ResponseWriter(const PreparedRequest& request, std::string id, int64_t created, uint64_t id_seed)
    : request_(request), chat_(request.endpoint == Endpoint::Chat), id_(std::move(id)), created_(created) {
  if (chat_)
    assembler_ = std::make_unique<OutputAssembler>(request.reasoning, request.reasoning_open, request.parse_tools,
                                                   request.tools, id_seed);
}

json ResponseWriter::usage() const {
  json u;
  u["prompt_tokens"] = prompt_tokens_;
  u["completion_tokens"] = completion_tokens_;
  u["total_tokens"] = prompt_tokens_ + completion_tokens_;
  u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens_}};
  return u;
}

std::string ResponseWriter::finish_reason() const {
  if (reason_ == FinishReason::Length) return "length";
  if (chat_ && !assembler_->tool_calls().empty()) return "tool_calls";
  return "stop";
}

json ResponseWriter::take_ids() {
  json ids = pending_ids_;
  pending_ids_.clear();
  return ids;
}

json ResponseWriter::delta_json(const OutputDelta& d) const {
  json delta = json::object();
  if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
  if (!d.content.empty()) delta["content"] = d.content;
  if (!d.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : d.tool_calls) {
      json call;
      call["index"] = c.index;
      if (c.id) {
        call["id"] = *c.id;
        call["type"] = "function";
      }
      json function = json::object();
      if (c.name) function["name"] = *c.name;
      function["arguments"] = c.arguments;
      call["function"] = std::move(function);
      calls.push_back(std::move(call));
    }
    delta["tool_calls"] = std::move(calls);
  }
  return delta;
}

// One streamed chunk with a single choice made of `choice_fields` (delta or text, finish_reason).
std::string ResponseWriter::chunk(json choice_fields, bool with_usage_null) const {
  json c;
  c["id"] = id_;
  c["object"] = chat_ ? "chat.completion.chunk" : "text_completion";
  c["created"] = created_;
  c["model"] = request_.model;
  json choice;
  choice["index"] = 0;
  for (auto& [k, v] : choice_fields.items()) choice[k] = v;
  c["choices"] = json::array({std::move(choice)});
  if (with_usage_null) c["usage"] = nullptr;
  return sse(c);
}

void ResponseWriter::record_end(const EngineEvent& e) {
  finished_ = true;
  reason_ = e.reason;
  error_ = e.error;
  prompt_tokens_ = e.prompt_tokens;
  completion_tokens_ = e.completion_tokens;
  cached_tokens_ = e.cached_tokens;
}

std::string ResponseWriter::stream(const EngineEvent& e) {
  if (finished_) return {};
  std::string out;
  pending_ids_.insert(pending_ids_.end(), e.ids.begin(), e.ids.end());
  const bool usage_null = request_.include_usage;
  auto emit = [&](json fields) {
    if (request_.return_token_ids) fields["token_ids"] = take_ids();
    out += chunk(std::move(fields), usage_null);
  };
  std::string text = e.text;
  if (!chat_ && !echo_sent_ && (!text.empty() || e.finished) && !request_.echo.empty()) {
    text = request_.echo + text;
    echo_sent_ = true;
  }
  if (chat_ && !role_sent_ && (!e.ids.empty() || e.finished) && !e.error) {
    // vLLM's first chunk: the role, sent with the first token.
    // (Its token ids go with the first text, where clients count them.)
    role_sent_ = true;
    json f;
    f["delta"] = {{"role", "assistant"}, {"content", ""}};
    f["logprobs"] = nullptr;
    f["finish_reason"] = nullptr;
    out += chunk(std::move(f), usage_null);
  }
  auto emit_delta = [&](const OutputDelta& d) {
    if (d.empty()) return;
    json f;
    f["delta"] = delta_json(d);
    f["logprobs"] = nullptr;
    f["finish_reason"] = nullptr;
    emit(std::move(f));
  };
  if (chat_) {
    emit_delta(assembler_->feed(text));
  } else if (!text.empty()) {
    text_ += text;
    json f;
    f["text"] = text;
    f["logprobs"] = nullptr;
    f["finish_reason"] = nullptr;
    emit(std::move(f));
  }
  if (!e.finished) return out;

  record_end(e);
  if (e.error) {
    ApiError err{500, e.error->message, "server_error", "", "engine_error"};
    out += "data: " + error_body(err) + "\n\n";
    out += "data: [DONE]\n\n";
    return out;
  }
  if (e.reason == FinishReason::Cancelled) return out;
  if (chat_) emit_delta(assembler_->finish());
  json f;
  if (chat_) f["delta"] = json::object();
  else f["text"] = "";
  f["logprobs"] = nullptr;
  f["finish_reason"] = finish_reason();
  emit(std::move(f));
  if (request_.include_usage) {
    json c;
    c["id"] = id_;
    c["object"] = chat_ ? "chat.completion.chunk" : "text_completion";
    c["created"] = created_;
    c["model"] = request_.model;
    c["choices"] = json::array();
    c["usage"] = usage();
    out += sse(c);
  }
  out += "data: [DONE]\n\n";
  return out;
}

void ResponseWriter::collect(const EngineEvent& e) {
  if (finished_) return;
  all_ids_.insert(all_ids_.end(), e.ids.begin(), e.ids.end());
  if (chat_) assembler_->feed(e.text);
  else text_ += e.text;
  if (!e.finished) return;
  record_end(e);
  if (chat_ && !e.error) assembler_->finish();
}

std::string ResponseWriter::body() const {
  if (error_) return error_body(ApiError{500, error_->message, "server_error", "", "engine_error"});
  json r;
  r["id"] = id_;
  r["object"] = chat_ ? "chat.completion" : "text_completion";
  r["created"] = created_;
  r["model"] = request_.model;
  json choice;
  choice["index"] = 0;
  if (chat_) {
    const OutputAssembler& a = *assembler_;
    json message;
    message["role"] = "assistant";
    const bool split = request_.reasoning == ReasoningMode::Split && request_.reasoning_open;
    const bool null_content = a.content().empty() && (split || !a.tool_calls().empty());
    message["content"] = null_content ? json(nullptr) : json(a.content());
    message["reasoning_content"] = split && !a.reasoning().empty() ? json(a.reasoning()) : json(nullptr);
    if (!a.tool_calls().empty()) {
      json calls = json::array();
      for (const auto& c : a.tool_calls())
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      message["tool_calls"] = std::move(calls);
    }
    choice["message"] = std::move(message);
  } else {
    choice["text"] = request_.echo + text_;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason();
  if (request_.return_token_ids) choice["token_ids"] = all_ids_;
  r["choices"] = json::array({std::move(choice)});
  r["usage"] = usage();
  if (request_.return_token_ids) r["prompt_token_ids"] = request_.generation.prompt;
  return dump(r);
}

}  // namespace mm::rt::server
