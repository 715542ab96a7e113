// `mmrun generate` as a library call (tools/mmrun is a thin main over it): load and verify the
// plan, bind weights (a checkpoint directory or random), run prefill + decode on a backend,
// print the result, optionally dump the logits of every step as .npy.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace mm::rt {

struct GenerateOptions {
  std::string plan;
  std::string weights;            // model directory, or "random"
  std::string device;             // "cuda", "host", or empty: cuda if usable, else host
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> force_ids;  // teacher forcing: fed instead of the sampled tokens
  int64_t max_new_tokens = 32;
  float temperature = 0.0f;       // <= 0: greedy
  float top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  bool print_ids = false;
  bool ignore_eos = false;
  std::string dump_logits;        // .npy path
  int64_t max_seq_len = 0;        // 0: prompt + new tokens, capped by the plan
  int threads = 0;                // host backend threads; 0: all cores
};

// Returns the exit code of design.md section 6 (0 ok, 1 bad input, 2 usage, 3 internal/device);
// results go to `out` (the ids as a JSON array with print_ids, else the ids space-separated),
// messages and timings to `err`.
int generate_command(const GenerateOptions& options, std::ostream& out, std::ostream& err);

// Parses "1,2,3" (spaces allowed); false with a message naming the bad item.
bool parse_id_list(const std::string& text, std::vector<int32_t>* ids, std::string* error);

// Whether a CUDA device can be opened through libcuda (dlopen; no link dependency).
bool cuda_device_present();

}  // namespace mm::rt
