#include "support/safetensors.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "support/file_util.h"

namespace mm {
namespace {

// A tensor of more dimensions than this is not in any checkpoint we read; bounding the rank also
// bounds the work a hostile header can make us do per tensor.
constexpr size_t kMaxRank = 8;

std::string quote_name(const std::string& s) { return "\"" + s + "\""; }

// The header is parsed in one streaming pass (nlohmann's SAX parser, no DOM): a DOM of a 100 MB
// header of a million tiny tensors costs gigabytes and seconds, the records built here cost about
// three times the header's size. The schema is fixed (an object of tensor objects of dtype, shape
// and data_offsets, plus "__metadata__" of strings), so any other structure is refused at the
// first event that does not fit it, and nesting can never go deeper than three levels.
class HeaderSax {
 public:
  HeaderSax(SafetensorsHeader& h, const std::string& file, uint64_t data_size)
      : h_(h), file_(file), data_size_(data_size) {}

  const std::string& error() const { return error_; }

  bool null() { return scalar("null"); }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(int64_t v) {
    if (v < 0) return scalar_number(false, 0, std::to_string(v));
    return scalar_number(true, static_cast<uint64_t>(v), std::to_string(v));
  }
  bool number_unsigned(uint64_t v) { return scalar_number(true, v, std::to_string(v)); }
  bool number_float(double, const std::string& text) { return scalar_number(false, 0, text); }
  bool binary(nlohmann::json::binary_t&) { return scalar("binary data"); }
  bool string(std::string& v) {
    switch (state_) {
      case State::Metadata:
        h_.metadata[key_] = v;
        return true;
      case State::Tensor:
        if (field_ == Field::Dtype) {
          dtype_ = v;
          have_dtype_ = true;
          return true;
        }
        return bad_field("a string");
      case State::Shape:
      case State::Offsets:
        return bad_item("\"" + v + "\"");
      default:
        return scalar("a string");
    }
  }

  bool start_object(std::size_t) {
    switch (state_) {
      case State::Start:
        state_ = State::Root;
        return true;
      case State::Root:
        if (key_ == "__metadata__") {
          state_ = State::Metadata;
          return true;
        }
        begin_tensor();
        state_ = State::Tensor;
        return true;
      case State::Metadata:
        return fail(file_ + ": __metadata__ key " + quote(key_) + " must be a string, found an object");
      case State::Tensor:
        return bad_field("an object");
      default:
        return bad_item("an object");
    }
  }
  bool key(std::string& k) {
    if (state_ == State::Tensor) {
      if (k == "dtype") field_ = Field::Dtype;
      else if (k == "shape") field_ = Field::Shape;
      else if (k == "data_offsets") field_ = Field::Offsets;
      else
        return fail(where() + ": unexpected key " + quote(k) + " (expected only dtype, shape, data_offsets)");
      const int bit = 1 << static_cast<int>(field_);
      if (seen_fields_ & bit) return fail(file_ + ": safetensors header: invalid JSON: duplicate key " + quote(k));
      seen_fields_ |= bit;
      return true;
    }
    if (state_ == State::Metadata) {
      if (!metadata_keys_.insert(k).second)
        return fail(file_ + ": safetensors header: invalid JSON: duplicate key " + quote(k));
    } else if (k == "__metadata__") {
      if (seen_metadata_) return fail(file_ + ": safetensors header: invalid JSON: duplicate key \"__metadata__\"");
      seen_metadata_ = true;
    } else if (k.empty()) {
      return fail(file_ + ": a tensor has an empty name");
    }
    key_ = k;
    return true;
  }
  bool end_object() {
    switch (state_) {
      case State::Metadata:
        state_ = State::Root;
        return true;
      case State::Tensor:
        state_ = State::Root;
        return end_tensor();
      default:  // State::Root: the end of the header
        state_ = State::Done;
        return true;
    }
  }
  bool start_array(std::size_t) {
    if (state_ == State::Tensor && field_ == Field::Shape) {
      have_shape_ = true;
      state_ = State::Shape;
      return true;
    }
    if (state_ == State::Tensor && field_ == Field::Offsets) {
      offsets_array_ = true;
      state_ = State::Offsets;
      return true;
    }
    if (state_ == State::Tensor) return bad_field("an array");
    if (state_ == State::Shape || state_ == State::Offsets) return bad_item("an array");
    return scalar("an array");
  }
  bool end_array() {
    state_ = State::Tensor;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ...".
    std::string what = e.what();
    const size_t close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
    return fail(file_ + ": safetensors header: not valid JSON (" + what + ")");
  }

