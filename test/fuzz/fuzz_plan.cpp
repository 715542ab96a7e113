// The plan reader and verifier (runtime/src/plan_reader.h, through its public
// load_plan_from_memory) and mm-inspect's printer. An input that passes the flatbuffer verifier is
// sealed with its checksum first, so that mutations reach the semantic checks behind it instead of
// stopping at "checksum does not match"; a plan that loads is printed as text and as JSON.
#include <cstdint>
#include <cstring>
#include <sstream>
#include <vector>

#include "runtime/schemas/plan_checksum.h"
#include "runtime/src/plan_reader.h"
#include "runtime/tooling/inspect.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mm::fuzz::MemFile file("plan");
  std::vector<uint8_t> buf(data, data + size);
  if (size >= 8 && flatbuffers::BufferHasIdentifier(buf.data(), mm::plan::PlanDefIdentifier())) {
    flatbuffers::Verifier v(buf.data(), size);
    if (mm::plan::VerifyPlanDefBuffer(v)) mm::plan::seal_plan(buf.data(), size);
  }
  auto plan = mm::rt::load_plan_from_memory(buf.data(), buf.size(), "fuzz.mmp");
  if (!plan) {
    FUZZ_CHECK(!plan.error().message.empty());
    return 0;
  }
  const std::string& path = file.set(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
  for (bool json : {false, true}) {
    std::ostringstream out, err;
    FUZZ_CHECK(mm::rt::inspect_command(path, json, out, err) == 0);
  }
  return 0;
}
