// `mmrun bench` as a library call, built on the C API only (runtime_api.h + the measurement block
// of mm_runtime.h).
//
// Generation (the model card's llama-benchy table, per batch and depth, mean ± sd over --runs):
//   for each batch B and depth d: B sequences are prefilled with d random tokens (not timed);
//   then, per run, each sequence is cut back to d tokens and prefilled with --pp tokens (timed:
//   prefill tok/s = B·pp / the prefill time; TTFT = from the start of the batch's prefills to a
//   sequence's first token, as if the B requests arrived together and were prefilled one after
//   another, mean over the B), then the B sequences decode --tg steps together through
//   mm_session_decode (timed: decode tok/s = B·tg / the time, all sequences), greedy or with the
//   sampling of --temperature/--top-p/--top-k (seeded by --seed).
//   Rooflines, from figures measured in the same process before the sessions open:
//     decode: copy bandwidth (read + write bytes) / bytes read per token, where a step reads every
//       non-expert weight, one embedding row per sequence, the expected distinct experts
//       E·(1−(1−k/E)^B) of each layer and each sequence's KV cache at the decode's mean context
//       d + pp + tg/2; bytes per token = bytes per step / B;
//     prefill: the bf16 cuBLAS GEMM rate / FLOPs per token (linears with top_k experts + attention
//       over the mean context d + pp/2); "n/a" where cuBLAS cannot be loaded (and on the host).
//   A session is opened for the largest batch and depth; where that does not fit in device memory,
//   one per batch, without the depths that do not fit (reported as skipped).
//
// Load (--load): the page cache of the plan's shards is dropped (POSIX_FADV_DONTNEED, per file, no
//   root needed; the resident share is measured with mincore and reported), the shards are read
//   once as `cat` would (raw sequential rate), the cache is dropped again and a session loads the
//   weights; the load rate (shard bytes / load seconds) is reported next to the raw rate, per run.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace mm::rt {

struct BenchOptions {
  std::string plan;
  std::string weights;               // model directory, or "random"
  std::string device;                // "cuda", "host", or empty: cuda if usable
  std::vector<int64_t> batches = {1};
  std::vector<int64_t> depths = {0};
  int64_t pp = 2048;                 // prompt tokens timed per sequence
  int64_t tg = 32;                   // decode steps timed
  int runs = 3;
  bool json = false;                 // one JSON object on `out` instead of the tables
  bool load = false;                 // the load benchmark only (needs a weights directory)
  int threads = 0;                   // host backend threads; 0: every core
  int load_threads = 0;              // checkpoint reader threads; 0: the runtime's default
  std::string load_io;               // "auto" | "direct" | "buffered"; empty: auto
  uint64_t seed = 0;                 // random weights and token ids
  // Sampling of the first token and the decode steps (greedy by default). A server samples as its
  // requests ask (vLLM's default temperature is 1): --temperature/--top-p/--top-k time that path,
  // the SAMPLE kernel's radix selects over the vocabulary included.
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
};

// Parses "1,4,16" (spaces allowed) into non-negative integers; false with a message naming the
// bad item.
bool parse_size_list(const std::string& text, std::vector<int64_t>* values, std::string* error);

// Returns the exit code of design.md section 6 (0 ok, 1 bad input, 2 usage, 3 internal/device);
// the table (or JSON) goes to `out`, progress and messages to `err`.
int bench_command(const BenchOptions& options, std::ostream& out, std::ostream& err);

}  // namespace mm::rt
