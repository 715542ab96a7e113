// Strict JSON for hostile inputs: nlohmann::json silently keeps the last of two equal keys and
// recurses without bound, so every checkpoint JSON goes through parse_json_strict, which refuses
// duplicate keys and absurd nesting and turns every failure into an mm::Error naming the file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "support/status.h"

namespace mm {

// Deepest nesting a checkpoint JSON file legitimately has is 4 (config.json ->
// quantization_config -> extra_config -> module); 64 leaves room and stops stack-depth attacks.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; `label` (usually the file name) prefixes every error message.
Expected<nlohmann::json> parse_json_strict(std::string_view text, const std::string& label);
// Same, keeping object keys in file order (tool schemas, chat messages: printed as given).
Expected<nlohmann::ordered_json> parse_ordered_json_strict(std::string_view text, const std::string& label);

// Reads (support/file_util.h: a regular file of at most `max_bytes`) and parses a JSON file that
// must hold an object. The DOM costs about seven times the text, so the limit bounds memory too.
Expected<nlohmann::json> read_json_object_file(const std::string& path, const std::string& label,
                                               uint64_t max_bytes);

// The JSON type of `v` in words, for "expected an integer, found a string" messages.
std::string json_type_name(nlohmann::json::value_t type);
inline std::string json_type_name(const nlohmann::json& v) { return json_type_name(v.type()); }
inline std::string json_type_name(const nlohmann::ordered_json& v) { return json_type_name(v.type()); }

}  // namespace mm
