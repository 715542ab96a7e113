#include "runtime/chat/tool_call_parser.h"

#include <random>
#include <regex>

#include <gtest/gtest.h>

namespace mm::text {
namespace {

using json = nlohmann::ordered_json;

const json& tools() {
  static const json t = json::parse(R"([
    {"type": "function", "function": {"name": "search_web", "parameters": {"type": "object", "properties": {
      "query_tag": {"type": "array", "items": {"type": "string"}},
      "query_list": {"type": "array"},
      "limit": {"type": "integer"},
      "ratio": {"type": "number"},
      "safe": {"type": "boolean"},
      "filters": {"type": "object"},
      "lang": {"type": "string"},
      "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
      "level": {"enum": [1, 2, 3]},
      "multi": {"type": ["boolean", "string"]}}}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
      "location": {"type": "string"}, "days": {"type": "integer"}}}}}
  ])");
  return t;
}

const char* kSpecExample =
    "I'll search.\n<minimax:tool_call>\n<invoke name=\"search_web\">\n"
    "<parameter name=\"query_tag\">[\"technology\", \"events\"]</parameter>\n"
    "<parameter name=\"query_list\">[\"\\\"OpenAI\\\" \\\"latest\\\"\"]</parameter>\n"
    "</invoke>\n<invoke name=\"get_weather\">\n<parameter name=\"location\">\nSan Francisco\n</parameter>\n"
    "<parameter name=\"days\">3</parameter>\n</invoke>\n</minimax:tool_call>";

TEST(ToolCallParse, SpecExample) {
  ToolCallIdGenerator ids(1);
  ToolCallParse r = parse_minimax_tool_calls(kSpecExample, tools(), ids);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].name, "search_web");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"query_tag": ["technology", "events"], "query_list": ["\"OpenAI\" \"latest\""]})");
  EXPECT_EQ(r.tool_calls[1].name, "get_weather");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"location": "San Francisco", "days": 3})");
  ASSERT_TRUE(r.content.has_value());
  EXPECT_EQ(*r.content, "I'll search.\n");
  std::regex id_form("call_[0-9a-f]{24}");
  EXPECT_TRUE(std::regex_match(r.tool_calls[0].id, id_form)) << r.tool_calls[0].id;
  EXPECT_NE(r.tool_calls[0].id, r.tool_calls[1].id);
}

TEST(ToolCallParse, NoToolCallIsAllContent) {
  ToolCallIdGenerator ids(1);
  ToolCallParse r = parse_minimax_tool_calls("Just an answer.", tools(), ids);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content.value_or("<none>"), "Just an answer.");
}

TEST(ToolCallParse, ContentAbsentWhenBlockComesFirstAndTrailingTextDropped) {
  ToolCallIdGenerator ids(1);
  ToolCallParse r = parse_minimax_tool_calls(
      "<minimax:tool_call><invoke name='get_weather'></invoke></minimax:tool_call> trailing", tools(), ids);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, "{}");
  EXPECT_FALSE(r.content.has_value());
}

TEST(ToolCallParse, UnterminatedBlockIsContent) {
  ToolCallIdGenerator ids(1);
  std::string text = "Text <minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"days\">3";
  ToolCallParse r = parse_minimax_tool_calls(text, tools(), ids);
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content.value_or(""), text);
}

TEST(ToolCallParse, MalformedPiecesAreSkipped) {
  ToolCallIdGenerator ids(1);
  // Empty invoke name: skipped. Parameter without '>' or with an empty name: skipped. Unterminated
  // parameter before </invoke>: skipped.
  ToolCallParse r = parse_minimax_tool_calls(
      "<minimax:tool_call><invoke name=></invoke><invoke name=\"get_weather\">"
      "<parameter name=\"location\"</parameter><parameter name=>x</parameter>"
      "<parameter name=\"days\">4</parameter><parameter name=\"lost\">5</invoke></minimax:tool_call>",
      tools(), ids);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"days": 4})");
}

json convert(std::string_view value, std::string_view param, std::string_view fn = "search_web") {
  return convert_tool_parameter(value, tools(), fn, param);
}

