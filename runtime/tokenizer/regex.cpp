#include "runtime/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "runtime/tokenizer/utf8.h"

namespace mm::text {

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::string what;  // names the pattern in RegexMatchError
  ~Code() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

// Bounds on one match, for JIT and interpreter alike. The match limit (PCRE2's default) caps the
// backtracking steps, so that a catastrophic pattern such as (?:\w+\s?)+$ fails in well under a second
// instead of running for hours; the depth limit caps nested backtracking frames.
constexpr uint32_t kMatchLimit = 10'000'000;
constexpr uint32_t kDepthLimit = 1'000'000;

// Long runs (a megabyte of spaces under `\s+(?!\S)`) need more than PCRE2's default 32 KiB JIT
// stack; one stack per thread, grown on demand up to 64 MiB.
struct JitStack {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* ctx = nullptr;
  JitStack() {
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    if (stack && ctx) pcre2_jit_stack_assign(ctx, nullptr, stack);
    if (ctx) {
      pcre2_set_match_limit(ctx, kMatchLimit);
      pcre2_set_depth_limit(ctx, kDepthLimit);
    }
  }
  ~JitStack() {
    if (ctx) pcre2_match_context_free(ctx);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

pcre2_match_context* thread_match_context() {
  thread_local JitStack js;
  return js.ctx;
}

// The interpreter fallback (when JIT is missing or runs out of stack) gets a larger heap limit
// than the 20 MB default so that pathological inputs still tokenize, but a bounded one: a
// hostile pattern's match fails at 256 MiB of backtracking frames.
pcre2_match_context* interpreter_context() {
  thread_local struct Ctx {
    pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
    Ctx() {
      if (ctx) {
        pcre2_set_heap_limit(ctx, 256 * 1024);  // in KiB: 256 MiB
        pcre2_set_match_limit(ctx, kMatchLimit);
        pcre2_set_depth_limit(ctx, kDepthLimit);
      }
    }
    ~Ctx() {
      if (ctx) pcre2_match_context_free(ctx);
    }
  } c;
  return c.ctx;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Regex::Regex(std::unique_ptr<Code> code) : code_(std::move(code)) {}
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

namespace {
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Oniguruma (the engine tokenizers uses) writes code points as \uHHHH; PCRE2 spells them
// \x{HHHH}. Other escapes are passed through untouched.
std::string onig_to_pcre2(const std::string& p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      if (p[i + 1] == 'u' && i + 5 < p.size() && is_hex(p[i + 2]) && is_hex(p[i + 3]) && is_hex(p[i + 4]) && is_hex(p[i + 5])) {
        out += "\\x{";
        out.append(p, i + 2, 4);
        out += '}';
        i += 5;
        continue;
      }
      out += p[i];
      out += p[i + 1];
      ++i;
      continue;
    }
    out += p[i];
  }
  return out;
}
}  // namespace

mm::Expected<Regex> Regex::compile(const std::string& onig_pattern, const std::string& what) {
  std::string pattern = onig_to_pcre2(onig_pattern);
  int err = 0;
  PCRE2_SIZE off = 0;
  // UCP: \s \w \d and case folding follow Unicode, as Oniguruma's do on UTF-8 strings.
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
  pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                opts, &err, &off, nullptr);
  if (!c) {
    return mm::Error::bad_input(what + ": regex does not compile at offset " +
                                std::to_string(off) + ": " + pcre2_message(err) +
                                " (pattern: " + onig_pattern + ")");
  }
  auto code = std::make_unique<Code>();
  code->code = c;
  code->what = what;
  uint32_t has_jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &has_jit);
  // A pattern may refuse JIT itself ((*NO_JIT)): pcre2_jit_compile then succeeds without making
  // code, and pcre2_jit_match would fail every time. Use JIT only when code was made.
  size_t jit_size = 0;
  if (has_jit && pcre2_jit_compile(c, PCRE2_JIT_COMPLETE) == 0 &&
      pcre2_pattern_info(c, PCRE2_INFO_JITSIZE, &jit_size) == 0 && jit_size > 0)
    code->jit = true;
  return Regex(std::move(code));
}

mm::Expected<Regex> Regex::literal(std::string_view literal, const std::string& what) {
  std::string pat = "\\Q";
  // \Q..\E cannot contain "\E": split it out.
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] == '\\' && i + 1 < literal.size() && literal[i + 1] == 'E') {
      pat += "\\E\\\\\\QE";
      ++i;
    } else {
      pat += literal[i];
    }
  }
  pat += "\\E";
  return compile(pat, what);
}

void Regex::for_each_match(std::string_view text,
                           const std::function<void(size_t, size_t)>& fn) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) throw std::bad_alloc();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t n = text.size(), pos = 0;
  while (pos <= n) {
    int rc;
    if (code_->jit) {
      rc = pcre2_jit_match(code_->code, subject, n, pos, 0, md, thread_match_context());
      // Out of JIT stack, or any other JIT-only failure: the interpreter has its own limits.
      if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && rc != PCRE2_ERROR_MATCHLIMIT && rc != PCRE2_ERROR_DEPTHLIMIT)
        rc = pcre2_match(code_->code, subject, n, pos, PCRE2_NO_JIT | PCRE2_NO_UTF_CHECK, md,
                         interpreter_context());
    } else {
      rc = pcre2_match(code_->code, subject, n, pos, PCRE2_NO_UTF_CHECK, md,
                       interpreter_context());
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      // Only resource limits get here (the subject is valid UTF-8, the pattern compiled).
      throw RegexMatchError(code_->what + ": the regex gave up at byte " + std::to_string(pos) + " of a " +
                            std::to_string(n) + "-byte text: " + pcre2_message(rc) +
                            " (PCRE2 error " + std::to_string(rc) + ")");
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (e > s) {
      fn(s, e);
      pos = e;
    } else {
      // Empty match: step over one character.
      if (s >= n) break;
      size_t step = 1;
      while (s + step < n && (static_cast<unsigned char>(text[s + step]) & 0xC0) == 0x80) ++step;
      pos = s + step;
    }
  }
  pcre2_match_data_free(md);
}

bool Regex::matches_whole(std::string_view text) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) throw std::bad_alloc();
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_NO_UTF_CHECK, md, interpreter_context());
  pcre2_match_data_free(md);
  return rc >= 0;
}

}  // namespace mm::text