 private:
  enum class State { Start, Root, Metadata, Tensor, Shape, Offsets, Done };
  enum class Field { Dtype, Shape, Offsets };

  static std::string quote(const std::string& s) { return "\"" + s + "\""; }
  std::string where() const { return file_ + ": tensor " + quote(key_); }
  bool fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  // A scalar (or array) where the schema has no place for one.
  bool scalar(const std::string& found) {
    switch (state_) {
      case State::Start:
        return fail(file_ + ": safetensors header is not a JSON object");
      case State::Root:
        if (key_ == "__metadata__")
          return fail(file_ + ": __metadata__ must be an object of strings, found " + found);
        return fail(where() + ": expected an object {dtype, shape, data_offsets}, found " + found);
      case State::Metadata:
        return fail(file_ + ": __metadata__ key " + quote(key_) + " must be a string, found " + found);
      case State::Tensor:
        return bad_field(found);
      default:
        return bad_item(found);
    }
  }
  bool scalar_number(bool non_negative, uint64_t v, const std::string& text) {
    if (state_ == State::Shape) {
      if (!non_negative || v > static_cast<uint64_t>(INT64_MAX)) return bad_item(text);
      if (shape_.size() >= kMaxRank) {
        ++extra_dims_;
        return true;
      }
      shape_.push_back(static_cast<int64_t>(v));
      return true;
    }
    if (state_ == State::Offsets) {
      if (!non_negative || offsets_count_ >= 2) {
        offsets_bad_ = true;
        return true;
      }
      offsets_[offsets_count_++] = v;
      return true;
    }
    return scalar(non_negative ? "an integer" : "a number");
  }
  // A wrongly typed value of dtype / shape / data_offsets: reported as the checks below word it.
  bool bad_field(const std::string&) {
    switch (field_) {
      case Field::Dtype: return fail(where() + ": missing or non-string \"dtype\"");
      case Field::Shape: return fail(where() + ": missing or non-array \"shape\"");
      default: return offsets_error();
    }
  }
  bool bad_item(const std::string& found) {
    if (state_ == State::Offsets) return offsets_error();
    return fail(where() + ": shape entries must be non-negative integers, found " + found);
  }
  bool offsets_error() {
    return fail(where() + ": \"data_offsets\" must be [begin, end] with non-negative integers");
  }

  void begin_tensor() {
    seen_fields_ = 0;
    have_dtype_ = have_shape_ = offsets_array_ = offsets_bad_ = false;
    dtype_.clear();
    shape_.clear();
    extra_dims_ = 0;
    offsets_count_ = 0;
  }

