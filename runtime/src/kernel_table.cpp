#include "runtime/src/kernel_table.h"

#include <map>

namespace mm::rt {

static_assert(static_cast<size_t>(plan::KernelKind::MAX) + 1 == kernels::kKindCount,
              "the plan's KernelKind is generated from the kernel registry");

namespace {

// A KernelDef's ParamDefs as the registry reads them. The plan stores every parameter in both
// fields; a floating parameter (EPS, THETA) is declared FLOAT in the registry and read from `f`.
class PlanParams final : public kernels::ParamSource {
 public:
  PlanParams(const plan::KernelDef& k, const kernels::KindInfo& info) : info_(info) {
    if (k.params())
      for (const plan::ParamDef* p : *k.params()) values_[p->name()->str()] = p;
  }
  bool get(std::string_view name, int64_t* i, double* f, bool* is_int) const override {
    auto it = values_.find(std::string(name));
    if (it == values_.end()) return false;
    const kernels::ParamInfo* d = kernels::find_param(info_, name);
    *is_int = !(d && d->type == kernels::ParamType::FLOAT);
    *i = it->second->i();
    *f = it->second->f();
    return true;
  }
  void names(void (*fn)(void*, std::string_view), void* ctx) const override {
    for (const auto& [name, p] : values_) fn(ctx, name);
  }

 private:
  const kernels::KindInfo& info_;
  std::map<std::string, const plan::ParamDef*> values_;
};

bool known(plan::KernelKind kind) { return static_cast<size_t>(kind) < kernels::kKindCount; }

}  // namespace

std::string kind_name(plan::KernelKind kind) {
  if (!known(kind)) return "kind " + std::to_string(static_cast<int>(kind));
  return kernels::kind_info(registry_kind(kind)).name;
}

Expected<RefParams> parse_kernel_params(const plan::KernelDef& k, const std::string& where) {
  if (!known(k.kind()))
    return Error::bad_input(where + ": unknown kernel kind " + std::to_string(static_cast<int>(k.kind())) +
                            " (this runtime knows 0.." + std::to_string(kernels::kKindCount - 1) + ")");
  const kernels::KindInfo& info = kernels::kind_info(registry_kind(k.kind()));
  RefParams p;
  if (std::string e = kernels::parse_params(info.kind, PlanParams(k, info), &p); !e.empty())
    return Error::bad_input(where + " (" + info.name + "): " + e);
  return p;
}

int expected_operand_count(plan::KernelKind kind) { return kernels::kind_info(registry_kind(kind)).slots; }

void run_reference(plan::KernelKind kind, const RefParams& params, const mm_kernel_args& args) {
  switch (registry_kind(kind)) {
#define MM_KIND(NAME, Struct, fn, file, uses_w4)                 \
  case kernels::Kind::NAME:                                      \
    ref::fn##_ref(args, std::get<kernels::Struct##Params>(params)); \
    return;
#include "codegen/kernels/kinds_expand.h"
    case kernels::Kind::COUNT:
      return;
  }
}

}  // namespace mm::rt
