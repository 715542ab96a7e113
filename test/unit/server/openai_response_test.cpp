// ResponseWriter (runtime/tooling/server/openai_response.h): the SSE stream of a chat answer cut
// at every byte boundary adds up to the non-streaming message (role chunk first, reasoning_content,
// content and tool_calls deltas, finish_reason tool_calls, the usage chunk, [DONE]); token ids and
// usage are reported; completions with echo; an engine failure becomes an error object.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/tooling/server/openai_response.h"

namespace mm::rt::server {
namespace {

using json = nlohmann::ordered_json;

std::string read(const std::string& rel) {
  std::ifstream f(std::string(MM_SOURCE_DIR) + "/test/inputs/serve/" + rel, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

PreparedRequest chat_request(bool stream) {
  PreparedRequest p;
  p.endpoint = Endpoint::Chat;
  p.model = "m27";
  p.stream = stream;
  p.include_usage = stream;
  p.return_token_ids = true;
  p.reasoning = ReasoningMode::Split;
  p.reasoning_open = true;
  p.parse_tools = true;
  p.tools = json::parse(read("tools.json"));
  p.generation.prompt = {1, 2, 3};
  return p;
}

EngineEvent piece(std::string text, std::vector<int32_t> ids) {
  EngineEvent e;
  e.text = std::move(text);
  e.ids = std::move(ids);
  return e;
}

EngineEvent last(FinishReason reason, int64_t completion) {
  EngineEvent e;
  e.finished = true;
  e.reason = reason;
  e.prompt_tokens = 3;
  e.completion_tokens = completion;
  e.cached_tokens = 2;
  return e;
}

// The JSON objects of an SSE text; `done` tells whether it ended with [DONE].
std::vector<json> events_of(const std::string& sse, bool* done) {
  std::vector<json> out;
  *done = false;
  std::istringstream in(sse);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EXPECT_EQ(line.rfind("data: ", 0), 0u) << line;
    const std::string data = line.substr(6);
    EXPECT_FALSE(*done) << "data after [DONE]";
    if (data == "[DONE]") {
      *done = true;
      continue;
    }
    out.push_back(json::parse(data));
  }
  return out;
}

TEST(ResponseWriter, StreamedChatAddsUpToTheMessageAtEveryCut) {
  const std::string text = read("outputs/tool_call.txt");
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    PreparedRequest sreq = chat_request(true), nreq = chat_request(false);
    ResponseWriter s(sreq, "chatcmpl-x", 100, 5), n(nreq, "chatcmpl-x", 100, 5);
    std::string sse;
    const std::vector<EngineEvent> evs = {piece(text.substr(0, cut), {10, 11}), piece(text.substr(cut), {12}),
                                          last(FinishReason::Eos, 4)};
    for (const auto& e : evs) {
      sse += s.stream(e);
      n.collect(e);
    }
    ASSERT_TRUE(s.finished() && n.finished());
    bool done = false;
    std::vector<json> chunks = events_of(sse, &done);
    ASSERT_TRUE(done);
    ASSERT_GE(chunks.size(), 4u);
    EXPECT_EQ(chunks[0]["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": ""})"));
    // Token ids travel with text (llama-benchy counts them on content chunks), not with the role.
    EXPECT_FALSE(chunks[0]["choices"][0].contains("token_ids"));
    EXPECT_EQ(chunks[1]["choices"][0]["token_ids"].front(), 10);
    std::string reasoning, content;
    json calls = json::array();
    std::vector<int32_t> ids;
    std::string finish;
    for (size_t i = 0; i + 1 < chunks.size(); ++i) {
      const json& c = chunks[i];
      EXPECT_EQ(c["id"], "chatcmpl-x");
      EXPECT_EQ(c["object"], "chat.completion.chunk");
      EXPECT_EQ(c["model"], "m27");
      EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
      const json& ch = c["choices"][0];
      if (ch.contains("token_ids"))
        for (int32_t id : ch["token_ids"]) ids.push_back(id);
      const json& d = ch["delta"];
      if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
      if (d.contains("content")) content += d["content"].get<std::string>();
      if (d.contains("tool_calls"))
        for (const auto& tc : d["tool_calls"]) {
          const size_t idx = tc["index"];
          if (idx == calls.size()) calls.push_back({{"id", tc["id"]}, {"name", tc["function"]["name"]}, {"arguments", ""}});
          calls[idx]["arguments"] = calls[idx]["arguments"].get<std::string>() + tc["function"]["arguments"].get<std::string>();
        }
      if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
    }
    EXPECT_EQ(finish, "tool_calls");
    EXPECT_EQ(ids, (std::vector<int32_t>{10, 11, 12}));
    const json& usage = chunks.back();
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"], json::parse(R"({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                                              "prompt_tokens_details": {"cached_tokens": 2}})"));

    const json body = json::parse(n.body());
    EXPECT_EQ(body["object"], "chat.completion");
    const json& m = body["choices"][0]["message"];
    EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(m["reasoning_content"], reasoning);
    EXPECT_EQ(m["content"], content);
    ASSERT_EQ(m["tool_calls"].size(), calls.size());
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(m["tool_calls"][0]["id"], calls[0]["id"]);
    EXPECT_EQ(m["tool_calls"][0]["type"], "function");
    EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"], calls[0]["arguments"]);
    EXPECT_EQ(calls[0]["arguments"], "{\"city\": \"Paris\", \"days\": 3, \"metric\": true}");
    EXPECT_EQ(body["choices"][0]["token_ids"], json::array({10, 11, 12}));
    EXPECT_EQ(body["prompt_token_ids"], json::array({1, 2, 3}));
    EXPECT_EQ(body["usage"]["total_tokens"], 7);
  }
}

TEST(ResponseWriter, ContentIsNullOnlyWhenReasoningOrToolCallsTookEverything) {
  PreparedRequest p = chat_request(false);
  p.parse_tools = false;
  ResponseWriter w(p, "id", 1, 1);
  w.collect(piece("only thinking", {5}));
  w.collect(last(FinishReason::Length, 1));
  json m = json::parse(w.body())["choices"][0];
  EXPECT_EQ(m["finish_reason"], "length");
  EXPECT_TRUE(m["message"]["content"].is_null());
  EXPECT_EQ(m["message"]["reasoning_content"], "only thinking");

  p.reasoning = ReasoningMode::None;
  ResponseWriter raw(p, "id", 1, 1);
  raw.collect(last(FinishReason::Eos, 1));
  m = json::parse(raw.body())["choices"][0];
  EXPECT_EQ(m["message"]["content"], "");
  EXPECT_TRUE(m["message"]["reasoning_content"].is_null());
  EXPECT_EQ(m["finish_reason"], "stop");
}

TEST(ResponseWriter, CompletionWithEcho) {
  PreparedRequest p;
  p.endpoint = Endpoint::Completion;
  p.model = "m27";
  p.echo = "Once";
  p.stream = true;
  ResponseWriter s(p, "cmpl-1", 1, 1);
  std::string sse = s.stream(piece(" upon", {7}));
  sse += s.stream(piece(" a", {8}));
  sse += s.stream(last(FinishReason::Stop, 2));
  bool done = false;
  auto chunks = events_of(sse, &done);
  ASSERT_TRUE(done);
  std::string text;
  for (const auto& c : chunks) {
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_FALSE(c.contains("usage"));  // no include_usage
    text += c["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, "Once upon a");
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "stop");

  p.stream = false;
  ResponseWriter n(p, "cmpl-1", 1, 1);
  n.collect(piece(" upon", {7}));
  n.collect(last(FinishReason::Length, 1));
  const json body = json::parse(n.body());
  EXPECT_EQ(body["choices"][0]["text"], "Once upon");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 1);
}

TEST(ResponseWriter, EngineFailureIsAnErrorObject) {
  PreparedRequest p = chat_request(true);
  ResponseWriter s(p, "id", 1, 1);
  EngineEvent e = last(FinishReason::None, 0);
  e.error = Error::internal("device lost");
  bool done = false;
  auto chunks = events_of(s.stream(e), &done);
  ASSERT_TRUE(done);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0]["error"]["message"], "device lost");
  p.stream = false;
  ResponseWriter n(p, "id", 1, 1);
  n.collect(e);
  EXPECT_EQ(json::parse(n.body())["error"]["message"], "device lost");
}

TEST(ResponseWriter, Ids) {
  const std::string a = new_response_id(Endpoint::Chat), b = new_response_id(Endpoint::Chat);
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 9u + 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(new_response_id(Endpoint::Completion).rfind("cmpl-", 0), 0u);
}

}  // namespace
}  // namespace mm::rt::server
