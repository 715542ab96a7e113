// `mmrun generate` as a library call (tools/mmrun is a thin main over it): load and verify the
// plan, bind weights (a checkpoint directory or random), run prefill + decode on a backend,
// print the result, optionally dump the logits of every step as .npy. Text in/out (--prompt,
// --chat) and `mmrun chat` live in chat_loop.h and share open_model() below.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/tooling/runtime_api.h"
#include "support/status.h"

namespace mm::rt {

// Ranges of the numeric flags of generate and chat (docs/cli.md). 2^24 tokens is the longest
// sequence mmc compile accepts (--max-seq-len), so no run can use more.
inline constexpr int64_t kMaxTokensFlag = int64_t{1} << 24;
inline constexpr float kMaxTemperature = 100.0f;

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

  // Text mode (chat_loop.h). prompt_text set: --prompt, encoded with the model's tokenizer.
  std::optional<std::string> prompt_text;
  bool chat = false;                 // render the prompt as a one-turn MiniMax-M2 conversation
  std::vector<std::string> stop;     // --stop strings (not printed)
  std::string tokenizer_dir;         // --tokenizer: where tokenizer.json is (default: --weights)
  std::optional<std::string> system; // --system: system message (default: the template's)
  std::string tools_file;            // --tools: JSON array of OpenAI tools
  bool verbose = false;              // per-answer statistics on stderr (chat)
};

// A session over one plan on the backend the options ask for (mm_session_init). max_seq_len 0:
// the plan's limit on the host; on cuda as much as memory allows (capped by the plan).
Expected<std::unique_ptr<ApiSession>> open_model(const ApiPlan& plan, const GenerateOptions& options,
                                                 int64_t max_seq_len, int64_t max_seqs = 1);

// Every numeric option within its range (Usage errors worded in flag terms: "--threads 5000 is
// outside [0, 1024]"). `chat`: --max-new-tokens must be positive.
Status check_generate_options(const GenerateOptions& options, bool chat);

// Returns the exit code of design.md section 6 (0 ok, 1 bad input, 2 usage, 3 internal/device);
// results go to `out` (the ids as a JSON array with print_ids, else the ids space-separated),
// messages and timings to `err`.
int generate_command(const GenerateOptions& options, std::ostream& out, std::ostream& err);

// The KV capacity of one sequence: --max-seq-len (`requested`, 0 = unset) within the plan's limit,
// else prompt + new tokens capped by the plan; refuses a prompt that does not fit.
Expected<int64_t> resolve_max_seq_len(const mm_plan_info& plan, int64_t requested, int64_t prompt_len,
                                      int64_t new_tokens);

// Parses "1,2,3" (spaces allowed); false with a message naming the bad item.
bool parse_id_list(const std::string& text, std::vector<int32_t>* ids, std::string* error);

}  // namespace mm::rt
