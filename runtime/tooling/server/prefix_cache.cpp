#include "runtime/tooling/server/prefix_cache.h"

#include <algorithm>

namespace mm::rt::server {

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

SlotChoice choose_slot(std::span<const SlotState> slots, std::span<const int32_t> prompt, bool enabled) {
  SlotChoice best;
  const size_t cap = prompt.empty() ? 0 : prompt.size() - 1;
  auto better = [&](const SlotState& s, size_t reuse, const SlotState& than) {
    if (reuse != best.reuse) return reuse > best.reuse;
    const bool empty = s.cached.empty(), than_empty = than.cached.empty();
    if (empty != than_empty) return empty;
    return s.last_used < than.last_used;
  };
  int32_t empty = -1;
  for (size_t i = 0; i < slots.size(); ++i) {
    const SlotState& s = slots[i];
    if (s.busy) continue;
    if (s.cached.empty() && empty < 0) empty = static_cast<int32_t>(i);
    const size_t reuse = enabled ? std::min(common_prefix(s.cached, prompt), cap) : 0;
    if (best.slot < 0 || better(s, reuse, slots[static_cast<size_t>(best.slot)])) {
      best.slot = static_cast<int32_t>(i);
      best.reuse = reuse;
    }
  }
  if (empty >= 0 && best.reuse > 0 && 2 * best.reuse < prompt.size()) return SlotChoice{empty, 0};
  return best;
}

}  // namespace mm::rt::server
