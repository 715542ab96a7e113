// Reasoning / answer split of model output (runtime/chat/reasoning_parser.h): the streamed deltas,
// with the input cut where its first byte says, concatenate to the non-streaming split, and the
// append-think stream to append_think().
#include <cstdint>
#include <string>

#include "runtime/chat/reasoning_parser.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto cuts = mm::fuzz::cuts_for(text.size(), data[0]);

  mm::text::ReasoningStreamParser p;
  mm::text::AppendThinkStream a;
  std::string reasoning, content, appended;
  size_t prev = 0;
  auto feed = [&](std::string_view chunk) {
    const mm::text::ReasoningDelta d = p.feed(chunk);
    reasoning += d.reasoning;
    content += d.content;
    appended += a.feed(chunk);
  };
  for (size_t cut : cuts) {
    feed(text.substr(prev, cut - prev));
    prev = cut;
  }
  feed(text.substr(prev));
  const mm::text::ReasoningDelta d = p.finish();
  reasoning += d.reasoning;
  content += d.content;

  const mm::text::ReasoningSplit want = mm::text::split_reasoning(text);
  FUZZ_CHECK(reasoning == want.reasoning);
  FUZZ_CHECK(content == want.content.value_or(""));
  FUZZ_CHECK(p.reasoning_done() == (text.find("</think>") != std::string_view::npos));
  if (!text.empty()) FUZZ_CHECK(appended == mm::text::append_think(text));
  return 0;
}
