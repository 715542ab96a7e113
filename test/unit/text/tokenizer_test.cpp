// mm_tokenizer against goldens made by Hugging Face `tokenizers` (test/inputs/tokenizer/
// make_goldens.py) for five tokenizer.json files with different pipelines, plus decoding,
// streaming, NFC, hostile files and the `tokenize` command.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode_nfc.h"
#include "runtime/tokenizer/utf8.h"
#include "support/file_util.h"
#include "test/unit/temp_path.h"

using mm::text::StreamDecoder;
using mm::text::Tokenizer;
using nlohmann::json;

namespace {

const std::string kDir = std::string(MM_SOURCE_DIR) + "/test/inputs/tokenizer/";
const std::vector<std::string> kFixtures = {"minimax-tiny", "minimax-full", "gpt2-variant", "llama3-variant",
                           "nfc-variant"};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const json& goldens() {
  static const json g = json::parse(read_file(kDir + "goldens.json"));
  return g;
}

const Tokenizer& fixture(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    auto t = Tokenizer::load(kDir + name + "/tokenizer.json");
    if (!t) ADD_FAILURE() << t.error().message;
    it = cache.emplace(name, std::make_unique<Tokenizer>(std::move(t.value()))).first;
  }
  return *it->second;
}

std::vector<int32_t> as_ids(const json& j) { return j.get<std::vector<int32_t>>(); }

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, EncodeMatchesHuggingFace) {
  const Tokenizer& tok = fixture(GetParam());
  const json& corpus = goldens()["corpus"];
  const json& cases = goldens()["fixtures"][GetParam()];
  ASSERT_EQ(corpus.size(), cases.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    std::string text = corpus[i].get<std::string>();
    EXPECT_EQ(tok.encode(text).value(), as_ids(cases[i]["ids"])) << "corpus[" << i << "]: " << text;
    EXPECT_EQ(tok.encode(text, /*parse_special=*/false).value(), as_ids(cases[i]["ids_no_special"]))
        << "corpus[" << i << "] (special tokens as text): " << text;
  }
}

TEST_P(Golden, DecodeMatchesHuggingFace) {
  const Tokenizer& tok = fixture(GetParam());
  const json& cases = goldens()["fixtures"][GetParam()];
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int32_t> ids = as_ids(cases[i]["ids"]);
    EXPECT_EQ(tok.decode(ids), cases[i]["decode"].get<std::string>()) << "corpus[" << i << "]";
    EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), cases[i]["decode_skip"].get<std::string>())
        << "corpus[" << i << "]";
  }
}

