// mm::Error / mm::Expected: the error plumbing of the MLIR-free libraries (checkpoint reader,
// synthesizer, text, runtime internals). An error carries the exit-code class of design.md
// section 6 and a message that names the file, key or tensor at fault and what was expected.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace mm {

enum class ErrorKind {
  BadInput = 1,  // file, model, plan or request is wrong (exit 1)
  Usage = 2,     // command-line misuse (exit 2)
  Internal = 3,  // our bug or a device failure (exit 3)
};

struct Error {
  ErrorKind kind = ErrorKind::BadInput;
  std::string message;

  static Error bad_input(std::string msg) { return {ErrorKind::BadInput, std::move(msg)}; }
  static Error usage(std::string msg) { return {ErrorKind::Usage, std::move(msg)}; }
  static Error internal(std::string msg) { return {ErrorKind::Internal, std::move(msg)}; }
  int exit_code() const { return static_cast<int>(kind); }
};

// A value or an Error. Deliberately tiny (C++20 has no std::expected).
template <class T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Expected<void>.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}
  static Status success() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace mm
