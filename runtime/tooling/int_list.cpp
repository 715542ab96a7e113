#include "runtime/tooling/int_list.h"

#include <cerrno>
#include <cstdlib>

namespace mm::rt {

bool parse_int_list(const std::string& text, int64_t min, int64_t max, const std::string& expected,
                    std::vector<int64_t>* values, std::string* error) {
  values->clear();
  size_t i = 0;
  for (;;) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    const size_t first = item.find_first_not_of(" \t");
    item = first == std::string::npos ? "" : item.substr(first, item.find_last_not_of(" \t") - first + 1);
    char* end = nullptr;
    errno = 0;
    const long long v = item.empty() ? 0 : std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno == ERANGE || v < min || v > max) {
      *error = "'" + item + "' (item " + std::to_string(values->size()) + ") is not " + expected;
      return false;
    }
    values->push_back(v);
    if (j == text.size()) return true;
    i = j + 1;
  }
}

}  // namespace mm::rt