TEST(ToolCallConvert, ByDeclaredType) {
  EXPECT_EQ(convert("42", "limit"), json(42));
  EXPECT_EQ(convert("-1_000", "limit"), json(-1000));      // Python int() accepts digit grouping
  EXPECT_EQ(convert("4.5", "limit"), json(4.5));            // not an int: the JSON fallback reads 4.5
  EXPECT_EQ(convert("99999999999999999999", "limit"), json(1e20));  // beyond 64 bits: a float
  EXPECT_EQ(convert("abc", "limit"), json("abc"));          // nothing fits: raw string
  EXPECT_EQ(convert("2.50", "ratio"), json(2.5));
  EXPECT_EQ(convert("3.0", "ratio"), json(3));              // integral floats become ints
  EXPECT_EQ(convert("3.0", "ratio").type(), json::value_t::number_integer);
  EXPECT_EQ(convert("1e3", "ratio"), json(1000));
  EXPECT_EQ(convert("inf", "ratio"), json("inf"));          // see header: not a number here
  EXPECT_EQ(convert("Yes", "safe"), json(true));
  EXPECT_EQ(convert("off", "safe"), json(false));
  EXPECT_EQ(convert("maybe", "safe"), json("maybe"));
  EXPECT_EQ(convert(R"({"b": 1, "a": [2]})", "filters").dump(), R"({"b":1,"a":[2]})");
  EXPECT_EQ(convert("{broken", "filters"), json("{broken"));
  EXPECT_EQ(convert("007", "lang"), json("007"));           // strings stay strings
  EXPECT_EQ(convert("[1, 2]", "lang"), json("[1, 2]"));
}

TEST(ToolCallConvert, NullLiteralsAndSchemaForms) {
  EXPECT_TRUE(convert("null", "lang").is_null());
  EXPECT_TRUE(convert("None", "limit").is_null());
  EXPECT_TRUE(convert("NIL", "safe").is_null());
  EXPECT_EQ(convert("12", "maybe"), json(12));              // anyOf
  EXPECT_EQ(convert("2", "level"), json(2));                // enum of integers
  EXPECT_EQ(convert("true", "multi"), json(true));          // type list: boolean before string
  EXPECT_EQ(convert("other", "multi"), json("other"));
  // Unknown tool or parameter: string.
  EXPECT_EQ(convert("42", "limit", "nope"), json("42"));
  EXPECT_EQ(convert("42", "undeclared"), json("42"));
}

TEST(ToolCallParse, NonAsciiArgumentsStayRaw) {
  ToolCallIdGenerator ids(1);
  ToolCallParse r = parse_minimax_tool_calls(
      "<minimax:tool_call><invoke name=\"get_weather\"><parameter name=\"location\">東京 🗼 \"x\"</parameter>"
      "</invoke></minimax:tool_call>",
      tools(), ids);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"location": "東京 🗼 \"x\""})");
}

// --- streaming ---------------------------------------------------------------------------------

struct Collected {
  std::string content;
  std::vector<std::string> names;
  std::vector<std::string> ids;
  std::vector<std::string> arguments;
};

void collect(const ToolStreamDelta& d, Collected& c) {
  c.content += d.content;
  for (const ToolCallDelta& t : d.tool_calls) {
    if (t.index >= c.arguments.size()) {
      ASSERT_EQ(t.index, c.arguments.size()) << "tool call indices must be dense";
      ASSERT_TRUE(t.name.has_value() && t.id.has_value()) << "first delta of a call carries id and name";
      c.names.push_back(*t.name);
      c.ids.push_back(*t.id);
      c.arguments.emplace_back();
    } else {
      EXPECT_FALSE(t.name.has_value()) << "name is sent once";
    }
    c.arguments[t.index] += t.arguments;
  }
}

Collected stream(std::string_view text, const std::vector<size_t>& cuts) {
  ToolCallIdGenerator ids(7);
  ToolCallStreamParser p(tools(), ids);
  Collected c;
  size_t prev = 0;
  for (size_t cut : cuts) {
    collect(p.feed(text.substr(prev, cut - prev)), c);
    prev = cut;
  }
  collect(p.feed(text.substr(prev)), c);
  collect(p.finish(), c);
  return c;
}

void expect_same_as_non_streaming(std::string_view text, const std::vector<size_t>& cuts) {
  ToolCallIdGenerator ids(1);
  ToolCallParse want = parse_minimax_tool_calls(text, tools(), ids);
  Collected got = stream(text, cuts);
  ASSERT_EQ(got.arguments.size(), want.tool_calls.size()) << text;
  for (size_t i = 0; i < want.tool_calls.size(); ++i) {
    EXPECT_EQ(got.names[i], want.tool_calls[i].name);
    EXPECT_EQ(got.arguments[i], want.tool_calls[i].arguments);
  }
  EXPECT_EQ(got.content, want.content.value_or(""));
}

