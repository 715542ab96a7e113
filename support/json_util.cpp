#include "support/json_util.h"

#include "support/file_util.h"

#include <string>
#include <unordered_set>
#include <vector>

namespace mm {
namespace {

// Thrown from the parser callback to stop parsing at the first structural violation.
struct StrictJsonViolation {
  std::string message;
};

}  // namespace

std::string json_type_name(nlohmann::json::value_t type) {
  switch (type) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a floating-point number";
    default:
      return "an unsupported JSON value";
  }
}

namespace {

// nlohmann's DOM builder plus the two checks it lacks. (The parser-callback API would do too, but
// its end_object rescans the parent object after every child, quadratic in the tensors of a shard.)
template <class Json>
class StrictDomSax : public nlohmann::detail::json_sax_dom_parser<Json> {
  using Base = nlohmann::detail::json_sax_dom_parser<Json>;

 public:
  explicit StrictDomSax(Json& root) : Base(root, /*allow_exceptions_=*/true) {}

  bool start_object(std::size_t n) {
    enter();
    // One key set per nesting level, reused: a shard header has ~10^5 small objects.
    if (keys_.size() < static_cast<size_t>(depth_)) keys_.resize(depth_);
    keys_[depth_ - 1].clear();
    return Base::start_object(n);
  }
  bool key(std::string& k) {
    if (!keys_[depth_ - 1].insert(k).second)
      throw StrictJsonViolation{"duplicate key \"" + k + "\""};
    return Base::key(k);
  }
  bool end_object() {
    --depth_;
    return Base::end_object();
  }
  bool start_array(std::size_t n) {
    enter();
    return Base::start_array(n);
  }
  bool end_array() {
    --depth_;
    return Base::end_array();
  }

 private:
  void enter() {
    if (++depth_ > kMaxJsonDepth)
      throw StrictJsonViolation{"nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
  }
  int depth_ = 0;
  std::vector<std::unordered_set<std::string>> keys_;
};

template <class Json>
Expected<Json> parse_strict(std::string_view text, const std::string& label) {
  Json root;
  StrictDomSax<Json> sax(root);
  try {
    Json::sax_parse(text.begin(), text.end(), &sax, nlohmann::json::input_format_t::json,
                              /*strict=*/true, /*ignore_comments=*/false);
  } catch (const StrictJsonViolation& v) {
    return Error::bad_input(label + ": invalid JSON: " + v.message);
  } catch (const nlohmann::json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ...".
    std::string what = e.what();
    size_t close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
    return Error::bad_input(label + ": not valid JSON (" + what + ")");
  }
  return root;
}

}  // namespace

Expected<nlohmann::json> parse_json_strict(std::string_view text, const std::string& label) {
  return parse_strict<nlohmann::json>(text, label);
}

Expected<nlohmann::ordered_json> parse_ordered_json_strict(std::string_view text, const std::string& label) {
  return parse_strict<nlohmann::ordered_json>(text, label);
}

Expected<nlohmann::json> read_json_object_file(const std::string& path, const std::string& label,
                                               uint64_t max_bytes) {
  auto text = read_regular_file(path, label, max_bytes);
  if (!text) return text.error();
  auto json = parse_json_strict(*text, label);
  if (!json) return json.error();
  if (!json->is_object())
    return Error::bad_input(label + ": expected a JSON object at the top level, found " +
                            json_type_name(*json));
  return json;
}

}  // namespace mm
