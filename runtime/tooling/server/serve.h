// `mmrun serve PLAN --weights DIR|random ...`: an OpenAI-compatible server, a drop-in for the
// model card's `vllm serve` line (docs/server.md). Loads the plan, the tokenizer and the weights,
// opens one session with --max-num-seqs slots, runs the scheduler's engine thread and the HTTP
// server until SIGTERM or SIGINT: the first signal stops taking requests, lets the accepted ones
// finish (their answers are written out) and exits 0; a second one cancels what is left.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "runtime/tooling/server/serve_options.h"

namespace mm::rt::server {

// Returns the exit code of design.md section 6. `notices`: lines to print first (ignored vLLM
// flags). Progress and the listening address go to `err`.
int serve_command(ServeOptions options, const std::vector<std::string>& notices, std::ostream& err);

}  // namespace mm::rt::server
