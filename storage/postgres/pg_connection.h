#pragma once
// PgConnection, PgResult, PgTransaction: a small RAII layer over libpq.
//
// Values never go into SQL text: Exec() sends the statement and its parameters apart
// (PQexecParams, text format), so a parameter can only ever be a value; a NULL parameter is
// std::nullopt. ExecScript() runs several statements at once and is only for SQL compiled into
// the program (the embedded migrations). Errors come back as Status: the SQLSTATE decides the
// code (PgStatus), the message names what was being done and says what to do; the connection
// string is never in a message (it may hold a password).
//
// Thread safety: a PgConnection is used by one thread at a time (libpq's rule); PgResult is a
// plain value owned by one thread.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::storage::pg {

using Param = std::optional<std::string>;
using Params = std::vector<Param>;

// The rows a statement returned (or none); owns its PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}

  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  int columns() const { return r_ ? PQnfields(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  // The value as text ("" for NULL).
  std::string Text(int row, int col) const;
  // The value as an integer (0 for NULL); bigint, integer, numeric without fraction, or
  // boolean ('t' = 1).
  int64_t Int(int row, int col) const;
  // Rows changed by an INSERT/UPDATE/DELETE (PQcmdTuples).
  int64_t Affected() const;

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

class PgConnection {
 public:
  // Connects with a libpq connection string or URI (postgresql://...). kUnavailable when the
  // server cannot be reached, kPermissionDenied when it refuses the login. `what` names the
  // database in messages (pass a redacted form, never the password).
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                       std::string what);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // One statement with $1.. parameters (text format; cast in the SQL where the type matters).
  Result<PgResult> Exec(std::string_view sql, const Params& params = {});
  // Trusted, compiled-in SQL of several statements, no parameters (migrations).
  Status ExecScript(std::string_view sql);

  // Waits up to timeout_micros for a NOTIFY on a channel this connection LISTENs to; true if
  // one (or more: all pending ones are consumed) arrived.
  Result<bool> WaitForNotification(int64_t timeout_micros);

  // False once the connection broke (the server went away): drop it and connect again.
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  const std::string& what() const { return what_; }
  PGconn* handle() { return conn_; }

 private:
  PgConnection(PGconn* conn, std::string what) : conn_(conn), what_(std::move(what)) {}
  Status ErrorFrom(PGresult* r, std::string_view sql);
  PGconn* conn_;
  std::string what_;
};

// BEGIN on construction (optionally with a mode, e.g. "ISOLATION LEVEL SERIALIZABLE"), ROLLBACK
// on destruction unless Commit() succeeded.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c) : c_(c) {}
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;

  Status Begin();
  Status Commit();

 private:
  PgConnection& c_;
  bool open_ = false;
};

// The Status for a failed statement, by SQLSTATE: class 08 (connection) and 57P0x (server
// shutting down) → kUnavailable; 40001 / 40P01 (serialization failure, deadlock) → kBusy: run
// the transaction again; 53100 / 53xxx (disk full, out of resources) → kNoSpace /
// kResourceExhausted; class 28 and 42501 → kPermissionDenied; class 23 (integrity) →
// kConflict; classes 22 and 42 → kInvalidArgument; 57014 (canceled) → kCancelled; else
// kInternal.
Status PgStatus(std::string_view sqlstate, std::string_view message, std::string_view what);

// True when the whole transaction may simply be run again (kBusy: serialization failure or
// deadlock).
inline bool IsRetryable(const Status& s) { return s.code() == StatusCode::kBusy; }

// A connection string with any password removed, for messages ("postgresql://u@h/db").
std::string RedactConninfo(const std::string& conninfo);

}  // namespace grin::storage::pg
