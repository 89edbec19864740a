#pragma once
// ByteSink: where a stage of the archive pipeline pushes the bytes it produces (plaintext out of a
// decryptor, the decrypted archive on its way to storage, ...).
//
// Thread safety: a producer calls Write() serially (never two calls at once), but possibly from a
// thread other than the one that created it (the librnp backend runs on its own thread). A sink
// that returns a non-OK Status stops the producer, which then reports that Status.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "engine/base/status.h"

namespace grin::archive {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Consumes n bytes at data (n > 0). The bytes are only valid during the call.
  virtual Status Write(const uint8_t* data, size_t n) = 0;
};

// Discards everything.
class NullSink final : public ByteSink {
 public:
  Status Write(const uint8_t*, size_t) override { return Status(); }
};

// Appends everything to a string; for tests and small messages.
class StringSink final : public ByteSink {
 public:
  Status Write(const uint8_t* data, size_t n) override {
    data_.append(reinterpret_cast<const char*>(data), n);
    return Status();
  }
  const std::string& data() const { return data_; }
  std::string& data() { return data_; }

 private:
  std::string data_;
};

// Adapts a callable.
class FunctionSink final : public ByteSink {
 public:
  explicit FunctionSink(std::function<Status(const uint8_t*, size_t)> fn) : fn_(std::move(fn)) {}
  Status Write(const uint8_t* data, size_t n) override { return fn_(data, n); }

 private:
  std::function<Status(const uint8_t*, size_t)> fn_;
};

}  // namespace grin::archive
