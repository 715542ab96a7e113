// Tensor element types as they appear in safetensors headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mm {

enum class DType : uint8_t { BF16, F16, F32, F64, I8, U8, I16, I32, I64, BOOL, F8_E4M3, COUNT };

// "BF16" -> DType::BF16; nullopt for names we do not know (the reader then rejects the tensor).
std::optional<DType> dtype_from_safetensors(std::string_view name);
std::string_view dtype_name(DType dt);  // inverse of the above
size_t dtype_size(DType dt);            // bytes per element

}  // namespace mm
