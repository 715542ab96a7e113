// prepare_chat / prepare_completion (runtime/tooling/server/openai_request.h): every refusal is an
// OpenAI error with the right status and the field at fault; accepted requests become the prompt
// the chat template renders, with sampling, stop and length settings, tool parsing and the forced
// tool-call opening of tool_choice required / named.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_template.h"
#include "runtime/tooling/server/openai_request.h"

namespace mm::rt::server {
namespace {

using json = nlohmann::ordered_json;

const text::Tokenizer& tokenizer() {
  static text::Tokenizer t = [] {
    auto r = text::Tokenizer::load(std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/minimax-tiny/tokenizer.json");
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }();
  return t;
}

ServerConfig config(int64_t max_model_len = 4096) {
  ServerConfig c;
  c.model_names = {"m27", "alias"};
  c.max_model_len = max_model_len;
  c.vocab_size = 2112;
  c.reasoning = ReasoningMode::Split;
  c.tool_parser = true;
  c.auto_tool_choice = true;
  c.default_temperature = 0.7f;
  c.default_top_p = 0.95f;
  c.default_top_k = 40;
  c.think_start_id = *tokenizer().token_id("<think>");
  c.think_end_id = *tokenizer().token_id("</think>");
  return c;
}

const json kTools = json::parse(R"([{"type": "function", "function": {"name": "get_weather",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");

json chat_body() {
  json b;
  b["model"] = "m27";
  b["messages"] = json::array({{{"role", "user"}, {"content", "Hello there"}}});
  return b;
}

std::optional<ApiError> chat(const json& b, PreparedRequest* p, const ServerConfig& c = config()) {
  return prepare_chat(b.dump(), c, tokenizer(), p);
}

std::optional<ApiError> completion(const json& b, PreparedRequest* p, const ServerConfig& c = config()) {
  return prepare_completion(b.dump(), c, tokenizer(), p);
}

// The request is refused with `status`, naming `param`, with `needle` in the message.
void expect_refused(const std::optional<ApiError>& e, int status, const std::string& param, const std::string& needle) {
  ASSERT_TRUE(e.has_value()) << "accepted, expected " << status << " for " << param;
  EXPECT_EQ(e->status, status) << e->message;
  EXPECT_EQ(e->param, param) << e->message;
  EXPECT_NE(e->message.find(needle), std::string::npos) << e->message;
  const json body = json::parse(error_body(*e));
  EXPECT_EQ(body["error"]["message"], e->message);
  EXPECT_TRUE(body["error"].contains("type") && body["error"].contains("code") && body["error"].contains("param"));
}

TEST(OpenAiRequest, ChatPromptIsTheRenderedTemplate) {
  PreparedRequest p;
  json b = chat_body();
  b["unknown_extra_field"] = {{"anything", 1}};  // tolerated
  b["user"] = "someone";
  ASSERT_FALSE(chat(b, &p));
  auto rendered = text::render_minimax_m2_chat(b["messages"], json(nullptr));
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(p.generation.prompt, tokenizer().encode(*rendered, true).value());
  EXPECT_EQ(p.model, "m27");
  EXPECT_TRUE(p.reasoning_open);  // the generation prompt ends in <think>
  EXPECT_TRUE(p.generation.reasoning_open);
  EXPECT_FALSE(p.parse_tools);
  EXPECT_TRUE(p.generation.forced.empty());
  // Defaults: the model's sampling settings, and the rest of the context as the answer length.
  EXPECT_FLOAT_EQ(p.generation.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(p.generation.sampling.top_p, 0.95f);
  EXPECT_EQ(p.generation.sampling.top_k, 40);
  EXPECT_FALSE(p.generation.sampling.seed.has_value());
  EXPECT_EQ(p.generation.max_tokens, 4096 - static_cast<int64_t>(p.generation.prompt.size()));
  EXPECT_FALSE(p.stream);
}

TEST(OpenAiRequest, SamplingStopAndLengthFields) {
  PreparedRequest p;
  json b = chat_body();
  b["model"] = "alias";
  b["temperature"] = 0;
  b["top_p"] = 0.5;
  b["top_k"] = -1;
  b["seed"] = -3;
  b["max_tokens"] = 20;
  b["max_completion_tokens"] = 12;  // wins
  b["stop"] = "END";
  b["stop_token_ids"] = {2020, 5};
  b["ignore_eos"] = true;
  b["skip_special_tokens"] = false;
  b["stream"] = true;
  b["stream_options"] = {{"include_usage", true}};
  b["return_token_ids"] = true;
  b["n"] = 1;
  b["presence_penalty"] = 0;
  b["logprobs"] = false;
  b["response_format"] = {{"type", "text"}};
  ASSERT_FALSE(chat(b, &p));
  EXPECT_EQ(p.model, "alias");
  EXPECT_EQ(p.generation.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(p.generation.sampling.top_p, 0.5f);
  EXPECT_EQ(p.generation.sampling.top_k, 0);
  EXPECT_EQ(p.generation.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(p.generation.max_tokens, 12);
  EXPECT_EQ(p.generation.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(p.generation.stop_token_ids, (std::vector<int32_t>{2020, 5}));
  EXPECT_TRUE(p.generation.ignore_eos);
  EXPECT_FALSE(p.generation.skip_special_tokens);
  EXPECT_TRUE(p.stream && p.include_usage && p.return_token_ids);
  b["stop"] = {"a", "bc"};
  p = PreparedRequest{};
  ASSERT_FALSE(chat(b, &p));
  EXPECT_EQ(p.generation.stop, (std::vector<std::string>{"a", "bc"}));
}

TEST(OpenAiRequest, BadJsonAndBadFieldsAre400) {
  PreparedRequest p;
  auto e = prepare_chat("{\"messages\": [", config(), tokenizer(), &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
  EXPECT_NE(e->message.find("not valid JSON"), std::string::npos);
  e = prepare_chat("[1, 2]", config(), tokenizer(), &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);

  struct Case {
    const char* key;
    json value;
    const char* needle;
  };
  const Case cases[] = {
      {"temperature", -1, "'temperature' must be a number >= 0"},
      {"temperature", "hot", "'temperature' must be a number"},
      {"top_p", 0, "'top_p' must be a number in (0, 1]"},
      {"top_p", 1.5, "'top_p'"},
      {"top_k", -2, "'top_k' must be an integer"},
      {"max_tokens", 0, "'max_tokens' must be an integer in [1"},
      {"max_tokens", "5", "'max_tokens'"},
      {"max_tokens", 2.5, "'max_tokens'"},
      {"max_completion_tokens", -1, "'max_completion_tokens'"},
      {"seed", "x", "'seed' must be an integer"},
      {"n", 2, "'n' must be 1"},
      {"stream", "yes", "'stream' must be true or false"},
      {"stop", 5, "'stop' must be a string or an array of strings"},
      {"stop", json::array({""}), "must not be empty"},
      {"stop_token_ids", json::array({99999}), "not a token id in [0, 2112)"},
      {"logprobs", true, "'logprobs' is not supported"},
      {"top_logprobs", 3, "'top_logprobs' is not supported"},
      {"logit_bias", {{"5", 10}}, "'logit_bias' is not supported"},
      {"presence_penalty", 0.5, "'presence_penalty' is not supported"},
      {"frequency_penalty", -1, "'frequency_penalty' is not supported"},
      {"repetition_penalty", 1.2, "'repetition_penalty' is not supported"},
      {"response_format", {{"type", "json_object"}}, "'response_format' other than"},
      {"guided_json", {{"type", "object"}}, "'guided_json' is not supported"},
      {"min_tokens", 4, "'min_tokens' > 0 needs 'ignore_eos': true"},
      {"messages", json::array(), "'messages' must be a non-empty array"},
      {"messages", json::array({1}), "'messages[0]' must be an object"},
      {"tools", "nope", "'tools' must be an array"},
      {"tool_choice", "sometimes", "'tool_choice' must be"},
  };
  for (const Case& c : cases) {
    json b = chat_body();
    b[c.key] = c.value;
    expect_refused(chat(b, &p), 400, c.key, c.needle);
  }
  json b = chat_body();
  b["stream_options"] = {{"include_usage", true}};
  expect_refused(chat(b, &p), 400, "stream_options", "only allowed with 'stream': true");
  b = chat_body();
  b["messages"] = json::array({{{"role", "wizard"}, {"content", "hi"}}});
  expect_refused(chat(b, &p), 400, "messages", "wizard");
  b = chat_body();
  b.erase("messages");
  expect_refused(chat(b, &p), 400, "messages", "'messages'");
}

TEST(OpenAiRequest, UnknownModelIs404) {
  PreparedRequest p;
  json b = chat_body();
  b["model"] = "gpt-4";
  auto e = chat(b, &p);
  expect_refused(e, 404, "model", "The model `gpt-4` does not exist.");
  EXPECT_EQ(e->code, "model_not_found");
  b.erase("model");
  ASSERT_FALSE(chat(b, &p));
  EXPECT_EQ(p.model, "m27");
}

TEST(OpenAiRequest, ContextOverflowNamesBothLengths) {
  PreparedRequest p;
  json b = chat_body();
  ASSERT_FALSE(chat(b, &p));
  const int64_t prompt = static_cast<int64_t>(p.generation.prompt.size());
  // The prompt alone does not fit.
  auto e = chat(b, &p, config(prompt));
  expect_refused(e, 400, "messages",
                 "maximum context length is " + std::to_string(prompt) + " tokens. However, your request has " +
                     std::to_string(prompt) + " input tokens");
  EXPECT_EQ(e->code, "context_length_exceeded");
  // Prompt + max_tokens does not fit.
  b["max_tokens"] = 50;
  e = chat(b, &p, config(prompt + 10));
  expect_refused(e, 400, "max_tokens",
                 "maximum context length is " + std::to_string(prompt + 10) + " tokens. However, you requested " +
                     std::to_string(prompt + 50) + " tokens (" + std::to_string(prompt) + " in the messages, 50 in the completion)");
  ASSERT_FALSE(chat(b, &p, config(prompt + 50)));
  EXPECT_EQ(p.generation.max_tokens, 50);
}

TEST(OpenAiRequest, ToolChoice) {
  PreparedRequest p;
  json b = chat_body();
  b["tools"] = kTools;
  // Default with tools: auto, which needs --enable-auto-tool-choice and --tool-call-parser.
  ASSERT_FALSE(chat(b, &p));
  EXPECT_TRUE(p.parse_tools);
  EXPECT_TRUE(p.generation.forced.empty());
  auto rendered = text::render_minimax_m2_chat(b["messages"], kTools);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(p.generation.prompt, tokenizer().encode(*rendered, true).value());
  ServerConfig no_auto = config();
  no_auto.auto_tool_choice = false;
  expect_refused(chat(b, &p, no_auto), 400, "tool_choice",
                 "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
  // none: tools stay in the prompt, the answer is not parsed.
  b["tool_choice"] = "none";
  ASSERT_FALSE(chat(b, &p, no_auto));
  EXPECT_FALSE(p.parse_tools);
  // A named function: the call's opening is forced once the reasoning is over.
  b["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  ASSERT_FALSE(chat(b, &p, no_auto));
  EXPECT_TRUE(p.parse_tools);
  EXPECT_EQ(tokenizer().decode(p.generation.forced), "\n\n<minimax:tool_call>\n<invoke name=\"get_weather\">\n");
  b["tool_choice"] = "required";
  ASSERT_FALSE(chat(b, &p, no_auto));
  EXPECT_EQ(tokenizer().decode(p.generation.forced), "\n\n<minimax:tool_call>\n<invoke name=\"");
  b["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  expect_refused(chat(b, &p), 400, "tool_choice", "'get_time', which is not in 'tools'");
  b.erase("tools");
  b["tool_choice"] = "required";
  expect_refused(chat(b, &p), 400, "tool_choice", "needs 'tools'");
  b["tools"] = json::array({{{"type", "function"}, {"function", {{"description", "no name"}}}}});
  expect_refused(chat(b, &p), 400, "tools[0].function.name", "must be a non-empty string");
}

TEST(OpenAiRequest, HistoryWithToolCallsAndReasoningRendersAsTheTemplate) {
  PreparedRequest p;
  json b = chat_body();
  b["tools"] = kTools;
  b["messages"] = json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "reasoning_content": "Call the tool.",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"}])");
  ASSERT_FALSE(chat(b, &p));
  const std::string prompt = tokenizer().decode(p.generation.prompt);
  EXPECT_NE(prompt.find("<think>\nCall the tool.\n</think>"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("<invoke name=\"get_weather\">\n<parameter name=\"city\">Paris</parameter>"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("]~b]tool\n<response>{\"temperature\": 21}</response>"), std::string::npos) << prompt;
}

TEST(OpenAiRequest, ContinueFinalMessage) {
  PreparedRequest p;
  json b = chat_body();
  b["tools"] = kTools;
  b["messages"].push_back({{"role", "assistant"}, {"content", "<think>\nI will call it.\n</think>\n\n"}});
  b["continue_final_message"] = true;
  b["add_generation_prompt"] = false;
  b["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  ASSERT_FALSE(chat(b, &p));
  const std::string prompt = tokenizer().decode(p.generation.prompt);
  const std::string tail = "]~b]ai\n<think>\nI will call it.\n</think>\n\n";
  ASSERT_GE(prompt.size(), tail.size());
  EXPECT_EQ(prompt.substr(prompt.size() - tail.size()), tail);  // left open: no end-of-message marker
  EXPECT_FALSE(p.reasoning_open);
  // The reasoning is over already: the forced opening comes first, without the blank line.
  EXPECT_EQ(tokenizer().decode(p.generation.forced), "<minimax:tool_call>\n<invoke name=\"get_weather\">\n");
  b["add_generation_prompt"] = true;
  expect_refused(chat(b, &p), 400, "continue_final_message", "cannot both be true");
  b.erase("add_generation_prompt");
  b["messages"].push_back({{"role", "user"}, {"content", "more"}});
  expect_refused(chat(b, &p), 400, "messages", "last message to be from the assistant");
}

TEST(OpenAiRequest, Completions) {
  PreparedRequest p;
  json b;
  b["model"] = "m27";
  b["prompt"] = "Once upon a time";
  ASSERT_FALSE(completion(b, &p));
  EXPECT_EQ(p.endpoint, Endpoint::Completion);
  EXPECT_EQ(p.generation.prompt, tokenizer().encode("Once upon a time", true).value());
  EXPECT_EQ(p.generation.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_FALSE(p.reasoning_open);
  EXPECT_TRUE(p.echo.empty());
  b["echo"] = true;
  b["prompt"] = json::array({json::array({5, 6, 7})});
  p = PreparedRequest{};
  ASSERT_FALSE(completion(b, &p));
  EXPECT_EQ(p.generation.prompt, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(p.echo, tokenizer().decode(std::vector<int32_t>{5, 6, 7}));
  b["prompt"] = json::array({"a", "b"});
  expect_refused(completion(b, &p), 400, "prompt", "takes one per request");
  b["prompt"] = json::array({1, 5000});
  expect_refused(completion(b, &p), 400, "prompt", "not a token id in [0, 2112)");
  b["prompt"] = 7;
  expect_refused(completion(b, &p), 400, "prompt", "'prompt' must be");
  b.erase("prompt");
  expect_refused(completion(b, &p), 400, "prompt", "'prompt' is required");
  b["prompt"] = "x";
  b["suffix"] = "y";
  expect_refused(completion(b, &p), 400, "suffix", "not supported");
  b.erase("suffix");
  b["logprobs"] = 2;
  expect_refused(completion(b, &p), 400, "logprobs", "not supported");
  b["logprobs"] = 0;
  b["min_tokens"] = 8;
  b["ignore_eos"] = true;
  b["max_tokens"] = 8;
  ASSERT_FALSE(completion(b, &p));
  b["min_tokens"] = 9;
  expect_refused(completion(b, &p), 400, "min_tokens", "exceeds the answer length limit");
}

TEST(OpenAiRequest, ReasoningOpenAfter) {
  const std::vector<int32_t> ids{1, 2050, 3};
  EXPECT_TRUE(reasoning_open_after(ids, 2050, 2051));
  EXPECT_FALSE(reasoning_open_after(std::vector<int32_t>{2050, 4, 2051, 5}, 2050, 2051));
  EXPECT_FALSE(reasoning_open_after(std::vector<int32_t>{4, 5}, 2050, 2051));
}

}  // namespace
}  // namespace mm::rt::server
