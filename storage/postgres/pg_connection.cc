#include "storage/postgres/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <regex>

namespace grin::storage::pg {
namespace {

// libpq's messages end with a newline and may span lines; a Status message is one line.
std::string OneLine(std::string_view m) {
  std::string s(m);
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}


// The value of one of the connection's libpq options ("" when unset).
std::string ConnOption(PGconn* c, std::string_view keyword) {
  std::string value;
  PQconninfoOption* opts = PQconninfo(c);
  for (PQconninfoOption* o = opts; o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == keyword && o->val != nullptr) value = o->val;
  }
  PQconninfoFree(opts);
  return value;
}

// libpq's connect_timeout (URI, key/value or PGCONNECT_TIMEOUT) in milliseconds; -1 = none.
// As libpq: a value of 1 counts as 2.
int ConnectTimeoutMillis(PGconn* c) {
  long s = std::strtol(ConnOption(c, "connect_timeout").c_str(), nullptr, 10);
  return s > 0 ? static_cast<int>(std::max(2L, std::min(s, 86400L))) * 1000 : -1;
}

// Drives PQconnectPoll until the connection is made or failed (PQstatus says which). The
// timeout (connect_timeout) counts from each new socket, as libpq's own; running out ends the
// attempt (libpq's PQconnectdb would try a multi-host string's next host instead).
Status WaitForConnection(PGconn* c, const std::string& what) {
  if (PQstatus(c) == CONNECTION_BAD) return Status::Ok();
  const int timeout_ms = ConnectTimeoutMillis(c);
  PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
  int fd = -1;
  auto deadline = std::chrono::steady_clock::now();
  while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
    if (PQsocket(c) != fd) {
      fd = PQsocket(c);
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    if (fd < 0) return Status::Ok();  // PQstatus is CONNECTION_BAD
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd p{fd, static_cast<short>(ps == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Internal(what + ": poll failed while connecting");
    if (r == 0) {
      return Status::Unavailable(what + ": cannot connect: no answer within " +
                                 std::to_string(timeout_ms / 1000) +
                                 " s (connect_timeout; is the PostgreSQL server running and "
                                 "reachable?)");
    }
    ps = PQconnectPoll(c);
  }
  return Status::Ok();
}

// The Status for a connection that failed (PQstatus CONNECTION_BAD), by what libpq and the
// server say, never by the message's words: a refused login is the server's SQLSTATE class 28
// (28P01 wrong password, 28000 no pg_hba.conf entry or no such role) or libpq's "a password is
// needed and none was given"; anything else (no server, a missing database, too many
// connections) is kUnavailable.
Status ConnectFailure(PGconn* c, const std::string& what) {
  // The verbose message: "...: FATAL:  28P01: password authentication failed ...\nLOCATION: ...".
  std::string verbose = PQerrorMessage(c);
  static const std::regex code(R"((FATAL|ERROR|PANIC):  ([0-9A-Z]{5}): )");
  std::string sqlstate;
  for (auto it = std::sregex_iterator(verbose.begin(), verbose.end(), code);
       it != std::sregex_iterator(); ++it) {
    sqlstate = (*it)[2].str();  // the last one: the attempt that ended it
  }
  // The message as default verbosity shows it: no SQLSTATE prefix, no LOCATION line.
  static const std::regex location(R"((^|\n)LOCATION:[^\n]*)");
  std::string msg = std::regex_replace(verbose, location, "");
  msg = OneLine(std::regex_replace(msg, code, "$1:  "));
  if (PQconnectionNeedsPassword(c)) {
    return Status::PermissionDenied(what + ": " + msg +
                                    " (the server wants a password: put it in ~/.pgpass, the "
                                    "file PGPASSFILE names, or PGPASSWORD)");
  }
  if (sqlstate.rfind("28", 0) == 0) {
    return Status::PermissionDenied(
        what + ": " + msg +
        (PQconnectionUsedPassword(c) ? " (the password was refused: check it and the user)"
                                     : " (check the user, and that pg_hba.conf lets this host in)"));
  }
  if (!sqlstate.empty()) {
    return Status::Unavailable(what + ": cannot connect: " + msg + " [SQLSTATE " + sqlstate + "]");
  }
  return Status::Unavailable(what + ": cannot connect: " + msg +
                             " (is the PostgreSQL server running and reachable?)");
}

}  // namespace

std::string PgResult::Text(int row, int col) const {
  if (!r_ || PQgetisnull(r_.get(), row, col)) return "";
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  if (!r_ || PQgetisnull(r_.get(), row, col)) return 0;
  const char* v = PQgetvalue(r_.get(), row, col);
  if (v[0] == 't' && v[1] == '\0') return 1;
  if (v[0] == 'f' && v[1] == '\0') return 0;
  return std::strtoll(v, nullptr, 10);
}

int64_t PgResult::Affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

Status PgStatus(std::string_view sqlstate, std::string_view message, std::string_view what) {
  std::string m = std::string(what) + ": " + OneLine(message);
  std::string_view cls = sqlstate.substr(0, 2);
  if (cls == "08" || sqlstate.substr(0, 4) == "57P0") {
    return Status::Unavailable(m + " (the PostgreSQL server is unreachable or shutting down; "
                                   "check it and rerun)");
  }
  if (sqlstate == "40001" || sqlstate == "40P01") return Status::Busy(m);
  if (sqlstate == "53100") return Status::NoSpace(m + " (the database server's disk is full)");
  if (cls == "53") return Status::ResourceExhausted(m);
  if (cls == "28" || sqlstate == "42501") {
    return Status::PermissionDenied(m + " (check the database role and its grants)");
  }
  if (cls == "23") return Status::Conflict(m);
  if (cls == "22" || cls == "42") return Status::InvalidArgument(m);
  if (sqlstate == "57014") return Status::Cancelled(m);
  return Status::Internal(m + (sqlstate.empty() ? "" : " [SQLSTATE " + std::string(sqlstate) + "]"));
}

std::string RedactConninfo(const std::string& conninfo) {
  // URI form: postgresql://user:password@host/... → postgresql://user@host/...
  static const std::regex uri_pw(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
  // key=value form: password=... (quoted or not) is dropped.
  static const std::regex kv_pw(R"((^|\s)password\s*=\s*('([^'\\]|\\.)*'|\S*))");
  std::string s = std::regex_replace(conninfo, uri_pw, "$1@");
  s = std::regex_replace(s, kv_pw, "$1password=***");
  // A password given as a URI query parameter.
  static const std::regex q_pw(R"(([?&])password=[^&]*)");
  return std::regex_replace(s, q_pw, "$1password=***");
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo,
                                                            std::string what) {
  // The defaults come before the caller's string, which libpq expands in place (expand_dbname):
  // a value the URI (or key/value string) sets wins over ours.
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kTcpDefaults) {
    keys.push_back(k);
    values.push_back(v);
  }
  keys.push_back("dbname");
  values.push_back(conninfo.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* c = PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (c == nullptr) return Status::ResourceExhausted(what + ": out of memory connecting");
  // VERBOSE puts the server's SQLSTATE into the message of a refused connection; libpq has no
  // other way to give it for a connection that never opened (ConnectFailure takes it out again).
  PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
  Status waited = WaitForConnection(c, what);
  if (!waited.ok() || PQstatus(c) != CONNECTION_OK) {
    Status s = waited.ok() ? ConnectFailure(c, what) : waited;
    PQfinish(c);
    return s;
  }
  PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
  std::unique_ptr<PgConnection> conn(new PgConnection(c, std::move(what)));
  // Quiet NOTICEs (e.g. "relation already exists, skipping") instead of libpq printing them.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  // One round trip: UTC, and the server's end of the socket bounded like ours (kServerTcpDefaults)
  // where the connection string's `options` does not set it.
  std::string set = "SET TIME ZONE 'UTC'";
  const std::string options = ConnOption(c, "options");
  for (const auto& [name, value] : kServerTcpDefaults) {
    if (options.find(name) != std::string::npos) continue;
    set += std::string("; SET ") + name + " = " + value;
  }
  GRIN_RETURN_IF_ERROR(conn->ExecScript(set));
  return conn;
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Status PgConnection::ErrorFrom(PGresult* r, std::string_view sql) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
  if (msg.empty()) msg = PQerrorMessage(conn_);
  (void)sql;
  if (state == nullptr && PQstatus(conn_) != CONNECTION_OK) {
    return PgStatus("08006", msg, what_);
  }
  return PgStatus(state ? state : "", msg, what_);
}

Result<PgResult> PgConnection::Exec(std::string_view sql, const Params& params) {
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* r = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                             values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
  PgResult owned(r);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return owned;
  return ErrorFrom(r, sql);
}

Status PgConnection::ExecScript(std::string_view sql) {
  std::string text(sql);
  PGresult* r = PQexec(conn_, text.c_str());
  PgResult owned(r);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
  return ErrorFrom(r, sql);
}

Result<bool> PgConnection::WaitForNotification(int64_t timeout_micros) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_micros);
  for (;;) {
    if (PQconsumeInput(conn_) == 0) return PgStatus("08006", PQerrorMessage(conn_), what_);
    bool got = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      got = true;
      PQfreemem(n);
    }
    if (got) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return PgStatus("08006", "no socket", what_);
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 1'000'000)));
    if (r < 0 && errno != EINTR) return Status::Internal(what_ + ": poll failed");
  }
}

PgTransaction::~PgTransaction() {
  if (open_ && c_.ok()) (void)c_.Exec("ROLLBACK");
}

Status PgTransaction::Begin() {
  GRIN_ASSIGN_OR_RETURN(PgResult r, c_.Exec("BEGIN"));
  (void)r;
  open_ = true;
  return Status::Ok();
}

Status PgTransaction::Commit() {
  auto r = c_.Exec("COMMIT");
  open_ = false;  // a failed COMMIT has rolled back
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace grin::storage::pg
