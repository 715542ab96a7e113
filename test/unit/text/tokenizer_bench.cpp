// Tokenizer throughput (not run by ctest). Usage:
//   tokenizer_bench [TOKENIZER_JSON] [MEGABYTES]
// Encodes two English-like texts of MEGABYTES each on one thread and prints MB/s:
//   "prose": real English paragraphs repeated (warm merge cache, like long documents);
//   "zipf":  words drawn from a 50,000-word synthetic lexicon with Zipf frequencies (many cache
//            misses: a pessimistic case).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace {

const char* kProse =
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the "
    "season of Light, it was the season of Darkness. We had everything before us, we had nothing "
    "before us; we were all going direct to Heaven, we were all going direct the other way.\n"
    "The mixture-of-experts layer routes each token to 8 of 192 experts. Its router computes a "
    "sigmoid score per expert, adds a learned bias for selection only, and renormalizes the "
    "chosen weights. In 2025, models with 230B parameters ran on a single 8-GPU node at 1,200 "
    "tokens per second; don't expect that on a laptop, though it's getting closer every year.\n";

std::string prose(size_t bytes) {
  std::string s;
  while (s.size() < bytes) s += kProse;
  return s;
}

std::string zipf(size_t bytes) {
  std::mt19937 rng(42);
  const char* syl[] = {"th", "e", "an", "re", "ing", "on", "at", "er", "st", "ou", "pl", "ex",
                       "ti", "co", "mo", "de", "ly", "ma", "ch", "wo", "ra", "si", "ve", "un"};
  std::vector<std::string> lex;
  for (int i = 0; i < 50000; ++i) {
    std::string w;
    int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) w += syl[rng() % 24];
    if (rng() % 10 == 0) w[0] = static_cast<char>(w[0] - 32);
    lex.push_back(w);
  }
  std::vector<double> weights(lex.size());
  for (size_t i = 0; i < lex.size(); ++i) weights[i] = 1.0 / static_cast<double>(i + 1);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::string s;
  const char* punct[] = {" ", " ", " ", " ", " ", ", ", ". ", ".\n", "; ", " ", " "};
  while (s.size() < bytes) {
    s += lex[pick(rng)];
    if (rng() % 40 == 0) s += " " + std::to_string(rng() % 100000);
    s += punct[rng() % 11];
  }
  return s;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Returns MB/s of wall time; *cpu_mbps gets MB/s of this thread's CPU time (what one core does
// when the machine is shared).
double run(const mm::text::Tokenizer& tok, const std::string& text, size_t* n_ids,
           double* cpu_mbps) {
  auto t0 = std::chrono::steady_clock::now();
  double c0 = thread_cpu_seconds();
  // Encode in 64 KiB chunks cut at newlines, as a server would encode documents.
  size_t pos = 0, ids = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + 65536);
    size_t nl = text.rfind('\n', end);
    if (end < text.size() && nl != std::string::npos && nl > pos) end = nl + 1;
    ids += tok.encode(std::string_view(text).substr(pos, end - pos)).value().size();
    pos = end;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *cpu_mbps = static_cast<double>(text.size()) / 1e6 / (thread_cpu_seconds() - c0);
  *n_ids = ids;
  return static_cast<double>(text.size()) / 1e6 / s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1]
                              : std::string(MM_SOURCE_DIR) +
                                    "/test/inputs/tokenizer/minimax-tiny/tokenizer.json";
  size_t mb = argc > 2 ? std::stoul(argv[2]) : 20;
  auto tok = mm::text::Tokenizer::load(path);
  if (!tok) {
    std::fprintf(stderr, "error: %s\n", tok.error().message.c_str());
    return 1;
  }
  for (auto [name, text] : {std::pair{"prose", prose(mb << 20)}, std::pair{"zipf", zipf(mb << 20)}}) {
    size_t ids = 0;
    double cpu = 0;
    double mbps = run(*tok, text, &ids, &cpu);
    std::printf("%-6s %zu MB -> %zu ids: %.1f MB/s wall, %.1f MB/s of CPU time\n", name,
                text.size() >> 20, ids, mbps, cpu);
  }
  return 0;
}
