// choose_slot (runtime/tooling/server/prefix_cache.h): longest shared prefix wins, never the whole
// prompt, busy slots are skipped, ties go to an empty slot and then the least recently used one; a
// prefix under half the prompt does not evict another conversation while a slot is empty.
#include <gtest/gtest.h>

#include "runtime/tooling/server/prefix_cache.h"

namespace mm::rt::server {
namespace {

SlotState slot(std::vector<int32_t> cached, uint64_t last_used, bool busy = false) {
  SlotState s;
  s.cached = std::move(cached);
  s.last_used = last_used;
  s.busy = busy;
  return s;
}

TEST(PrefixCache, CommonPrefix) {
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 9}, c{};
  EXPECT_EQ(common_prefix(a, b), 2u);
  EXPECT_EQ(common_prefix(a, a), 4u);
  EXPECT_EQ(common_prefix(a, c), 0u);
}

TEST(PrefixCache, LongestSharedPrefixWins) {
  std::vector<SlotState> slots{slot({1, 2, 3}, 5), slot({1, 2, 3, 4, 5, 6}, 1), slot({}, 0)};
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5, 7};
  const SlotChoice c = choose_slot(slots, prompt, true);
  EXPECT_EQ(c.slot, 1);
  EXPECT_EQ(c.reuse, 5u);
}

TEST(PrefixCache, TheLastPromptTokenIsAlwaysPrefilled) {
  std::vector<SlotState> slots{slot({1, 2, 3, 4, 5}, 1)};
  const std::vector<int32_t> same{1, 2, 3}, longer_cache{1, 2, 3, 4, 5};
  EXPECT_EQ(choose_slot(slots, same, true).reuse, 2u);
  EXPECT_EQ(choose_slot(slots, longer_cache, true).reuse, 4u);
}

TEST(PrefixCache, BusySlotsAreSkipped) {
  std::vector<SlotState> slots{slot({1, 2, 3, 4}, 1, true), slot({9}, 2)};
  const SlotChoice c = choose_slot(slots, std::vector<int32_t>{1, 2, 3, 4, 5}, true);
  EXPECT_EQ(c.slot, 1);
  EXPECT_EQ(c.reuse, 0u);
  std::vector<SlotState> all_busy{slot({}, 0, true)};
  EXPECT_EQ(choose_slot(all_busy, std::vector<int32_t>{1}, true).slot, -1);
}

TEST(PrefixCache, NoSharedPrefixPrefersAnEmptySlotThenTheOldest) {
  std::vector<SlotState> slots{slot({7, 7}, 3), slot({8}, 1), slot({}, 9)};
  EXPECT_EQ(choose_slot(slots, std::vector<int32_t>{1, 2}, true).slot, 2);
  slots[2] = slot({6}, 9);
  EXPECT_EQ(choose_slot(slots, std::vector<int32_t>{1, 2}, true).slot, 1);
}

TEST(PrefixCache, AShortSharedPrefixDoesNotEvictAConversationWhileASlotIsEmpty) {
  // Another client's conversation shares the system prompt {1, 2} only.
  std::vector<SlotState> slots{slot({1, 2, 3, 4, 5, 6}, 1), slot({}, 2)};
  const std::vector<int32_t> other{1, 2, 9, 9, 9, 9};
  SlotChoice c = choose_slot(slots, other, true);
  EXPECT_EQ(c.slot, 1);
  EXPECT_EQ(c.reuse, 0u);
  // With no empty slot the prefix is still worth keeping.
  slots[1] = slot({7}, 2);
  c = choose_slot(slots, other, true);
  EXPECT_EQ(c.slot, 0);
  EXPECT_EQ(c.reuse, 2u);
  // Half the prompt or more: the slot is taken (the next turn of a chat whose reasoning was dropped).
  slots[1] = slot({}, 2);
  c = choose_slot(slots, std::vector<int32_t>{1, 2, 3, 8, 8, 8}, true);
  EXPECT_EQ(c.slot, 0);
  EXPECT_EQ(c.reuse, 3u);
}

TEST(PrefixCache, DisabledReusesNothing) {
  std::vector<SlotState> slots{slot({1, 2, 3}, 1), slot({}, 2)};
  const SlotChoice c = choose_slot(slots, std::vector<int32_t>{1, 2, 3, 4}, false);
  EXPECT_EQ(c.slot, 1);
  EXPECT_EQ(c.reuse, 0u);
}

}  // namespace
}  // namespace mm::rt::server