TEST_P(Golden, StreamingEqualsDecodeAndNeverSplitsCharacters) {
  const Tokenizer& tok = fixture(GetParam());
  const json& cases = goldens()["fixtures"][GetParam()];
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int32_t> ids = as_ids(cases[i]["ids"]);
    for (bool skip : {false, true}) {
      StreamDecoder sd(tok, skip);
      std::string all;
      for (int32_t id : ids) {
        std::string piece = sd.push(id);
        EXPECT_TRUE(mm::text::utf8_valid(piece)) << "corpus[" << i << "] id " << id;
        all += piece;
      }
      all += sd.flush();
      EXPECT_EQ(all, tok.decode(ids, skip)) << "corpus[" << i << "] skip=" << skip;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Tokenizer, RoundTripsTheCorpus) {
  const json& corpus = goldens()["corpus"];
  for (const char* name : {"minimax-tiny", "minimax-full", "llama3-variant"}) {
    const Tokenizer& tok = fixture(name);
    for (const auto& t : corpus) {
      std::string text = t.get<std::string>();
      EXPECT_EQ(tok.decode(tok.encode(text).value()), text) << name;
      EXPECT_EQ(tok.decode(tok.encode(text, false).value()), text) << name;
    }
  }
}

TEST(Tokenizer, MiniMaxAddedTokenIds) {
  const Tokenizer& tiny = fixture("minimax-tiny");
  const Tokenizer& full = fixture("minimax-full");
  struct {
    const char* text;
    int32_t id;
    bool special;
  } want[] = {{"]!p~[", 200000, true},  {"]~b]", 200019, true},     {"[e~[", 200020, true},
              {"]!d~[", 200021, true},  {"]~!b[", 200034, true},    {"<think>", 200050, false},
              {"</think>", 200051, false}, {"<minimax:tool_call>", 200052, false},
              {"</minimax:tool_call>", 200053, false}};
  for (auto& w : want) {
    EXPECT_EQ(full.token_id(w.text), w.id) << w.text;
    EXPECT_EQ(tiny.token_id(w.text), w.id - 200000 + 2000) << w.text;
    EXPECT_EQ(full.is_special(w.id), w.special) << w.text;
    EXPECT_EQ(full.id_to_token(w.id), std::string(w.text));
  }
  EXPECT_EQ(tiny.vocab_size(), 2054);
  EXPECT_EQ(full.vocab_size(), 200054);
  EXPECT_EQ(tiny.token_id("Ġthe").has_value(), true);
  EXPECT_FALSE(tiny.token_id("no such token").has_value());
  // Special tokens are single ids; skip_special drops them but keeps <think>.
  std::vector<int32_t> ids = full.encode("]~!b[]~b]ai\n<think>\nhm</think>ok[e~[").value();
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 200034);
  EXPECT_EQ(ids[1], 200019);
  EXPECT_EQ(ids.back(), 200020);
  EXPECT_EQ(full.decode(ids, true), "ai\n<think>\nhm</think>ok");
}

TEST(StreamDecoder, HoldsMultiByteCharactersSplitAcrossTokens) {
  const Tokenizer& tok = fixture("minimax-tiny");
  // Byte tokens of U+00E9 (C3 A9) and U+1F600 (F0 9F 98 80), spelled in the byte alphabet.
  auto id = [&](const char* s) {
    auto v = tok.token_id(s);
    EXPECT_TRUE(v.has_value()) << s;
    return v.value_or(-1);
  };
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push(id("Ã")), "");
  EXPECT_EQ(sd.push(id("©")), "é");
  EXPECT_EQ(sd.push(id("ð")), "");
  EXPECT_EQ(sd.push(id("Ł")), "");
  EXPECT_EQ(sd.push(id("ĺ")), "");
  EXPECT_EQ(sd.push(id("Ģ")), "\xF0\x9F\x98\x80");
  EXPECT_EQ(sd.push(id("a")), "a");
  // A character cut off at the end comes out as U+FFFD on flush, like decode.
  EXPECT_EQ(sd.push(id("ä")), "");  // E4: lead byte of a 3-byte sequence
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  std::vector<int32_t> cut{id("ä"), id("a")};
  EXPECT_EQ(tok.decode(cut), "\xEF\xBF\xBD" "a");
  StreamDecoder sd2(tok);
  EXPECT_EQ(sd2.push(cut[0]), "");
  EXPECT_EQ(sd2.push(cut[1]), "\xEF\xBF\xBD" "a");  // known invalid once 'a' arrives
  EXPECT_EQ(sd2.flush(), "");
}

TEST(StreamDecoder, RealTokensSplitCharacters) {
  // In the tiny vocab rare CJK/emoji are spelled with several byte tokens: streaming must hold
  // at least once and still produce the whole text.
  const Tokenizer& tok = fixture("minimax-tiny");
  std::string text = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🪿🫠 鑫龘";
  std::vector<int32_t> ids = tok.encode(text).value();
  StreamDecoder sd(tok);
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    std::string p = sd.push(id);
    if (p.empty()) ++held;
    EXPECT_TRUE(mm::text::utf8_valid(p));
    all += p;
  }
  all += sd.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(held, 0);
}

TEST(Tokenizer, InvalidUtf8InputIsReplaced) {
  const Tokenizer& tok = fixture("minimax-tiny");
  std::string bad = std::string("ok\xFF") + "x\xE4\xB8";
  EXPECT_EQ(tok.decode(tok.encode(bad).value()), "ok\xEF\xBF\xBDx\xEF\xBF\xBD");
}

