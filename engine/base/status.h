#pragma once
// Status: the outcome of an operation that can fail in an expected way.
//
// A Status is a code plus a human-readable one-line message. Expected failures (a 404, a lost
// lease, a corrupt file) are returned as values, never thrown. Status is a plain value type:
// copying is cheap, const methods are safe to call from several threads at once.

#include <string>
#include <string_view>
#include <utility>

namespace grin {

// A subset of Abseil's canonical codes (plus kConflict, kBusy, kNoSpace), each noted with its use.
enum class StatusCode {
  kOk = 0,
  kNotFound,            // no such file, key, bucket, book, upload; an archive GRIN does not have
  kInvalidArgument,     // bad input from the caller or a file: a flag, a key, a barcode
  kAlreadyExists,       // the thing to create is there already (O_EXCL: a log file name taken)
  kConflict,            // lease lost, stale fencing token, unique-key clash
  kBusy,                // SQLITE_BUSY / LOCKED, lock held by another process
  kUnavailable,         // timeouts, connection errors, 5xx, 429: retryable
  kPermissionDenied,    // 401 / 403, unreadable file
  kDataLoss,            // checksum / MDC mismatch, SQLITE_CORRUPT, truncated body
  kResourceExhausted,   // queue full, a budget or limit reached (retryable)
  kNoSpace,             // ENOSPC / EDQUOT / SQLITE_FULL: a disk or quota is full. Never the
                        // book's fault: a sync stops (drains) instead of failing books
  kFailedPrecondition,  // e.g. a DB from a newer schema version
  kCancelled,           // the caller asked to stop (Ctrl-C, a drained run)
  kInternal,            // anything else: a bug or an unexpected system error
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (same code).
  Status WithContext(std::string_view prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace grin

// Evaluates expr (a Status); returns it from the enclosing function if it is not OK.
#define GRIN_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::grin::Status grin_status_tmp_ = (expr);   \
    if (!grin_status_tmp_.ok()) return grin_status_tmp_; \
  } while (0)
