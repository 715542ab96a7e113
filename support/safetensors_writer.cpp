#include "support/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace mm {
namespace {

// The Rust safetensors crate sorts tensors by its Dtype enum, descending, then by name; its
// enum lists types by growing alignment (BOOL, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32,
// F64, I64, U64). Mirroring that order keeps our files byte-compatible with what save_file writes.
int safetensors_dtype_rank(DType dt) {
  switch (dt) {
    case DType::BOOL: return 0;
    case DType::U8: return 1;
    case DType::I8: return 2;
    case DType::F8_E4M3: return 3;
    case DType::I16: return 4;
    case DType::F16: return 5;
    case DType::BF16: return 6;
    case DType::I32: return 7;
    case DType::F32: return 8;
    case DType::F64: return 9;
    case DType::I64: return 10;
    case DType::COUNT: break;
  }
  return -1;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

uint64_t safetensors_entry_bytes(const SafetensorsEntry& entry) {
  uint64_t n = dtype_size(entry.dtype);
  for (int64_t d : entry.shape) {
    if (d < 0) return 0;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

Expected<SafetensorsLayout> plan_safetensors(const std::vector<SafetensorsEntry>& entries,
                                             const std::map<std::string, std::string>& metadata) {
  SafetensorsLayout layout;
  layout.nbytes.resize(entries.size());
  std::set<std::string_view> names;
  for (size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsEntry& e = entries[i];
    if (e.name.empty() || e.name == "__metadata__")
      return Error::internal("safetensors writer: invalid tensor name '" + e.name + "'");
    if (!names.insert(e.name).second)
      return Error::internal("safetensors writer: duplicate tensor name '" + e.name + "'");
    if (safetensors_dtype_rank(e.dtype) < 0)
      return Error::internal("safetensors writer: tensor '" + e.name + "' has no dtype");
    uint64_t n = dtype_size(e.dtype);
    for (int64_t d : e.shape) {
      if (d < 0)
        return Error::internal("safetensors writer: tensor '" + e.name + "' has a negative dimension");
      if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d))
        return Error::internal("safetensors writer: tensor '" + e.name + "' byte size overflows");
      n *= static_cast<uint64_t>(d);
    }
    layout.nbytes[i] = n;
  }

  layout.data_order.resize(entries.size());
  std::iota(layout.data_order.begin(), layout.data_order.end(), size_t{0});
  std::sort(layout.data_order.begin(), layout.data_order.end(), [&](size_t a, size_t b) {
    int ra = safetensors_dtype_rank(entries[a].dtype), rb = safetensors_dtype_rank(entries[b].dtype);
    if (ra != rb) return ra > rb;
    return entries[a].name < entries[b].name;
  });

  // Built as text: nlohmann's ordered_json looks keys up linearly, which is quadratic for the
  // ~5,000 tensors of a full-size shard.
  std::string& h = layout.header;
  h = "{";
  if (!metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    h += "\"__metadata__\":" + meta.dump();
  }
  std::vector<uint64_t> rel(entries.size());
  uint64_t pos = 0;
  for (size_t i : layout.data_order) {
    rel[i] = pos;
    if (layout.nbytes[i] > UINT64_MAX - pos)
      return Error::internal("safetensors writer: file size overflows at '" + entries[i].name + "'");
    pos += layout.nbytes[i];
    if (h.size() > 1) h += ',';
    h += nlohmann::json(entries[i].name).dump();
    h += ":{\"dtype\":\"";
    h += dtype_name(entries[i].dtype);
    h += "\",\"shape\":[";
    for (size_t d = 0; d < entries[i].shape.size(); ++d) {
      if (d) h += ',';
      h += std::to_string(entries[i].shape[d]);
    }
    h += "],\"data_offsets\":[" + std::to_string(rel[i]) + "," + std::to_string(pos) + "]}";
  }
  h += '}';
  // safetensors pads the header with spaces so the data region starts 8-byte aligned.
  layout.header.append((8 - layout.header.size() % 8) % 8, ' ');
  uint64_t data_begin = 8 + layout.header.size();
  layout.offsets.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) layout.offsets[i] = data_begin + rel[i];
  layout.file_size = data_begin + pos;
  return layout;
}

SafetensorsFileWriter::SafetensorsFileWriter(SafetensorsFileWriter&& other) noexcept
    : path_(std::move(other.path_)), layout_(std::move(other.layout_)), fd_(other.fd_) {
  other.fd_ = -1;
}

SafetensorsFileWriter& SafetensorsFileWriter::operator=(SafetensorsFileWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    layout_ = std::move(other.layout_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

SafetensorsFileWriter::~SafetensorsFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

static Status pwrite_all(int fd, const std::string& path, const void* data, uint64_t size,
                         uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::bad_input("cannot write " + path + ": " + errno_text());
    }
    p += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::success();
}

Expected<SafetensorsFileWriter> SafetensorsFileWriter::create(const std::string& path,
                                                              SafetensorsLayout layout) {
  SafetensorsFileWriter w;
  w.path_ = path;
  w.layout_ = std::move(layout);
  w.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return Error::bad_input("cannot create " + path + ": " + errno_text());
  uint8_t prefix[8];
  uint64_t len = w.layout_.header.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<uint8_t>(len >> (8 * i));
  if (Status s = pwrite_all(w.fd_, path, prefix, 8, 0); !s) return s.error();
  if (Status s = pwrite_all(w.fd_, path, w.layout_.header.data(), len, 8); !s) return s.error();
  // ftruncate extends with a hole: unwritten data reads as zeros and takes no disk space.
  if (::ftruncate(w.fd_, static_cast<off_t>(w.layout_.file_size)) != 0)
    return Error::bad_input("cannot size " + path + " to " + std::to_string(w.layout_.file_size) +
                            " bytes: " + errno_text());
  return w;
}

Status SafetensorsFileWriter::write_data(size_t index, uint64_t offset_in_entry, const void* data,
                                         uint64_t size) const {
  if (fd_ < 0) return Error::internal("safetensors writer: " + path_ + " is not open");
  if (index >= layout_.offsets.size() || offset_in_entry > layout_.nbytes[index] ||
      size > layout_.nbytes[index] - offset_in_entry)
    return Error::internal("safetensors writer: write outside tensor " + std::to_string(index) +
                           " of " + path_);
  return pwrite_all(fd_, path_, data, size, layout_.offsets[index] + offset_in_entry);
}

Status SafetensorsFileWriter::close() {
  if (fd_ < 0) return Status::success();
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return Error::bad_input("cannot finish writing " + path_ + ": " + errno_text());
  return Status::success();
}

}  // namespace mm