TEST(Tokenizer, LongInputs) {
  const Tokenizer& tok = fixture("minimax-tiny");
  for (const std::string& s : {std::string(1 << 20, ' '), std::string(200000, '7'),
                               std::string(300000, 'q'), std::string(100000, '\n') + "x"}) {
    std::vector<int32_t> ids = tok.encode(s).value();
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids), s);
  }
}

TEST(Tokenizer, ThreadSafeEncode) {
  const Tokenizer& tok = fixture("minimax-full");
  const json& corpus = goldens()["corpus"];
  const json& cases = goldens()["fixtures"]["minimax-full"];
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = 0; i < corpus.size(); ++i)
          if (tok.encode(corpus[i].get<std::string>()).value() != as_ids(cases[i]["ids"])) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Nfc, KnownCompositions) {
  using mm::text::nfc;
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("\u212b"), "\u00c5");                    // singleton decomposition
  EXPECT_EQ(nfc("\u1e0b\u0323"), "\u1e0d\u0307");        // reordering then composition
  EXPECT_EQ(nfc("\u1100\u1161\u11a8"), "\uac01");        // Hangul LVT
  EXPECT_EQ(nfc("\u0344"), "\u0308\u0301");              // non-starter decomposition
  EXPECT_EQ(nfc("\u0958"), "\u0915\u093c");              // composition exclusion
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
}

// --- hostile tokenizer.json -------------------------------------------------------------------

std::string tiny_json() { return read_file(kDir + "minimax-tiny/tokenizer.json"); }

void expect_error(const json& j, const std::string& needle) {
  auto t = Tokenizer::from_json(j.dump(), "bad.json");
  ASSERT_FALSE(t.ok()) << "accepted a tokenizer that should mention " << needle;
  EXPECT_NE(t.error().message.find(needle), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("bad.json"), std::string::npos) << t.error().message;
  EXPECT_EQ(t.error().exit_code(), 1);
}

TEST(Hostile, NotJson) {
  auto t = Tokenizer::from_json("{\"model\": ", "bad.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("not valid JSON"), std::string::npos);
  EXPECT_FALSE(Tokenizer::from_json("[1,2]", "bad.json").ok());
  auto missing = Tokenizer::load("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/tokenizer.json"), std::string::npos);
}

