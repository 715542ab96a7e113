// The whole checkpoint reader (models/common/checkpoint.h) and `mmc check`'s report on a model
// directory made of three input parts: config.json, model.safetensors.index.json (absent when
// empty: then the shard is the single-file model.safetensors) and the header JSON of the shard
// model-00001-of-00001.safetensors, whose data region is 16 MiB of zeros (a hole).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "models/common/check_report.h"
#include "models/common/checkpoint.h"
#include "test/fuzz/fuzz_util.h"

namespace {

std::string g_dir;

void write_file(const std::string& path, std::string_view bytes, uint64_t zeros = 0) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (zeros && ::truncate(path.c_str(), static_cast<off_t>(bytes.size() + zeros)) != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/mm-fuzz-checkpoint-XXXXXX";
  if (!::mkdtemp(templ.data())) std::abort();
  g_dir = templ;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mm::fuzz::split_input(data, size, 3);
  write_file(g_dir + "/config.json", parts[0]);
  const std::string index = g_dir + "/model.safetensors.index.json";
  const std::string sharded = g_dir + "/model-00001-of-00001.safetensors", single = g_dir + "/model.safetensors";
  ::unlink(index.c_str());
  ::unlink(sharded.c_str());
  ::unlink(single.c_str());
  if (!parts[1].empty()) write_file(index, parts[1]);
  std::string shard;
  const uint64_t n = parts[2].size();
  for (int i = 0; i < 8; ++i) shard.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  shard.append(parts[2]);
  write_file(parts[1].empty() ? single : sharded, shard, uint64_t{16} << 20);

  std::ostringstream out, err;
  const int rc = mm::check_command(g_dir, out, err);
  FUZZ_CHECK(rc == 0 || rc == 1);
  FUZZ_CHECK(rc == 0 || !err.str().empty());
  return 0;
}
