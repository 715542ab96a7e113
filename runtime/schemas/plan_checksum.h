// The plan's whole-file checksum (PlanDef.checksum): FNV-1a 64 over every byte of the file, with
// the 8 bytes of the checksum field itself taken as zero. The compiler seals a finished buffer;
// the runtime recomputes it after flatbuffer verification. Header-only: both sides include it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "runtime/schemas/plan_generated.h"

namespace mm::plan {

// `field` points at the 8 stored checksum bytes inside [buf, buf + size).
inline uint64_t plan_checksum(const uint8_t* buf, size_t size, const uint8_t* field) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) {
    const bool in_field = buf + i >= field && buf + i < field + 8;
    h = (h ^ (in_field ? 0 : buf[i])) * 1099511628211ull;
  }
  return h;
}

// Address of the stored checksum scalar, or null when the field is absent.
inline const uint8_t* plan_checksum_field(const uint8_t* buf) {
  const PlanDef* def = GetPlanDef(buf);
  // Generated tables inherit flatbuffers::Table privately; the layout is the table itself.
  return reinterpret_cast<const flatbuffers::Table*>(def)->GetAddressOf(PlanDef::VT_CHECKSUM);
}

// Writes the checksum of a finished plan buffer whose checksum field was stored (non-zero
// placeholder). Returns false when the field is absent.
inline bool seal_plan(uint8_t* buf, size_t size) {
  const uint8_t* field = plan_checksum_field(buf);
  if (!field) return false;
  const uint64_t h = plan_checksum(buf, size, field);
  std::memcpy(const_cast<uint8_t*>(field), &h, sizeof h);
  return true;
}

}  // namespace mm::plan