TEST(Hostile, NamesTheKey) {
  const json base = json::parse(tiny_json());
  auto with = [&](auto edit) {
    json j = base;
    edit(j);
    return j;
  };
  expect_error(with([](json& j) { j.erase("model"); }), "model: missing");
  expect_error(with([](json& j) { j["model"]["type"] = "Unigram"; }), "model.type");
  expect_error(with([](json& j) { j["model"]["vocab"] = json::array(); }), "model.vocab");
  expect_error(with([](json& j) { j["model"]["vocab"]["x"] = -3; }), "model.vocab[\"x\"]");
  expect_error(with([](json& j) { j["model"]["vocab"]["x"] = "seven"; }), "model.vocab[\"x\"]");
  expect_error(with([](json& j) { j["model"].erase("merges"); }), "model.merges");
  expect_error(with([](json& j) { j["model"]["merges"][3] = 17; }), "model.merges[3]");
  expect_error(with([](json& j) { j["model"]["merges"][5] = "a b c"; }), "model.merges[5]");
  expect_error(with([](json& j) { j["model"]["merges"][0] = json::array({"zz", "q"}); }),
               "model.merges[0]");
  expect_error(with([](json& j) { j["model"]["dropout"] = 0.1; }), "model.dropout");
  expect_error(with([](json& j) { j["model"]["unk_token"] = "<nope>"; }), "model.unk_token");
  expect_error(with([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }),
               "model.continuing_subword_prefix");
  expect_error(with([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }), "normalizer.type");
  expect_error(with([](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }), "normalizer.type");
  expect_error(with([](json& j) {
                 j["normalizer"] = {{"type", "Sequence"},
                                    {"normalizers", json::array({{{"type", "Replace"}}})}};
               }),
               "normalizer.normalizers[0].pattern");
  expect_error(with([](json& j) {
                 j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([unclosed";
               }),
               "pre_tokenizer.pretokenizers[0].pattern.Regex");
  expect_error(with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Shuffle"; }),
               "pre_tokenizer.pretokenizers[0].behavior");
  expect_error(with([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Metaspace"; }),
               "pre_tokenizer.pretokenizers[1].type");
  expect_error(with([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = "yes"; }),
               "pre_tokenizer.pretokenizers[1].use_regex");
  expect_error(with([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }), "decoder.type");
  expect_error(with([](json& j) { j["added_tokens"] = 5; }), "added_tokens");
  expect_error(with([](json& j) { j["added_tokens"][2].erase("content"); }), "added_tokens[2].content");
  expect_error(with([](json& j) { j["added_tokens"][2]["id"] = "x"; }), "added_tokens[2].id");
  expect_error(with([](json& j) { j["added_tokens"][2]["lstrip"] = 1; }), "added_tokens[2].lstrip");
  expect_error(with([](json& j) { j["added_tokens"][2]["id"] = 5; }), "added_tokens[2].id");
  expect_error(with([](json& j) { j["added_tokens"][3]["content"] = "]!p~["; }),
               "added_tokens[3].content");
}

TEST(Hostile, NoUnsupportedPieceIsSilentlyIgnored) {
  // Each of these would change the ids HF produces if ignored; all must be refused.
  json j = json::parse(tiny_json());
  j["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_FALSE(Tokenizer::from_json(j.dump()).ok());
  j = json::parse(tiny_json());
  j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", true}};
  EXPECT_FALSE(Tokenizer::from_json(j.dump()).ok());
}

TEST(Hostile, DeepNestingIsRefused) {
  // Built as text: nlohmann's own copy/dump recurse, the parser does not.
  std::string text = tiny_json();
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += R"({"type":"Sequence","normalizers":[)";
  deep += R"({"type":"NFC"})";
  for (int i = 0; i < 20000; ++i) deep += "]}";
  size_t at = text.find("\"normalizer\": null");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::strlen("\"normalizer\": null"), "\"normalizer\": " + deep);
  auto t = Tokenizer::from_json(text, "bad.json");
  ASSERT_FALSE(t.ok());
  // Refused by the strict JSON parser (mm::kMaxJsonDepth) before the normalizer parser recurses.
  EXPECT_NE(t.error().message.find("nesting deeper than"), std::string::npos) << t.error().message;
}

// A Split regex PCRE2 gives up on (issue 13): recursion at one position, a pattern that refuses
// JIT, catastrophic backtracking over a long text. Encoding fails with an error naming the file
// and the pattern, quickly, instead of an uncaught exception (abort) or hours of backtracking.
TEST(Hostile, RegexThatGivesUpIsAnError) {
  struct Case {
    const char* pattern;
    std::string text;
    const char* reason;
  };
  std::string long_text;
  for (int i = 0; i < 3000; ++i) long_text += "ab ";
  long_text += "!";
  const Case cases[] = {
      {"(?R)", "hello world", "recursion"},
      {"(?:\\w+\\s?)+$", long_text, "match limit"},
  };
  for (const Case& c : cases) {
    json j = json::parse(tiny_json());
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = c.pattern;
    auto t = Tokenizer::from_json(j.dump(), "hostile.json");
    ASSERT_TRUE(t.ok()) << t.error().message;
    const auto t0 = std::chrono::steady_clock::now();
    auto ids = t->encode(c.text);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0) << c.pattern;
    ASSERT_FALSE(ids.ok()) << c.pattern;
    const std::string& msg = ids.error().message;
    EXPECT_EQ(ids.error().exit_code(), 1);
    EXPECT_NE(msg.find("hostile.json: pre_tokenizer.pretokenizers[0].pattern.Regex"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.reason), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot be tokenized"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("hostile.json: hostile.json"), std::string::npos) << msg;
  }
}

TEST(Hostile, PatternThatRefusesJitStillMatches) {
  // (*NO_JIT) makes pcre2_jit_compile succeed without code; pcre2_jit_match then always failed.
  json j = json::parse(tiny_json());
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(*NO_JIT)\\s+";
  auto t = Tokenizer::from_json(j.dump(), "nojit.json");
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto ids = t->encode("hello world  again");
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_EQ(t->decode(*ids), "hello world  again");
}

TEST(Hostile, ReplaceNormalizerThatGivesUpIsAnError) {
  json j = json::parse(tiny_json());
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "(?R)"}}}, {"content", "x"}};
  auto t = Tokenizer::from_json(j.dump(), "norm.json");
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto ids = t->encode("hello");
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.error().message.find("norm.json: normalizer.pattern.Regex"), std::string::npos) << ids.error().message;
  // The normalizer also runs over the added tokens marked normalized, at load: refused there.
  j["added_tokens"][0]["normalized"] = true;
  t = Tokenizer::from_json(j.dump(), "norm.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("norm.json: normalizer.pattern.Regex"), std::string::npos) << t.error().message;
}

