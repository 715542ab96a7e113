#include "codegen/kernels/registry.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <vector>

namespace mm::kernels {
namespace {

#define ALWAYS (Presence{Presence::ALWAYS, nullptr, 0})
#define IF(P, V) (Presence{Presence::IF, #P, V})
#define UNLESS(P, V) (Presence{Presence::UNLESS, #P, V})

// Per kind: NAME_operands[] and NAME_params[].
#define MM_KIND(NAME, Struct, ref, file, uses_w4) constexpr OperandInfo NAME##_operands[] = {
#define MM_OPERAND(n, ct, io, pr, shape) {#n, CType::ct, Io::io, pr, shape, -1, false},
#define MM_ALIAS(n, ct, io, pr, shape) {#n, CType::ct, Io::io, pr, shape, -1, true},
#define MM_END() };
#include "codegen/kernels/kinds_expand.h"

#define MM_KIND(NAME, Struct, ref, file, uses_w4) constexpr ParamInfo NAME##_params[] = {
#define MM_INT(n, lo, hi) {#n, ParamType::INT, true, 0, double(lo), double(hi)},
#define MM_INT_DEF(n, d, lo, hi) {#n, ParamType::INT, false, double(d), double(lo), double(hi)},
#define MM_FLOAT(n, lo, hi) {#n, ParamType::FLOAT, true, 0, double(lo), double(hi)},
#define MM_DERIVED(n) {#n, ParamType::DERIVED, false, 0, 0, 0},
#define MM_END() {"THREADS", ParamType::DERIVED, false, 0, 0, 0}};
#include "codegen/kernels/kinds_expand.h"
#undef ALWAYS
#undef IF
#undef UNLESS

// Slots are numbered here: the .def lists them in order, an alias takes its predecessor's.
std::span<const OperandInfo> numbered(const OperandInfo* src, size_t n, std::vector<OperandInfo>* out, int* slots) {
  int slot = -1;
  for (size_t i = 0; i < n; ++i) {
    OperandInfo o = src[i];
    if (!o.alias) ++slot;
    o.slot = slot;
    out->push_back(o);
  }
  *slots = slot + 1;
  return {out->data(), out->size()};
}

const KindInfo* build() {
  static KindInfo kinds[kKindCount];
  static std::vector<OperandInfo> operands[kKindCount];
  size_t i = 0;
#define MM_KIND(NAME, Struct, ref, file_, w4)                                                    \
  {                                                                                              \
    KindInfo& k = kinds[i];                                                                      \
    k.kind = Kind::NAME;                                                                         \
    k.name = #NAME;                                                                              \
    k.file = file_;                                                                              \
    k.uses_w4 = (w4) != 0;                                                                       \
    k.operands = numbered(NAME##_operands, std::size(NAME##_operands), &operands[i], &k.slots); \
    k.params = {NAME##_params, std::size(NAME##_params)};                                        \
    ++i;                                                                                         \
  }
#include "codegen/kernels/kinds_expand.h"
  return kinds;
}

const KindInfo* tables() {
  static const KindInfo* t = build();
  return t;
}

std::string num(double v) {
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 9.2e18)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// The generic checks of one declared parameter; "" when fine.
std::string check_one(const ParamInfo& p, const ParamSource& src) {
  int64_t i = 0;
  double f = 0;
  bool is_int = false;
  const bool present = src.get(p.name, &i, &f, &is_int);
  const std::string name = p.name;
  if (p.type == ParamType::DERIVED) {
    if (present && !is_int) return "parameter " + name + " must be an integer";
    if (present && (i < 0 || i > (int64_t{1} << 20)))
      return "parameter " + name + " = " + std::to_string(i) + " is out of range [0, 1048576]";
    return "";
  }
  if (!present) return p.required ? "missing parameter " + name : "";
  if (p.type == ParamType::INT) {
    if (!is_int) return "parameter " + name + " must be an integer";
    if (static_cast<double>(i) < p.lo || static_cast<double>(i) > p.hi)
      return "parameter " + name + " = " + std::to_string(i) + " is out of range [" + num(p.lo) + ", " + num(p.hi) + "]";
    return "";
  }
  const double v = is_int ? static_cast<double>(i) : f;
  if (!(v >= p.lo && v <= p.hi))
    return "parameter " + name + " = " + num(v) + " is out of range [" + num(p.lo) + ", " + num(p.hi) + "]";
  return "";
}

int64_t int_of(const ParamSource& src, const char* name, int64_t def) {
  int64_t i = def;
  double f = 0;
  bool is_int = false;
  if (!src.get(name, &i, &f, &is_int)) return def;
  return is_int ? i : static_cast<int64_t>(f);
}
double float_of(const ParamSource& src, const char* name) {
  int64_t i = 0;
  double f = 0;
  bool is_int = false;
  if (!src.get(name, &i, &f, &is_int)) return 0;
  return is_int ? static_cast<double>(i) : f;
}

// An integer parameter of a filled struct, by name (for the presence rules of operands).
int64_t field(const KernelParams& params, const char* name) {
  int64_t v = 0;
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
#define MM_KIND(NAME, Struct, ref, file, uses_w4) if constexpr (std::is_same_v<P, Struct##Params>) {
#define MM_INT(n, lo, hi) if (std::string_view(name) == #n) v = p.n;
#define MM_INT_DEF(n, d, lo, hi) if (std::string_view(name) == #n) v = p.n;
#define MM_END() }
#include "codegen/kernels/kinds_expand.h"
      },
      params);
  return v;
}

// A broken MM_REQUIRE rule: its message and the values of the parameters the rule reads
// ("K must be a multiple of G (K = 3000, G = 128)").
std::string broken_rule(const char* message, const char* cond, const KernelParams& params) {
  std::string out = message, values;
  const std::string c = cond;
  std::vector<std::string> seen;
  for (size_t i = c.find("p."); i != std::string::npos; i = c.find("p.", i + 2)) {
    size_t j = i + 2;
    while (j < c.size() && (std::isalnum(static_cast<unsigned char>(c[j])) || c[j] == '_')) ++j;
    const std::string name = c.substr(i + 2, j - i - 2);
    bool dup = false;
    for (const auto& n : seen) dup = dup || n == name;
    if (dup || name.empty()) continue;
    seen.push_back(name);
    values += (values.empty() ? "" : ", ") + name + " = " + std::to_string(field(params, name.c_str()));
  }
  return values.empty() ? out : out + " (" + values + ")";
}

}  // namespace

int64_t DimExpr::eval(const int64_t* dims) const {
  if (div <= 0) return 0;
  int64_t base = 0;
  if (dim >= 0) {
    base = dims[dim];
    if (base < 0) return 0;
  }
  int64_t prod = 0, num = 0;
  if (__builtin_mul_overflow(mul, base, &prod) || __builtin_add_overflow(prod, add, &num) || num <= 0) return 0;
  return num / div + (num % div != 0);
}

const KindInfo& kind_info(Kind kind) { return tables()[static_cast<size_t>(kind)]; }

std::string_view kind_name(Kind kind) {
  return static_cast<size_t>(kind) < kKindCount ? kind_info(kind).name : "UNKNOWN";
}

std::optional<Kind> kind_from_name(std::string_view name) {
  for (size_t k = 0; k < kKindCount; ++k)
    if (name == tables()[k].name) return static_cast<Kind>(k);
  return std::nullopt;
}

const ParamInfo* find_param(const KindInfo& k, std::string_view name) {
  for (const ParamInfo& p : k.params)
    if (name == p.name) return &p;
  return nullptr;
}

std::string parse_params(Kind kind, const ParamSource& src, KernelParams* out) {
  if (static_cast<size_t>(kind) >= kKindCount) return "unknown kernel kind " + std::to_string(static_cast<int>(kind));
  const KindInfo& k = kind_info(kind);
  std::string error;
  struct Ctx {
    const KindInfo* k;
    std::string* error;
  } ctx{&k, &error};
  src.names(
      [](void* c, std::string_view name) {
        auto* x = static_cast<Ctx*>(c);
        if (x->error->empty() && !find_param(*x->k, name)) *x->error = "unknown parameter " + std::string(name);
      },
      &ctx);
  if (!error.empty()) return error;
  for (const ParamInfo& p : k.params)
    if (std::string e = check_one(p, src); !e.empty()) return e;
  switch (kind) {
#define MM_KIND(NAME, Struct, ref, file, uses_w4) \
  case Kind::NAME: {                              \
    Struct##Params p;
#define MM_INT(n, lo, hi) p.n = int_of(src, #n, 0);
#define MM_INT_DEF(n, d, lo, hi) p.n = int_of(src, #n, d);
#define MM_FLOAT(n, lo, hi) p.n = float_of(src, #n);
#define MM_REQUIRE(cond, message) \
  if (!(cond)) return broken_rule(message, #cond, KernelParams{p});
#define MM_END() \
  *out = p;      \
  return "";     \
  }
#include "codegen/kernels/kinds_expand.h"
    case Kind::COUNT:
      break;
  }
  return "unknown kernel kind";
}

bool slot_present(Kind kind, const KernelParams& params, int slot) {
  // A slot with aliases holds a pointer when any of its views is present.
  for (const OperandInfo& o : kind_info(kind).operands) {
    if (o.slot != slot) continue;
    switch (o.present.mode) {
      case Presence::ALWAYS:
        return true;
      case Presence::IF:
        if (field(params, o.present.param) == o.present.value) return true;
        break;
      case Presence::UNLESS:
        if (field(params, o.present.param) != o.present.value) return true;
        break;
    }
  }
  return false;
}

}  // namespace mm::kernels
