// OpenAI request bodies to engine requests: validation of /v1/chat/completions and
// /v1/completions (with vLLM's extensions: top_k, ignore_eos, stop_token_ids, skip_special_tokens,
// min_tokens, return_token_ids, add_generation_prompt, continue_final_message), chat rendering
// with the MiniMax-M2 template, tokenization, and the context-length check. Every refusal is an
// OpenAI error object with its HTTP status; fields this server does not know are ignored, fields
// it knows but cannot honour (n > 1, logprobs, penalties, logit_bias, structured outputs) are
// refused with a message saying so, rather than silently answered differently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tooling/server/output_assembler.h"
#include "runtime/tooling/server/scheduler.h"

namespace mm::rt::server {

// {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};

ApiError bad_request(std::string message, std::string param = "");
std::string error_body(const ApiError& e);

// What requests are checked and completed against (fixed for the server's life).
struct ServerConfig {
  std::vector<std::string> model_names;  // the first is reported in responses by default
  int64_t max_model_len = 0;
  int64_t vocab_size = 0;
  ReasoningMode reasoning = ReasoningMode::None;
  bool tool_parser = false;             // --tool-call-parser minimax_m2
  bool auto_tool_choice = false;        // --enable-auto-tool-choice
  // Sampling defaults for fields a request leaves out (generation_config.json, else OpenAI's).
  float default_temperature = 1.0f;
  float default_top_p = 1.0f;
  int32_t default_top_k = 0;
  int32_t think_start_id = -1;          // "<think>", -1: none
  int32_t think_end_id = -1;            // "</think>"
};

enum class Endpoint { Chat, Completion };

// A validated request, ready for Scheduler::submit plus what the response needs.
struct PreparedRequest {
  Endpoint endpoint = Endpoint::Chat;
  GenerationRequest generation;
  std::string model;                    // as the request named it (or the default)
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool return_token_ids = false;        // vLLM: token ids in every choice
  // Chat:
  ReasoningMode reasoning = ReasoningMode::None;
  bool reasoning_open = false;
  bool parse_tools = false;
  nlohmann::ordered_json tools;         // null or the tools array
  // Completion:
  std::string echo;                     // prompt text put in front of the answer (echo: true)
};

// The body as received (not yet parsed). Returns the error to send, or nullopt with `out` filled.
std::optional<ApiError> prepare_chat(const std::string& body, const ServerConfig& config,
                                     const text::Tokenizer& tokenizer, PreparedRequest* out);
std::optional<ApiError> prepare_completion(const std::string& body, const ServerConfig& config,
                                           const text::Tokenizer& tokenizer, PreparedRequest* out);

// Whether the prompt leaves the model inside its reasoning: the last of "<think>" / "</think>" in it
// is "<think>" (the MiniMax-M2 generation prompt ends in "<think>\n").
bool reasoning_open_after(std::span<const int32_t> prompt, int32_t think_start_id, int32_t think_end_id);

}  // namespace mm::rt::server