TEST(Hostile, TokenizerFileOverTheLimitIsNotRead) {
  // A sparse file one byte over the limit: refused from its size, not read.
  const std::string dir = mm::test::temp_path("tokenizer_limit");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/tokenizer.json";
  { std::ofstream f(path); }
  std::filesystem::resize_file(path, mm::kMaxTokenizerFileBytes + 1);
  auto t = Tokenizer::load(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("more than the " + std::to_string(mm::kMaxTokenizerFileBytes) + "-byte limit"),
            std::string::npos)
      << t.error().message;
}

TEST(Hostile, MutatedFilesNeverCrash) {
  // Deterministic single-byte corruptions of a valid file: each must load or fail cleanly, and a
  // file that loads must encode and decode.
  const std::string base = tiny_json();
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const char repl[] = "{}[]\":,0-9aZ \\";
  int loaded = 0, refused = 0;
  for (int k = 0; k < 120; ++k) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::string s = base;
    // Bias towards the structural head of the file (added tokens, pipeline) and the merges.
    size_t pos = (k % 2 ? x % 6000 : x % s.size());
    s[pos] = repl[(x >> 32) % (sizeof repl - 1)];
    auto t = Tokenizer::from_json(s, "mutated.json");
    if (t.ok()) {
      ++loaded;
      std::vector<int32_t> ids = t->encode("Hello ]~!b[ wörld 123 😀").value();
      (void)t->decode(ids);
    } else {
      ++refused;
      EXPECT_NE(t.error().message.find("mutated.json"), std::string::npos);
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(loaded + refused, 120);
}

TEST(Tokenizer, UnknownIdsAreDropped) {
  const Tokenizer& tok = fixture("minimax-tiny");
  std::vector<int32_t> ids{-1, 39, 999999, 2060};
  EXPECT_EQ(tok.decode(ids), tok.decode(std::vector<int32_t>{39}));
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.push(-5), "");
  EXPECT_EQ(sd.flush(), "");
}

TEST(TokenizeCommand, PrintsJsonIds) {
  std::ostringstream out, err;
  EXPECT_EQ(mm::text::tokenize_command(kDir + "minimax-tiny", "]~!b[hi", out, err), 0);
  json ids = json::parse(out.str());
  ASSERT_TRUE(ids.is_array());
  EXPECT_EQ(ids[0], 2034);
  EXPECT_EQ(ids.get<std::vector<int32_t>>(), fixture("minimax-tiny").encode("]~!b[hi").value());
  EXPECT_EQ(out.str().back(), '\n');
  std::ostringstream out2, err2;
  EXPECT_EQ(mm::text::tokenize_command("/nonexistent-model", "x", out2, err2), 1);
  EXPECT_TRUE(out2.str().empty());
  EXPECT_NE(err2.str().find("/nonexistent-model"), std::string::npos);
}

}  // namespace
