// The Python-compatible JSON/text forms used by the chat template and the tool-call parser.
// Expected strings are what CPython 3.11 prints (repr / json.dumps(ensure_ascii=False)).
#include "runtime/chat/python_json.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace mm::text {
namespace {

using json = nlohmann::ordered_json;

TEST(PythonJson, FloatReprMatchesPython) {
  struct Case {
    double value;
    const char* repr;
  } cases[] = {
      {0.0, "0.0"},         {-0.0, "-0.0"},
      {1.0, "1.0"},         {100.0, "100.0"},
      {0.1, "0.1"},         {1.0 / 3.0, "0.3333333333333333"},
      {0.0001, "0.0001"},   {1e-05, "1e-05"},
      {2.5e-07, "2.5e-07"}, {1e15, "1000000000000000.0"},
      {1e16, "1e+16"},      {1.5e300, "1.5e+300"},
      {123456789.123, "123456789.123"}, {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {123456789012345680.0, "1.2345678901234568e+17"},
      {9007199254740993.0, "9007199254740992.0"},  // rounds to the double below
  };
  for (const Case& c : cases) EXPECT_EQ(python_float_repr(c.value, true), c.repr) << c.repr;
}

TEST(PythonJson, NonFiniteFloats) {
  double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(python_float_repr(inf, true), "Infinity");
  EXPECT_EQ(python_float_repr(-inf, true), "-Infinity");
  EXPECT_EQ(python_float_repr(std::nan(""), true), "NaN");
  EXPECT_EQ(python_float_repr(inf, false), "inf");
  EXPECT_EQ(python_float_repr(std::nan(""), false), "nan");
}

TEST(PythonJson, DumpsUsesPythonSeparatorsAndKeepsOrder) {
  json v = json::parse(R"({"z": 1, "a": [1, 2.5, "x", null, true, {}, []], "m": {"k": false}})");
  EXPECT_EQ(dumps(v), R"({"z": 1, "a": [1, 2.5, "x", null, true, {}, []], "m": {"k": false}})");
}

TEST(PythonJson, DumpsEscapesLikeEnsureAsciiFalse) {
  // HTML-sensitive characters and "/" stay raw (transformers' tojson is plain json.dumps);
  // non-ASCII stays raw; C0 controls use \uXXXX in lowercase hex; DEL is raw.
  json v = std::string("<a href='x'>&amp;</a> / 東京 🚀 \"q\" \\ \n\r\t\b\f \x01 \x1f \x7f");
  EXPECT_EQ(dumps(v), "\"<a href='x'>&amp;</a> / 東京 🚀 \\\"q\\\" \\\\ \\n\\r\\t\\b\\f \\u0001 \\u001f \x7f\"");
}

TEST(PythonJson, DumpsLargeIntegers) {
  EXPECT_EQ(dumps(json::parse("18446744073709551615")), "18446744073709551615");
  EXPECT_EQ(dumps(json::parse("-9223372036854775808")), "-9223372036854775808");
}

TEST(PythonJson, DumpsOnlyValidUtf8) {
  // A tool-call argument is JSON for the client: bytes that are not UTF-8 (found by
  // fuzz_tool_calls) become U+FFFD, one per byte; well-formed text of every length passes as is.
  EXPECT_EQ(dumps(json(std::string("a\xbd" "b"))), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(dumps(json(std::string("\xC0\xAF\xED\xA0\x80!"))),
            "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!\"");  // overlong, surrogate
  EXPECT_EQ(dumps(json("é東🗼")), "\"é東🗼\"");
  EXPECT_EQ(dumps(json(std::string("\xF0\x9F\x97"))), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // truncated
}

TEST(PythonJson, DumpsAnyDepthWithoutRecursion) {
  // A model's tool-call argument (or a tools schema) nested a million deep: dumps() used to recurse
  // once per level and overflow the stack (issue 13). nlohmann's parser and destructor are
  // iterative, so only dumps() had to change.
  constexpr int kDepth = 1000000;
  const std::string text = std::string(kDepth, '[') + "{\"k\": 1}" + std::string(kDepth, ']');
  const json deep = json::parse(text);
  EXPECT_EQ(dumps(deep), text);
  EXPECT_EQ(dumps(json::parse(R"({"a": [1, {"b": []}, {}], "c": {"d": [[]]}})")),
            R"({"a": [1, {"b": []}, {}], "c": {"d": [[]]}})");
}

TEST(PythonJson, TemplateTextOfScalars) {
  EXPECT_EQ(*to_template_text(json(nullptr), "x"), "None");
  EXPECT_EQ(*to_template_text(json(true), "x"), "True");
  EXPECT_EQ(*to_template_text(json(false), "x"), "False");
  EXPECT_EQ(*to_template_text(json(5), "x"), "5");
  EXPECT_EQ(*to_template_text(json(1e-05), "x"), "1e-05");
  EXPECT_EQ(*to_template_text(json("s"), "x"), "s");
  auto bad = to_template_text(json::array({1}), "messages[3].content");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("messages[3].content"), std::string::npos);
}

TEST(PythonJson, Truthiness) {
  EXPECT_FALSE(python_truthy(json(nullptr)));
  EXPECT_FALSE(python_truthy(json("")));
  EXPECT_FALSE(python_truthy(json(0)));
  EXPECT_FALSE(python_truthy(json(0.0)));
  EXPECT_FALSE(python_truthy(json::array()));
  EXPECT_FALSE(python_truthy(json::object()));
  EXPECT_TRUE(python_truthy(json(" ")));
  EXPECT_TRUE(python_truthy(json(-1)));
  EXPECT_TRUE(python_truthy(json::array({0})));
}

TEST(PythonJson, StripUsesPythonWhitespace) {
  EXPECT_EQ(python_strip(" \t\n x y \r\n"), "x y");
  EXPECT_EQ(python_strip("\u3000\u00a0value\u2028\x1c"), "value");
  EXPECT_EQ(python_strip("\u200bzero-width\u200b"), "\u200bzero-width\u200b");  // not isspace()
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip(std::string_view("\xff x \xc3", 5)), std::string_view("\xff x \xc3", 5));
}

}  // namespace
}  // namespace mm::text