  // Every check of one tensor entry, in the order the messages have always come in.
  bool end_tensor() {
    if (!have_dtype_) return fail(where() + ": missing or non-string \"dtype\"");
    auto dtype = dtype_from_safetensors(dtype_);
    if (!dtype)
      return fail(where() + ": unknown dtype " + quote(dtype_) +
                  " (expected one of BF16, F16, F32, F64, I8, U8, I16, I32, I64, BOOL, F8_E4M3)");
    if (!have_shape_) return fail(where() + ": missing or non-array \"shape\"");
    if (extra_dims_ > 0)
      return fail(where() + ": shape has " + std::to_string(shape_.size() + extra_dims_) +
                  " dimensions (at most " + std::to_string(kMaxRank) + " expected)");
    uint64_t elements = 1;
    bool overflow = false;
    for (int64_t d : shape_) overflow |= __builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements);
    uint64_t expected_bytes = 0;
    overflow |= __builtin_mul_overflow(elements, dtype_size(*dtype), &expected_bytes);
    if (!offsets_array_ || offsets_bad_ || offsets_count_ != 2) return offsets_error();
    const uint64_t begin = offsets_[0], end = offsets_[1];
    if (end < begin)
      return fail(where() + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  "] end before begin");
    if (end > data_size_)
      return fail(where() + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  "] run past the end of the data region (" + std::to_string(data_size_) +
                  " bytes; file truncated?)");
    if (overflow || end - begin != expected_bytes) {
      std::string shape_text = "[";
      for (size_t i = 0; i < shape_.size(); ++i) shape_text += (i ? "," : "") + std::to_string(shape_[i]);
      shape_text += "]";
      return fail(where() + ": byte length " + std::to_string(end - begin) + " does not match shape " +
                  shape_text + " x " + std::string(dtype_name(*dtype)) + " (" +
                  (overflow ? std::string("overflows 64 bits") : std::to_string(expected_bytes)) +
                  " bytes expected)");
    }
    TensorInfo t;
    t.name = key_;
    t.dtype = *dtype;
    t.shape = shape_;
    t.file = file_;
    t.offset = h_.data_start + begin;
    t.nbytes = end - begin;
    h_.tensors.push_back(std::move(t));
    return true;
  }

  SafetensorsHeader& h_;
  const std::string& file_;
  const uint64_t data_size_;
  State state_ = State::Start;
  Field field_ = Field::Dtype;
  std::string key_;  // the current tensor name (or metadata key)
  std::string error_;
  bool seen_metadata_ = false;
  std::set<std::string> metadata_keys_;
  // The tensor entry being read.
  int seen_fields_ = 0;
  bool have_dtype_ = false, have_shape_ = false, offsets_array_ = false, offsets_bad_ = false;
  std::string dtype_;
  std::vector<int64_t> shape_;
  size_t extra_dims_ = 0;
  uint64_t offsets_[2] = {0, 0};
  int offsets_count_ = 0;
};

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
  HeaderSax sax(h, file, data_size);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(header_json.begin(), header_json.end(), &sax,
                                   nlohmann::json::input_format_t::json, /*strict=*/true,
                                   /*ignore_comments=*/false);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return Error::bad_input(file + ": safetensors header: not valid JSON (" + e.what() + ")");
  }
  if (!ok || !sax.error().empty())
    return Error::bad_input(sax.error().empty() ? file + ": safetensors header is not valid JSON" : sax.error());

  // Name order (what the DOM used to give), and a name listed twice is refused.
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  for (size_t i = 1; i < h.tensors.size(); ++i)
    if (h.tensors[i].name == h.tensors[i - 1].name)
      return Error::bad_input(file + ": safetensors header: invalid JSON: duplicate key " +
                              quote_name(h.tensors[i].name));

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
  return h;
}

Expected<SafetensorsHeader> read_safetensors_header(const std::string& path,
                                                    const std::string& file) {
  if (describe_file_kind(path) == "missing")
    return Error::bad_input(file + ": shard file not found (" + path + ")");
  auto f = RegularFile::open(path, file);
  if (!f) return f.error();
  const uint64_t file_size = f->size();
  if (file_size < 8)
    return Error::bad_input(file + ": file is " + std::to_string(file_size) +
                            " bytes, shorter than the 8-byte safetensors header length "
                            "(truncated or not a safetensors file)");
  unsigned char prefix[8];
  if (Status st = f->read_at(0, prefix, 8, file); !st) return st.error();
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
  if (Status st = f->read_at(8, header.data(), header_len, file); !st) return st.error();
  return parse_safetensors_header(header, header_len, file_size, file);
}

}  // namespace mm
