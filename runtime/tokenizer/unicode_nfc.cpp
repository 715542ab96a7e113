#include "runtime/tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <vector>

#include "runtime/tokenizer/utf8.h"

namespace mm::text {

namespace {

#include "runtime/tokenizer/unicode_nfc_data.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::lower_bound(std::begin(kCccTable), std::end(kCccTable), cp,
                             [](const uint32_t* e, uint32_t v) { return e[0] < v; });
  return it != std::end(kCccTable) && (*it)[0] == cp ? static_cast<uint8_t>((*it)[1]) : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    auto it = std::lower_bound(std::begin(kDecompTable), std::end(kDecompTable), cp,
                               [](const uint32_t* e, uint32_t v) { return e[0] < v; });
    if (it != std::end(kDecompTable) && (*it)[0] == cp) {
      decompose((*it)[1], out);
      if ((*it)[2]) decompose((*it)[2], out);
      return;
    }
  }
  out.push_back(cp);
}

// Composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompTable), std::end(kCompTable), std::pair{a, b},
                             [](const uint32_t* e, std::pair<uint32_t, uint32_t> v) {
                               return e[0] != v.first ? e[0] < v.first : e[1] < v.second;
                             });
  return it != std::end(kCompTable) && (*it)[0] == a && (*it)[1] == b ? (*it)[2] : 0;
}

}  // namespace

std::string nfc(std::string_view s) {
  // Text below U+0300 has no decompositions, no combining marks and cannot compose: unchanged.
  bool simple = true;
  for (unsigned char c : s)
    if (c >= 0xCC) {
      simple = false;
      break;
    }
  if (simple) return std::string(s);

  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    Utf8Step st = utf8_step(p + i, s.size() - i);
    if (st.kind != Utf8Kind::Ok) {  // callers pass valid UTF-8; keep U+FFFD semantics anyway
      cps.push_back(0xFFFD);
    } else {
      decompose(st.cp, cps);
    }
    i += st.len;
  }
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  std::vector<uint8_t> cls(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) cls[i] = ccc(cps[i]);
  for (size_t i = 0; i < cps.size();) {
    if (cls[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && cls[j] != 0) ++j;
    if (j - i > 1) {
      std::vector<std::pair<uint8_t, uint32_t>> run;
      for (size_t k = i; k < j; ++k) run.emplace_back(cls[k], cps[k]);
      std::stable_sort(run.begin(), run.end(),
                       [](auto& x, auto& y) { return x.first < y.first; });
      for (size_t k = i; k < j; ++k) {
        cls[k] = run[k - i].first;
        cps[k] = run[k - i].second;
      }
    }
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> out;
  std::vector<uint8_t> out_cls;
  out.reserve(cps.size());
  long starter = -1;  // index in `out` of the last starter
  for (size_t i = 0; i < cps.size(); ++i) {
    uint32_t c = cps[i];
    uint8_t k = cls[i];
    if (starter >= 0) {
      // Blocked if a character between the starter and c has class 0 or >= c's class.
      bool blocked = false;
      if (static_cast<size_t>(starter) + 1 < out.size()) {
        uint8_t last = out_cls.back();
        blocked = last == 0 || last >= k;
      }
      if (!blocked) {
        uint32_t comp = compose(out[starter], c);
        if (comp) {
          out[starter] = comp;
          continue;
        }
      }
    }
    out.push_back(c);
    out_cls.push_back(k);
    if (k == 0) starter = static_cast<long>(out.size()) - 1;
  }
  std::string res;
  res.reserve(s.size());
  for (uint32_t c : out) utf8_append(res, c);
  return res;
}

}  // namespace mm::text
