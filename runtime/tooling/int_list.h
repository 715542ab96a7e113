// Comma-separated integer lists of the command lines (--prompt-ids 1,2,3, --batch 1,4,16).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mm::rt {

// Parses "a, b,c" (blanks around items allowed) into integers in [min, max]. On failure returns
// false and sets `error` to "'ITEM' (item N) is not EXPECTED" for the first bad item (an empty
// item included, so "" and "1,,2" fail).
bool parse_int_list(const std::string& text, int64_t min, int64_t max, const std::string& expected,
                    std::vector<int64_t>* values, std::string* error);

}  // namespace mm::rt