TEST(ToolCallStream, EveryTwoWayCutOfSpecExampleMatchesNonStreaming) {
  std::string text = kSpecExample;
  for (size_t i = 0; i <= text.size(); i += 1)
    for (size_t j = i; j <= text.size(); j += 7) expect_same_as_non_streaming(text, {i, j});
}

TEST(ToolCallStream, CharacterByCharacter) {
  std::string text = std::string(kSpecExample) + "\n";
  std::vector<size_t> cuts;
  for (size_t i = 1; i < text.size(); ++i) cuts.push_back(i);
  expect_same_as_non_streaming(text, cuts);
}

TEST(ToolCallStream, NameOnHeaderArgumentsPerParameterCloseOnInvokeEnd) {
  ToolCallIdGenerator ids(3);
  ToolCallStreamParser p(tools(), ids);
  ToolStreamDelta d = p.feed("Hi <minimax:tool_call>\n<invoke name=\"get_weather\"");
  EXPECT_EQ(d.content, "Hi ");
  EXPECT_TRUE(d.tool_calls.empty()) << "header not complete yet";
  d = p.feed(">\n<parameter name=\"location\">Par");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].index, 0u);
  EXPECT_EQ(d.tool_calls[0].name.value_or(""), "get_weather");
  EXPECT_TRUE(std::regex_match(d.tool_calls[0].id.value_or(""), std::regex("call_[0-9a-f]{24}")));
  EXPECT_EQ(d.tool_calls[0].arguments, "");
  d = p.feed("is</parameter>\n<parameter name=\"days\">");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_FALSE(d.tool_calls[0].name.has_value());
  EXPECT_EQ(d.tool_calls[0].arguments, R"({"location": "Paris")");
  d = p.feed("2</parameter>\n</inv");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, R"(, "days": 2)");
  d = p.feed("oke>\n");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "}");
  d = p.feed("</minimax:tool_call>\n\n");
  EXPECT_TRUE(d.empty()) << "whitespace after the block is not content";
  d = p.finish();
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(p.tool_calls().size(), 1u);
  EXPECT_EQ(p.tool_calls()[0].arguments, R"({"location": "Paris", "days": 2})");
}

TEST(ToolCallStream, PartialStartTagIsHeldThenReleased) {
  ToolCallIdGenerator ids(3);
  ToolCallStreamParser p(tools(), ids);
  EXPECT_EQ(p.feed("answer <minimax:to").content, "answer ");
  EXPECT_EQ(p.feed("ol").content, "");
  EXPECT_EQ(p.finish().content, "<minimax:tool");  // never became a tag
  ToolCallStreamParser q(tools(), ids);
  EXPECT_EQ(q.feed("a <minimax:").content, "a ");
  EXPECT_EQ(q.feed("nope>").content, "<minimax:nope>");
}

TEST(ToolCallStream, WhitespaceBetweenBlocksDroppedTextAfterKept) {
  Collected c = stream(
      "<minimax:tool_call><invoke name=\"get_weather\"></invoke></minimax:tool_call>\n \n"
      "<minimax:tool_call><invoke name=\"search_web\"><parameter name=\"limit\">5</parameter></invoke>"
      "</minimax:tool_call>\n  Done.",
      {});
  ASSERT_EQ(c.names.size(), 2u);
  EXPECT_EQ(c.arguments[0], "{}");
  EXPECT_EQ(c.arguments[1], R"({"limit": 5})");
  EXPECT_EQ(c.content, "\n  Done.");
}

TEST(ToolCallStream, BlockWithoutCallsIsContent) {
  Collected c = stream("x <minimax:tool_call>no invoke here</minimax:tool_call> y", {5, 20});
  EXPECT_TRUE(c.names.empty());
  EXPECT_EQ(c.content, "x <minimax:tool_call>no invoke here</minimax:tool_call> y");
}

TEST(ToolCallStream, TruncatedStreamClosesOpenCall) {
  Collected c = stream("<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"days\">4</parameter>"
                       "<parameter name=\"location\">Ro",
                       {30});
  ASSERT_EQ(c.names.size(), 1u);
  EXPECT_EQ(c.arguments[0], R"({"days": 4})");
  EXPECT_TRUE(c.content.empty());
  // Ended before any call header: the raw text comes back as content.
  Collected d = stream("Hmm <minimax:tool_call>\n<invoke name=\"get_wea", {});
  EXPECT_TRUE(d.names.empty());
  EXPECT_EQ(d.content, "Hmm <minimax:tool_call>\n<invoke name=\"get_wea");
}

