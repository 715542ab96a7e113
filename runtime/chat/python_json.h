// Python-compatible text forms of JSON values, needed to reproduce what the reference chat template
// renders under transformers' apply_chat_template and what vLLM's parsers put on the wire:
//   - dumps(): json.dumps(x, ensure_ascii=False) with the default ", " / ": " separators (transformers
//     replaces Jinja's HTML-escaping `tojson` filter by exactly this, so "<", "&", "'" and "/" stay raw);
//   - to_template_text(): what `{{ x }}` prints for a scalar (str(x): None, True, 1.5, 1e-05, ...);
//   - python_strip(): str.strip() with Python's Unicode whitespace set (vLLM strips parameter values).
// Key order is the order the caller gave: use nlohmann::ordered_json end to end.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "support/status.h"

namespace mm::text {

using ordered_json = nlohmann::ordered_json;

// repr(float) of Python 3: shortest round-trip digits, fixed notation for decimal exponents in
// [-4, 16), else "d.ddde+XX"; integral values keep ".0". Non-finite values print as Python's json
// does when `json_style` (NaN, Infinity, -Infinity) and as str() otherwise (nan, inf, -inf).
std::string python_float_repr(double value, bool json_style);

// json.dumps(value, ensure_ascii=False). Strings that are not well-formed UTF-8 (a model may
// write any bytes) have each offending byte replaced by U+FFFD, so the result is always valid JSON.
std::string dumps(const ordered_json& value);

// `text` with each byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD (the
// rule dumps() applies to strings).
std::string to_valid_utf8(std::string_view text);

// str(value) for the scalars a template prints with {{ }}. Arrays and objects would print as a
// Python repr, which we do not reproduce: they are an error naming `what`.
mm::Expected<std::string> to_template_text(const ordered_json& value, std::string_view what);

// Python truthiness of a JSON value (empty string/array/object, 0, 0.0, false and null are false).
bool python_truthy(const ordered_json& value);

// str.strip() without arguments: removes leading/trailing code points that Python's isspace() accepts.
std::string_view python_strip(std::string_view text);

}  // namespace mm::text
