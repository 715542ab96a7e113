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

// Reads a whole file of at most `max_bytes` bytes.
Expected<std::string> read_small_file(const std::string& path, const std::string& label,
                                      uint64_t max_bytes);

// Reads and parses a JSON file that must hold an object.
Expected<nlohmann::json> read_json_object_file(const std::string& path, const std::string& label);

// The JSON type of `v` in words, for "expected an integer, found a string" messages.
std::string json_type_name(const nlohmann::json& v);

}  // namespace mm
