#include "support/dtype.h"

#include <array>

namespace mm {
namespace {

struct DTypeRow {
  DType dtype;
  std::string_view name;  // as spelled in safetensors headers
  size_t size;
};

// Indexed by DType; the static_assert keeps it in step with the enum.
constexpr std::array<DTypeRow, static_cast<size_t>(DType::COUNT)> kDTypes = {{
    {DType::BF16, "BF16", 2},
    {DType::F16, "F16", 2},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::I16, "I16", 2},
    {DType::I32, "I32", 4},
    {DType::I64, "I64", 8},
    {DType::BOOL, "BOOL", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
}};
static_assert(kDTypes.size() == static_cast<size_t>(DType::COUNT), "one row per DType");

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < kDTypes.size(); ++i)
    if (static_cast<size_t>(kDTypes[i].dtype) != i) return false;
  return true;
}
static_assert(rows_in_enum_order(), "kDTypes rows must follow the DType enum order");

}  // namespace

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const DTypeRow& row : kDTypes)
    if (row.name == name) return row.dtype;
  return std::nullopt;
}

std::string_view dtype_name(DType dt) {
  size_t i = static_cast<size_t>(dt);
  return i < kDTypes.size() ? kDTypes[i].name : std::string_view("?");
}

size_t dtype_size(DType dt) {
  size_t i = static_cast<size_t>(dt);
  return i < kDTypes.size() ? kDTypes[i].size : 0;
}

}  // namespace mm
