#include "support/json_util.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace mm {
namespace {

// Thrown from the parser callback to stop parsing at the first structural violation.
struct StrictJsonViolation {
  std::string message;
};

// config.json and the index are small; 256 MiB bounds a hostile index without refusing the real
// one (108,255 entries, about 9 MB).
constexpr uint64_t kMaxJsonFileBytes = 256ull << 20;

}  // namespace

std::string json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
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
class StrictDomSax : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;

 public:
  explicit StrictDomSax(nlohmann::json& root) : Base(root, /*allow_exceptions_=*/true) {}

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

}  // namespace

Expected<nlohmann::json> parse_json_strict(std::string_view text, const std::string& label) {
  nlohmann::json root;
  StrictDomSax sax(root);
  try {
    nlohmann::json::sax_parse(text.begin(), text.end(), &sax, nlohmann::json::input_format_t::json,
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

Expected<std::string> read_small_file(const std::string& path, const std::string& label,
                                      uint64_t max_bytes) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    return Error::bad_input(label + ": file not found (" + path + ")");
  if (!std::filesystem::is_regular_file(status))
    return Error::bad_input(label + ": not a regular file (" + path + ")");
  uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Error::bad_input(label + ": cannot stat " + path + ": " + ec.message());
  if (size > max_bytes)
    return Error::bad_input(label + ": file is " + std::to_string(size) + " bytes, more than the " +
                            std::to_string(max_bytes) + "-byte limit for this kind of file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Error::bad_input(label + ": cannot open " + path);
  std::string data(size, '\0');
  if (size > 0 && std::fread(data.data(), 1, size, f.get()) != size)
    return Error::bad_input(label + ": short read from " + path);
  return data;
}

Expected<nlohmann::json> read_json_object_file(const std::string& path, const std::string& label) {
  auto text = read_small_file(path, label, kMaxJsonFileBytes);
  if (!text) return text.error();
  auto json = parse_json_strict(*text, label);
  if (!json) return json.error();
  if (!json->is_object())
    return Error::bad_input(label + ": expected a JSON object at the top level, found " +
                            json_type_name(*json));
  return json;
}

}  // namespace mm
