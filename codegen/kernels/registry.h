// The kernel-kind registry as C++ (generated from kinds.def by the preprocessor; see its header):
// the Kind enum, each kind's operands and parameters, its parameter struct, and the one parameter
// check shared by the specializer, the exec dialect's verifier and the runtime's plan reader.
// Plain C++ with no dependency, so every zone may use it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace mm::kernels {

enum class Kind : uint8_t {
#define MM_KIND(NAME, Struct, ref, file, uses_w4) NAME,
#include "codegen/kernels/kinds_expand.h"
  COUNT
};
constexpr size_t kKindCount = static_cast<size_t>(Kind::COUNT);

// The parameters of each kind as a struct (EmbedParams, GemmW4Params, ...): what the C++
// references take. Derived tile constants are not part of them.
#define MM_KIND(NAME, Struct, ref, file, uses_w4) struct Struct##Params {
#define MM_INT(n, lo, hi) int64_t n = 0;
#define MM_INT_DEF(n, d, lo, hi) int64_t n = d;
#define MM_FLOAT(n, lo, hi) double n = 0;
#define MM_END() };
#include "codegen/kernels/kinds_expand.h"

// One kind's parameters; the alternative's index is the Kind.
using KernelParams = std::variant<
#define MM_KIND(NAME, Struct, ref, file, uses_w4) Struct##Params,
#include "codegen/kernels/kinds_expand.h"
    std::monostate>;

// The C type of an operand's elements inside a kernel (kinds.def `ctype`).
enum class CType : uint8_t { I32, U32, U64, F32, BF16, F16, VOID, WDT, OUT };
enum class Io : uint8_t { IN, OUT, INOUT };
// When a slot holds a pointer: always, or only when a parameter has (not) a value.
struct Presence {
  enum Mode : uint8_t { ALWAYS, IF, UNLESS } mode = ALWAYS;
  const char* param = nullptr;
  int64_t value = 0;
};

struct OperandInfo {
  const char* name;
  CType ctype;
  Io io;
  Presence present;
  const char* shape;  // documentation, in the kind's parameters
  int slot;           // ptr[] index (an alias shares its predecessor's)
  bool alias;
};

enum class ParamType : uint8_t { INT, FLOAT, DERIVED };
struct ParamInfo {
  const char* name;
  ParamType type;
  bool required;  // INT / FLOAT without a default
  double def, lo, hi;
};

struct KindInfo {
  Kind kind;
  const char* name;  // "GEMM_W4"
  const char* file;  // "gemm_w4.cuh"
  bool uses_w4;      // the source needs w4.cuh (the shared int4 decode core)
  std::span<const OperandInfo> operands;  // aliases included, in declaration order
  int slots;                              // distinct ptr[] slots = the operand count of a launch
  std::span<const ParamInfo> params;      // THREADS (derived, every kind) included
};

const KindInfo& kind_info(Kind kind);                       // kind < COUNT
// A collective (ALL_REDUCE) has no CUDA template: backends implement it with their transport
// between the ranks of a sharded plan (docs/parallel.md), never with a generated kernel.
inline bool is_collective(const KindInfo& k) { return k.file[0] == '\0'; }
std::string_view kind_name(Kind kind);                      // "UNKNOWN" when out of range
std::optional<Kind> kind_from_name(std::string_view name);  // nullopt if unknown
const ParamInfo* find_param(const KindInfo& k, std::string_view name);

// The parameters of one kernel as its producer holds them (exec attributes, plan ParamDefs, the
// specializer's maps).
class ParamSource {
 public:
  virtual ~ParamSource() = default;
  // false when absent; *is_int tells which of *i and *f holds the value.
  virtual bool get(std::string_view name, int64_t* i, double* f, bool* is_int) const = 0;
  // Every parameter name present (to find unknown ones).
  virtual void names(void (*fn)(void* ctx, std::string_view name), void* ctx) const = 0;
};

// Checks `params` against the kind's declaration — required ones present, integers given as
// integers, values in range, no unknown names, the kind's MM_REQUIRE rules — and fills *out with
// the kind's struct (defaults for absent optional ones). Returns "" or the first problem, e.g.
// "parameter G = 0 is out of range [8, 1099511627776]".
std::string parse_params(Kind kind, const ParamSource& params, KernelParams* out);

// A launch-grid formula over the call's dynamic dims (abi.h MM_DIM_*): value = ceil((mul *
// dims[dim] + add) / div); dim = -1: the constant ceil(add / div). A non-positive divisor, a
// negative dim value, an overflow or a non-positive numerator evaluate to 0 (no blocks): the one
// evaluator of the compiler, the plan reader and the executors, so all agree on hostile values.
struct DimExpr {
  int dim = -1;
  int64_t mul = 0, add = 1, div = 1;
  int64_t eval(const int64_t* dims) const;
};

// Whether ptr[] slot `slot` of a kernel with these parameters must hold a pointer (else it must be
// null: operand NONE).
bool slot_present(Kind kind, const KernelParams& params, int slot);

}  // namespace mm::kernels
