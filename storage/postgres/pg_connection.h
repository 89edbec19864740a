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
#include <utility>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::storage::pg {

using Param = std::optional<std::string>;

// TCP settings every connection gets, so that both ends of a connection cut off (a partition,
// a dead host, a server that vanished) notice in bounded time instead of TCP's own limits (15
// minutes and more for unacknowledged data, 2 hours before a keepalive):
//  * kTcpDefaults, this side (libpq connection parameters, unless the connection string sets
//    them): a connection whose sent data stays unacknowledged for 20 s is dropped
//    (tcp_user_timeout, ms), and an idle one is probed after 10 s, every 5 s, 3 times (~25 s);
//    the calls on it then fail with kUnavailable;
//  * kServerTcpDefaults, the server's side (session settings SET right after connecting, each
//    unless the connection string's `options` names it): the backend of a client that vanished
//    in the middle of a transaction ends within ~25 s, and its row locks with it. Without this,
//    such a transaction (idle, waiting for the client) holds its locks until the server's system
//    keepalive (2 hours) and blocks every other worker's writes to those rows (seen with a sync
//    partitioned mid-completion, tests/cli/pg_scale_test.cc).
// Override per database in the URI, e.g. ?tcp_user_timeout=60000&keepalives_idle=30 and
// ?options=-c%20tcp_keepalives_idle%3D30 (0 = the system's default).
inline constexpr std::pair<const char*, const char*> kTcpDefaults[] = {
    {"keepalives", "1"},
    {"keepalives_idle", "10"},
    {"keepalives_interval", "5"},
    {"keepalives_count", "3"},
    {"tcp_user_timeout", "20000"},
};
inline constexpr std::pair<const char*, const char*> kServerTcpDefaults[] = {
    {"tcp_keepalives_idle", "10"},
    {"tcp_keepalives_interval", "5"},
    {"tcp_keepalives_count", "3"},
    {"tcp_user_timeout", "20000"},
};
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
  // Connects with a libpq connection string or URI (postgresql://...), with kTcpDefaults
  // unless it sets them. kPermissionDenied when the server refuses the login (its SQLSTATE
  // class 28: wrong password, no pg_hba.conf entry, no such role) or wants a password none was
  // given for; kUnavailable for everything else (no server, no answer within connect_timeout,
  // a missing database, too many connections): decided by libpq and the server's SQLSTATE,
  // never by the message's words. `what` names the database in messages (pass a redacted form,
  // never the password).
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