TEST(ToolCallStream, BlockEndInsideInvokeClosesCall) {
  Collected c = stream("<minimax:tool_call><invoke name=\"get_weather\"><parameter name=\"days\">1</parameter>"
                       "</minimax:tool_call>after",
                       {});
  ASSERT_EQ(c.names.size(), 1u);
  EXPECT_EQ(c.arguments[0], R"({"days": 1})");
  EXPECT_EQ(c.content, "after");
}

TEST(ToolCallStream, RepeatedParameterKeepsItsFirstValue) {
  // Found by fuzz_tool_calls: the stream sent `{"days": 1, "days": 2}`, which strict clients refuse.
  // Both parsers keep the first value now (the stream cannot take it back).
  const std::string text =
      "<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"days\">1</parameter>\n"
      "<parameter name=\"location\">Paris</parameter>\n<parameter name=\"days\">2</parameter>\n</invoke>\n"
      "</minimax:tool_call>";
  ToolCallIdGenerator ids(1);
  EXPECT_EQ(parse_minimax_tool_calls(text, tools(), ids).tool_calls.at(0).arguments,
            R"({"days": 1, "location": "Paris"})");
  for (size_t cut = 0; cut <= text.size(); cut += 5) expect_same_as_non_streaming(text, {cut});
}

TEST(ToolCallStream, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  // Found by fuzz_tool_calls: a value with a stray byte made the arguments invalid JSON.
  const std::string text = "<minimax:tool_call><invoke name=\"get_weather\"><parameter name=\"location\">a\xbd"
                           "</parameter></invoke></minimax:tool_call>";
  ToolCallIdGenerator ids(1);
  const std::string args = parse_minimax_tool_calls(text, tools(), ids).tool_calls.at(0).arguments;
  EXPECT_EQ(args, "{\"location\": \"a\xEF\xBF\xBD\"}");
  EXPECT_TRUE(json::parse(args, nullptr, false).is_object());
  expect_same_as_non_streaming(text, {30, 60});
  // Two parameter names that differ only in bytes that are not UTF-8 are one key on the wire: the
  // first is kept (the stream had sent both, a duplicate key).
  const std::string names = "<minimax:tool_call><invoke name=\"f\xff\"><parameter name=\"k\xff\x87\">1</parameter>"
                            "<parameter name=\"k\xff\xff\">2</parameter></invoke></minimax:tool_call>";
  ToolCallIdGenerator ids2(1);
  const ToolCall call = parse_minimax_tool_calls(names, tools(), ids2).tool_calls.at(0);
  EXPECT_EQ(call.name, "f\xEF\xBF\xBD");
  EXPECT_EQ(call.arguments, "{\"k\xEF\xBF\xBD\xEF\xBF\xBD\": \"1\"}");  // unknown tool: text
  expect_same_as_non_streaming(names, {20, 50, 70});
}

TEST(ToolCallStream, FuzzNeverCrashesAndKeepsJsonValid) {
  // Random soup of tag fragments and text, random chunking: every streamed call must end up with
  // parseable arguments, and indices stay dense (checked in collect()).
  const char* pieces[] = {"<minimax:tool_call>", "</minimax:tool_call>", "<invoke name=", "\"get_weather\">",
                          "'search_web'>", "</invoke>", "<parameter name=", "\"days\">", "\"location\">",
                          "</parameter>", "12", "text", "\n", " ", "<", ">", "</", "\"", "東京", "null",
                          "<minimax:", "</inv", "<param", "{\"a\": [1]}"};
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos < text.size();) {
      pos += 1 + rng() % 9;
      if (pos < text.size()) cuts.push_back(pos);
    }
    Collected c = stream(text, cuts);
    for (const std::string& args : c.arguments) {
      json parsed = json::parse(args, nullptr, false);
      EXPECT_TRUE(parsed.is_object()) << "arguments '" << args << "' from input: " << text;
    }
    ToolCallIdGenerator ids(1);
    (void)parse_minimax_tool_calls(text, tools(), ids);  // must not throw either
  }
}

TEST(ToolCallIds, SeededGeneratorIsDeterministicAndWellFormed) {
  ToolCallIdGenerator a(42), b(42), c;
  EXPECT_EQ(a.next(), b.next());
  std::string id = c.next();
  EXPECT_TRUE(std::regex_match(id, std::regex("call_[0-9a-f]{24}"))) << id;
}

}  // namespace
}  // namespace mm::text
