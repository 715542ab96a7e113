// Engine events to OpenAI responses: `chat.completion` / `text_completion` objects, or their
// server-sent-event streams (`chat.completion.chunk`: a role chunk with the first token, one chunk
// per event with reasoning_content / content / tool_calls deltas, a chunk with finish_reason, the
// usage chunk with stream_options.include_usage, then `data: [DONE]`). `usage` is in every
// response (prompt, completion and total tokens, prompt_tokens_details.cached_tokens).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tooling/server/openai_request.h"
#include "runtime/tooling/server/output_assembler.h"
#include "runtime/tooling/server/request_stream.h"

namespace mm::rt::server {

// "chatcmpl-" / "cmpl-" + 32 hex digits.
std::string new_response_id(Endpoint endpoint);

class ResponseWriter {
 public:
  // `created`: Unix seconds; `id_seed` seeds the tool-call ids.
  ResponseWriter(const PreparedRequest& request, std::string id, int64_t created, uint64_t id_seed);

  // Streaming: the SSE text for one engine event (may be empty; after the final event it ends with
  // "data: [DONE]").
  std::string stream(const EngineEvent& event);
  // Non-streaming: takes one event; after the final one, body() is the response JSON.
  void collect(const EngineEvent& event);
  std::string body() const;

  bool finished() const { return finished_; }

 private:
  std::string chunk(nlohmann::ordered_json choice_fields, bool with_usage_null) const;
  nlohmann::ordered_json usage() const;
  std::string finish_reason() const;
  nlohmann::ordered_json delta_json(const OutputDelta& d) const;
  nlohmann::ordered_json take_ids();
  void record_end(const EngineEvent& event);

  const PreparedRequest& request_;
  bool chat_;
  std::string id_;
  int64_t created_;
  std::unique_ptr<OutputAssembler> assembler_;  // chat only
  std::string text_;                            // completion: the answer so far
  std::vector<int32_t> pending_ids_;            // ids not yet sent in a chunk (return_token_ids)
  std::vector<int32_t> all_ids_;
  bool role_sent_ = false;
  bool echo_sent_ = false;
  bool finished_ = false;
  FinishReason reason_ = FinishReason::None;
  std::optional<Error> error_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, cached_tokens_ = 0;
};

}  // namespace mm::rt::server
