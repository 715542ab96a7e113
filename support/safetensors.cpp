#include "support/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "support/json_util.h"

namespace mm {
namespace {

// A tensor of more dimensions than this is not in any checkpoint we read; bounding the rank also
// bounds the work a hostile header can make us do per tensor.
constexpr size_t kMaxRank = 8;

std::string quote_name(const std::string& s) { return "\"" + s + "\""; }

// Reads a non-negative JSON integer into `out`; false if `v` is anything else.
bool get_u64(const nlohmann::json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

Expected<SafetensorsHeader> parse_safetensors_header(std::string_view header_json,
                                                     uint64_t header_len, uint64_t file_size,
                                                     const std::string& file) {
  SafetensorsHeader h;
  h.file = file;
  h.file_size = file_size;
  h.data_start = 8 + header_len;
  const uint64_t data_size = file_size - h.data_start;  // caller checked data_start <= file_size

  // The format requires a JSON object; checking the first byte gives a clearer message than the
  // JSON parser for the common "this is not a safetensors file at all" case.
  size_t first = header_json.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || header_json[first] != '{')
    return Error::bad_input(file + ": safetensors header is not a JSON object (the " +
                            std::to_string(header_len) +
                            " bytes after the length prefix must start with '{')");
  auto parsed = parse_json_strict(header_json, file + ": safetensors header");
  if (!parsed) return parsed.error();
  const nlohmann::json& root = *parsed;
  if (!root.is_object())
    return Error::bad_input(file + ": safetensors header is not a JSON object");

  h.tensors.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object())
        return Error::bad_input(file + ": __metadata__ must be an object of strings, found " +
                                json_type_name(entry));
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          return Error::bad_input(file + ": __metadata__ key " + quote_name(m.key()) +
                                  " must be a string, found " + json_type_name(m.value()));
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = file + ": tensor " + quote_name(name);
    if (name.empty()) return Error::bad_input(file + ": a tensor has an empty name");
    if (!entry.is_object())
      return Error::bad_input(where + ": expected an object {dtype, shape, data_offsets}, found " +
                              json_type_name(entry));
    for (auto k = entry.begin(); k != entry.end(); ++k)
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets")
        return Error::bad_input(where + ": unexpected key " + quote_name(k.key()) +
                                " (expected only dtype, shape, data_offsets)");

    TensorInfo t;
    t.name = name;
    t.file = file;

    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string())
      return Error::bad_input(where + ": missing or non-string \"dtype\"");
    auto dtype = dtype_from_safetensors(dt->get<std::string>());
    if (!dtype)
      return Error::bad_input(where + ": unknown dtype " + quote_name(dt->get<std::string>()) +
                              " (expected one of BF16, F16, F32, F64, I8, U8, I16, I32, I64, "
                              "BOOL, F8_E4M3)");
    t.dtype = *dtype;

    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array())
      return Error::bad_input(where + ": missing or non-array \"shape\"");
    if (shape->size() > kMaxRank)
      return Error::bad_input(where + ": shape has " + std::to_string(shape->size()) +
                              " dimensions (at most " + std::to_string(kMaxRank) + " expected)");
    uint64_t elements = 1;
    bool overflow = false;
    for (const auto& d : *shape) {
      uint64_t dim = 0;
      if (!get_u64(d, dim) || dim > static_cast<uint64_t>(INT64_MAX))
        return Error::bad_input(where + ": shape entries must be non-negative integers, found " +
                                d.dump());
      t.shape.push_back(static_cast<int64_t>(dim));
      overflow |= __builtin_mul_overflow(elements, dim, &elements);
    }
    uint64_t expected_bytes = 0;
    overflow |= __builtin_mul_overflow(elements, dtype_size(t.dtype), &expected_bytes);

    auto offs = entry.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (offs == entry.end() || !offs->is_array() || offs->size() != 2 ||
        !get_u64((*offs)[0], begin) || !get_u64((*offs)[1], end))
      return Error::bad_input(where +
                              ": \"data_offsets\" must be [begin, end] with non-negative integers");
    if (end < begin)
      return Error::bad_input(where + ": data_offsets [" + std::to_string(begin) + ", " +
                              std::to_string(end) + "] end before begin");
    if (end > data_size)
      return Error::bad_input(where + ": data_offsets [" + std::to_string(begin) + ", " +
                              std::to_string(end) + "] run past the end of the data region (" +
                              std::to_string(data_size) + " bytes; file truncated?)");
    if (overflow || end - begin != expected_bytes) {
      std::string shape_text = shape->dump();
      return Error::bad_input(
          where + ": byte length " + std::to_string(end - begin) + " does not match shape " +
          shape_text + " x " + std::string(dtype_name(t.dtype)) + " (" +
          (overflow ? std::string("overflows 64 bits") : std::to_string(expected_bytes)) +
          " bytes expected)");
    }
    t.offset = h.data_start + begin;
    t.nbytes = end - begin;
    h.tensors.push_back(std::move(t));
  }

  // Overlaps: sort by start; empty tensors occupy nothing and cannot overlap.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(h.tensors.size());
  for (const TensorInfo& t : h.tensors)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->name < b->name;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    const TensorInfo* cur = by_offset[i];
    if (cur->offset < prev->offset + prev->nbytes)
      return Error::bad_input(file + ": tensors " + quote_name(prev->name) + " and " +
                              quote_name(cur->name) + " overlap (data_offsets [" +
                              std::to_string(prev->offset - h.data_start) + ", " +
                              std::to_string(prev->offset - h.data_start + prev->nbytes) +
                              ") and [" + std::to_string(cur->offset - h.data_start) + ", " +
                              std::to_string(cur->offset - h.data_start + cur->nbytes) + "))");
  }
  // nlohmann::json keeps object keys sorted, so h.tensors is already in name order.
  return h;
}

Expected<SafetensorsHeader> read_safetensors_header(const std::string& path,
                                                    const std::string& file) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    return Error::bad_input(file + ": shard file not found (" + path + ")");
  if (!std::filesystem::is_regular_file(st))
    return Error::bad_input(file + ": shard is not a regular file (" + path + ")");
  uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return Error::bad_input(file + ": cannot stat: " + ec.message());
  if (file_size < 8)
    return Error::bad_input(file + ": file is " + std::to_string(file_size) +
                            " bytes, shorter than the 8-byte safetensors header length "
                            "(truncated or not a safetensors file)");

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Error::bad_input(file + ": cannot open " + path);
  unsigned char prefix[8];
  if (std::fread(prefix, 1, 8, f.get()) != 8)
    return Error::bad_input(file + ": cannot read the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | prefix[i];  // little endian
  if (header_len == 0)
    return Error::bad_input(file + ": header length is 0 (expected a JSON header)");
  if (header_len > file_size - 8)
    return Error::bad_input(file + ": header length " + std::to_string(header_len) +
                            " runs past the end of the file (" + std::to_string(file_size) +
                            " bytes; truncated or not a safetensors file)");
  if (header_len > kMaxSafetensorsHeaderBytes)
    return Error::bad_input(file + ": header length " + std::to_string(header_len) +
                            " exceeds the " + std::to_string(kMaxSafetensorsHeaderBytes) +
                            "-byte limit");
  std::string header(header_len, '\0');
  if (std::fread(header.data(), 1, header_len, f.get()) != header_len)
    return Error::bad_input(file + ": short read of the " + std::to_string(header_len) +
                            "-byte header");
  return parse_safetensors_header(header, header_len, file_size, file);
}

}  // namespace mm
