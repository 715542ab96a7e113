// Automatic prefix caching over the session's sequence slots.
//
// The C API gives every slot its own KV blocks (no sharing between sequences) and can keep a
// prefix of a slot (mm_session_truncate). So a finished request leaves its slot holding the KV of
// everything it fed (prompt and answer); the next request takes the idle slot whose ids share the
// longest prefix with its prompt, keeps that prefix and prefills only the rest. Multi-turn chats
// and agents resend the same history, so their next turn lands on the slot of their previous one.
// The rule: the longest shared prefix wins (ties: an empty slot, then the least recently used one),
// except that a prefix shorter than half the prompt does not take a slot holding another
// conversation while an empty slot is free: reusing a shared system prompt is not worth evicting a
// cache that its owner's next turn would reuse whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mm::rt::server {

struct SlotState {
  bool busy = false;
  std::vector<int32_t> cached;  // ids whose KV the slot holds, in order
  uint64_t last_used = 0;       // larger is more recent
};

struct SlotChoice {
  int32_t slot = -1;  // -1: every slot is busy
  size_t reuse = 0;   // prompt tokens whose KV is kept
};

// Length of the common prefix of `a` and `b`.
size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b);

// Picks an idle slot for `prompt`. At most prompt.size() - 1 tokens are reused: the last prompt
// token is always prefilled again, since its logits choose the first answer token. With
// `enabled` false nothing is reused (the slot choice still prefers empty, then old slots).
SlotChoice choose_slot(std::span<const SlotState> slots, std::span<const int32_t> prompt, bool enabled);

}  // namespace mm::rt::server
