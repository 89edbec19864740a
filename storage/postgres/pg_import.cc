#include "storage/postgres/pg_import.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "engine/base/digest.h"
#include "storage/database.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_migrate.h"
#include "storage/sqlite_status.h"

namespace grin::storage {
namespace {

using pg::PgConnection;
using pg::PgResult;

// Copied first, in this order (foreign keys: books before book_enrichment/conversion_request,
// jobs before job_checkpoints); any other table both schemas have follows, by name.
const std::vector<std::string> kCopyOrder = {"books",           "runs",
                                             "jobs",            "events",
                                             "job_checkpoints", "collect_cursor",
                                             "book_enrichment", "conversion_request"};
// Kept by the stores or by triggers: recomputed from the copied rows, never copied.
const std::set<std::string> kDerived = {"job_counts", "book_count", "uploaded_per_second"};
// The tables whose triggers keep a derived table (book_count, uploaded_per_second): their
// triggers are off during the copy (one row per inserted book updated a million times in one
// transaction would cost O(n^2)) and the derived tables are recomputed instead.
const std::vector<std::string> kTriggerTables = {"books", "events"};

std::string Quote(const std::string& id) {
  std::string out = "\"";
  for (char ch : id) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

struct Column {
  std::string name;
  bool text = false;  // PostgreSQL type is text (ordered COLLATE "C", SQLite's BINARY)
};

struct Table {
  std::string name;
  std::vector<Column> columns;  // the SQLite columns, in SQLite's order
  std::vector<size_t> key;      // indexes into columns: the primary key (all columns if none)
};

// The SQL a table is read with for its digest, on each side. SQLite's jobs are read as the import
// leaves them: a lease becomes ready (retry after failed attempts) without its run.
std::string SqliteSelect(const Table& t) {
  std::string sql = "SELECT ";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const std::string& c = t.columns[i].name;
    if (i) sql += ", ";
    if (t.name == "jobs" && c == "status") {
      sql += "CASE WHEN status = 'leased' THEN CASE WHEN attempts > 0 THEN 'retry' "
             "ELSE 'ready' END ELSE status END";
    } else if (t.name == "jobs" && c == "lease_run") {
      sql += "CASE WHEN status = 'leased' THEN NULL ELSE lease_run END";
    } else {
      sql += Quote(c);
    }
  }
  sql += " FROM " + Quote(t.name) + " ORDER BY ";
  for (size_t i = 0; i < t.key.size(); ++i) {
    sql += (i ? ", " : "") + Quote(t.columns[t.key[i]].name);
  }
  return sql;
}

std::string PgSelect(const Table& t) {
  std::string sql = "SELECT ";
  for (size_t i = 0; i < t.columns.size(); ++i) sql += (i ? ", " : "") + Quote(t.columns[i].name);
  sql += " FROM " + Quote(t.name) + " ORDER BY ";
  for (size_t i = 0; i < t.key.size(); ++i) {
    const Column& c = t.columns[t.key[i]];
    sql += (i ? ", " : "") + Quote(c.name) + (c.text ? " COLLATE \"C\"" : "") + " NULLS FIRST";
  }
  return sql;
}

// The recomputed tables: what the SQLite rows say they must hold, and what PostgreSQL holds.
struct DerivedCheck {
  const char* table;
  const char* sqlite_sql;
  const char* pg_sql;
};
const DerivedCheck kDerivedChecks[] = {
    {"job_counts",
     "SELECT c.stage, (SELECT count(*) FROM jobs j WHERE j.stage = c.stage) FROM job_counts c "
     "ORDER BY c.stage",
     "SELECT stage, n FROM job_counts ORDER BY stage COLLATE \"C\""},
    {"book_count", "SELECT 1, count(*) FROM books", "SELECT one, n FROM book_count ORDER BY one"},
    {"uploaded_per_second",
     "SELECT CAST(strftime('%s', at) AS INTEGER), count(*) FROM events "
     "WHERE stage = 'uploaded' AND strftime('%s', at) IS NOT NULL GROUP BY 1 ORDER BY 1",
     "SELECT sec, n FROM uploaded_per_second ORDER BY sec"},
};

// Rows hashed in order: every value as its text, NULL distinct from any text.
class RowHasher {
 public:
  void Value(bool null, std::string_view v) {
    if (null) {
      h_.Update("N", 1);
      return;
    }
    uint64_t n = v.size();
    h_.Update("V", 1);
    h_.Update(&n, sizeof n);
    h_.Update(v);
  }
  void EndRow() {
    h_.Update("\n", 1);
    ++rows_;
  }
  TableDigest Finish(std::string table) {
    return TableDigest{std::move(table), rows_, h_.FinalHex()};
  }

 private:
  Hasher h_{Hasher::Kind::kSha256};
  int64_t rows_ = 0;
};

Result<TableDigest> SqliteDigest(SQLite::Database& db, const std::string& path,
                                 const std::string& table, const std::string& sql) {
  try {
    SQLite::Statement q(db, sql);
    RowHasher h;
    const int n = q.getColumnCount();
    while (q.executeStep()) {
      for (int i = 0; i < n; ++i) {
        SQLite::Column c = q.getColumn(i);
        if (c.isNull()) {
          h.Value(true, {});
        } else {
          const char* p = c.getText();
          h.Value(false, std::string_view(p, static_cast<size_t>(c.getBytes())));
        }
      }
      h.EndRow();
    }
    return h.Finish(table);
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path + ": reading table " + table);
  }
}

// Reads through a cursor, in pages (the caller has a transaction open).
Result<TableDigest> PgDigest(PgConnection& c, const std::string& table, const std::string& sql) {
  GRIN_ASSIGN_OR_RETURN(PgResult d, c.Exec("DECLARE grin_verify NO SCROLL CURSOR FOR " + sql));
  RowHasher h;
  for (;;) {
    GRIN_ASSIGN_OR_RETURN(PgResult page, c.Exec("FETCH 5000 FROM grin_verify"));
    for (int r = 0; r < page.rows(); ++r) {
      for (int i = 0; i < page.columns(); ++i) {
        if (page.IsNull(r, i)) {
          h.Value(true, {});
        } else {
          h.Value(false, page.Text(r, i));
        }
      }
      h.EndRow();
    }
    if (page.rows() == 0) break;
  }
  GRIN_ASSIGN_OR_RETURN(PgResult closed, c.Exec("CLOSE grin_verify"));
  return h.Finish(table);
}

// The tables to copy: every table of the SQLite run but SQLite's own and the derived ones, each
// with every column; all must exist in PostgreSQL.
Result<std::vector<Table>> PlanTables(SQLite::Database& db, const std::string& path,
                                      PgConnection& c) {
  std::map<std::string, std::map<std::string, std::string>> pg_types;  // table -> col -> type
  GRIN_ASSIGN_OR_RETURN(
      PgResult cols,
      c.Exec("SELECT table_name, column_name, data_type FROM information_schema.columns "
             "WHERE table_schema = current_schema()"));
  for (int i = 0; i < cols.rows(); ++i) pg_types[cols.Text(i, 0)][cols.Text(i, 1)] = cols.Text(i, 2);

  std::vector<Table> out;
  try {
    std::vector<std::string> names;
    SQLite::Statement q(db,
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    while (q.executeStep()) {
      std::string n = q.getColumn(0).getString();
      if (!kDerived.count(n)) names.push_back(n);
    }
    std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      auto rank = [](const std::string& n) {
        auto it = std::find(kCopyOrder.begin(), kCopyOrder.end(), n);
        return static_cast<size_t>(it - kCopyOrder.begin());
      };
      return rank(a) < rank(b);
    });
    for (const auto& n : names) {
      auto pt = pg_types.find(n);
      if (pt == pg_types.end()) {
        return Status::FailedPrecondition(
            path + ": table " + n + " has no counterpart in the PostgreSQL schema; this " +
            "grin-jobs cannot move it (is the run from a newer grin-jobs?)");
      }
      Table t;
      t.name = n;
      std::vector<std::pair<int, size_t>> pk;
      SQLite::Statement ti(db, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid");
      ti.bind(1, n);
      while (ti.executeStep()) {
        Column col;
        col.name = ti.getColumn(0).getString();
        auto type = pt->second.find(col.name);
        if (type == pt->second.end()) {
          return Status::FailedPrecondition(
              path + ": column " + n + "." + col.name + " has no counterpart in the " +
              "PostgreSQL schema; this grin-jobs cannot move it");
        }
        col.text = type->second == "text";
        if (int k = ti.getColumn(1).getInt(); k > 0) pk.push_back({k, t.columns.size()});
        t.columns.push_back(col);
      }
      std::sort(pk.begin(), pk.end());
      for (auto& [k, idx] : pk) t.key.push_back(idx);
      if (t.key.empty()) {
        for (size_t i = 0; i < t.columns.size(); ++i) t.key.push_back(i);
      }
      out.push_back(std::move(t));
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, path + ": reading the schema");
  }
  return out;
}

// Both sides' digests of every table; the first difference is kDataLoss naming the table. The
// PostgreSQL side reads inside whatever transaction the caller has open.
Result<std::vector<TableDigest>> Compare(SQLite::Database& db, const std::string& path,
                                         PgConnection& c, const std::vector<Table>& tables,
                                         const std::string& what) {
  std::vector<TableDigest> out;
  auto check = [&](const TableDigest& s, const TableDigest& p) -> Status {
    if (s.rows != p.rows) {
      return Status::DataLoss("table " + s.table + ": " + std::to_string(s.rows) +
                              " rows in " + path + " but " + std::to_string(p.rows) + " in " +
                              what);
    }
    if (s.sha256 != p.sha256) {
      return Status::DataLoss("table " + s.table + ": the rows of " + path + " and " + what +
                              " differ (same count, " + std::to_string(s.rows) +
                              ", different content)");
    }
    return Status::Ok();
  };
  for (const Table& t : tables) {
    GRIN_ASSIGN_OR_RETURN(TableDigest s, SqliteDigest(db, path, t.name, SqliteSelect(t)));
    GRIN_ASSIGN_OR_RETURN(TableDigest p, PgDigest(c, t.name, PgSelect(t)));
    GRIN_RETURN_IF_ERROR(check(s, p));
    out.push_back(s);
  }
  for (const DerivedCheck& d : kDerivedChecks) {
    GRIN_ASSIGN_OR_RETURN(TableDigest s, SqliteDigest(db, path, d.table, d.sqlite_sql));
    GRIN_ASSIGN_OR_RETURN(TableDigest p, PgDigest(c, d.table, d.pg_sql));
    GRIN_RETURN_IF_ERROR(check(s, p));
    out.push_back(s);
  }
  return out;
}

// COPY's text format: backslash, tab, newline and carriage return escaped; NULL is \N.
void AppendCopyValue(std::string& buf, std::string_view v) {
  for (char ch : v) {
    switch (ch) {
      case '\\': buf += "\\\\"; break;
      case '\t': buf += "\\t"; break;
      case '\n': buf += "\\n"; break;
      case '\r': buf += "\\r"; break;
      default: buf += ch;
    }
  }
}

Status CopyResultStatus(PGconn* conn, PGresult* r, const std::string& what) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string msg;  // one line: libpq's messages span lines, indented with tabs
  for (char ch : std::string(PQresultErrorMessage(r))) {
    if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
    if (ch == ' ' && (msg.empty() || msg.back() == ' ')) continue;
    msg += ch;
  }
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  if ((!state || !*state) && PQstatus(conn) != CONNECTION_OK) {
    // No answer from the server at all: it went away (restart, network cut, terminated).
    return Status::Unavailable(what + ": " + msg + "; the connection broke, nothing was "
                               "committed: run it again");
  }
  return pg::PgStatus(state ? state : "", msg, what);
}

// One table through COPY ... FROM STDIN, its rows read from SQLite in key order.
Status CopyTable(SQLite::Database& db, const std::string& path, PgConnection& c, const Table& t,
                 int64_t* rows) {
  const std::string what = "copying table " + t.name + " into " + c.what();
  std::string cols;
  for (size_t i = 0; i < t.columns.size(); ++i) cols += (i ? ", " : "") + Quote(t.columns[i].name);
  PGconn* conn = c.handle();
  {
    PGresult* r = PQexec(conn, ("COPY " + Quote(t.name) + " (" + cols + ") FROM STDIN").c_str());
    if (PQresultStatus(r) != PGRES_COPY_IN) {
      Status s = CopyResultStatus(conn, r, what);
      PQclear(r);
      if (s.ok()) s = Status::Internal(what + ": COPY did not start");
      return s;
    }
    PQclear(r);
  }
  std::string buf;
  Status read_error;
  bool send_failed = false;
  auto flush = [&]() {
    if (!buf.empty() && PQputCopyData(conn, buf.data(), static_cast<int>(buf.size())) != 1) {
      send_failed = true;
    }
    buf.clear();
  };
  *rows = 0;
  try {
    std::string sql = "SELECT " + cols + " FROM " + Quote(t.name) + " ORDER BY ";
    for (size_t i = 0; i < t.key.size(); ++i) {
      sql += (i ? ", " : "") + Quote(t.columns[t.key[i]].name);
    }
    SQLite::Statement q(db, sql);
    const int n = q.getColumnCount();
    while (!send_failed && q.executeStep()) {
      for (int i = 0; i < n; ++i) {
        if (i) buf += '\t';
        SQLite::Column col = q.getColumn(i);
        if (col.isNull()) {
          buf += "\\N";
        } else {
          const char* p = col.getText();
          AppendCopyValue(buf, std::string_view(p, static_cast<size_t>(col.getBytes())));
        }
      }
      buf += '\n';
      ++*rows;
      if (buf.size() >= (1 << 20)) flush();
    }
  } catch (const SQLite::Exception& e) {
    read_error = FromSqliteException(e, path + ": reading table " + t.name);
  }
  if (read_error.ok()) flush();
  PQputCopyEnd(conn, read_error.ok() && !send_failed ? nullptr : "grin-jobs: copy aborted");
  Status result;
  while (PGresult* r = PQgetResult(conn)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && result.ok()) result = CopyResultStatus(conn, r, what);
    PQclear(r);
  }
  if (!read_error.ok()) return read_error;
  if (!result.ok()) return result;
  if (send_failed || PQstatus(conn) != CONNECTION_OK) {
    return Status::Unavailable(what + ": the connection broke (" +
                               std::string(PQerrorMessage(conn)) + "); run it again");
  }
  return Status::Ok();
}

Status Exec(PgConnection& c, const std::string& sql, const pg::Params& params = {}) {
  auto r = c.Exec(sql, params);
  return r.ok() ? Status::Ok() : r.status();
}

// The first copied table of the target that has rows, or "" when none has.
Result<std::string> NonEmptyTable(PgConnection& c, const std::vector<Table>& tables) {
  for (const Table& t : tables) {
    GRIN_ASSIGN_OR_RETURN(PgResult r,
                          c.Exec("SELECT EXISTS (SELECT 1 FROM " + Quote(t.name) + ")"));
    if (r.Int(0, 0) != 0) return t.name;
  }
  return std::string();
}

Result<std::unique_ptr<PgConnection>> ConnectTarget(const std::string& conninfo) {
  GRIN_ASSIGN_OR_RETURN(auto c, PgConnection::Connect(conninfo, pg::RedactConninfo(conninfo)));
  GRIN_RETURN_IF_ERROR(Exec(*c, "SET client_encoding = 'UTF8'"));
  return c;
}

Result<std::unique_ptr<SQLite::Database>> OpenSource(const std::string& path, bool read_only) {
  DatabaseOptions o;
  o.create = false;
  o.read_only = read_only;
  return OpenDatabase(path, o);
}

}  // namespace

Result<std::vector<TableDigest>> VerifyRun(const std::string& sqlite_path,
                                           const std::string& conninfo) {
  GRIN_ASSIGN_OR_RETURN(auto db, OpenSource(sqlite_path, /*read_only=*/true));
  GRIN_ASSIGN_OR_RETURN(auto c, ConnectTarget(conninfo));
  GRIN_ASSIGN_OR_RETURN(std::vector<Table> tables, PlanTables(*db, sqlite_path, *c));
  pg::PgTransaction tx(*c);
  GRIN_RETURN_IF_ERROR(tx.Begin());
  GRIN_RETURN_IF_ERROR(Exec(*c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
  try {
    SQLite::Transaction snapshot(*db, SQLite::TransactionBehavior::DEFERRED);
    return Compare(*db, sqlite_path, *c, tables, c->what());
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, sqlite_path + ": reading the run");
  }
}

Result<ImportReport> ImportSqliteRun(const std::string& sqlite_path, const std::string& conninfo) {
  const auto start = std::chrono::steady_clock::now();
  ImportReport report;
  // The source, migrated as any writing command would; then a read-only connection of its own
  // for the verification.
  GRIN_ASSIGN_OR_RETURN(auto db, OpenSource(sqlite_path, /*read_only=*/false));
  GRIN_ASSIGN_OR_RETURN(auto check_db, OpenSource(sqlite_path, /*read_only=*/true));
  GRIN_ASSIGN_OR_RETURN(auto c, ConnectTarget(conninfo));
  if (auto migrated = pg::MigratePostgres(*c); !migrated.ok()) return migrated.status();
  GRIN_ASSIGN_OR_RETURN(std::vector<Table> tables, PlanTables(*db, sqlite_path, *c));

  std::string holder;
  {
    pg::PgTransaction tx(*c);
    GRIN_RETURN_IF_ERROR(tx.Begin());
    // Nobody else writes the copied tables until the commit (readers still may).
    std::string lock = "LOCK TABLE ";
    for (size_t i = 0; i < tables.size(); ++i) lock += (i ? ", " : "") + Quote(tables[i].name);
    GRIN_RETURN_IF_ERROR(Exec(*c, lock + " IN EXCLUSIVE MODE"));
    GRIN_ASSIGN_OR_RETURN(holder, NonEmptyTable(*c, tables));
    if (holder.empty()) {
      try {
        SQLite::Transaction read(*db, SQLite::TransactionBehavior::DEFERRED);
        for (const std::string& t : kTriggerTables) {
          GRIN_RETURN_IF_ERROR(Exec(*c, "ALTER TABLE " + Quote(t) + " DISABLE TRIGGER USER"));
        }
        for (const Table& t : tables) {
          int64_t rows = 0;
          GRIN_RETURN_IF_ERROR(CopyTable(*db, sqlite_path, *c, t, &rows));
        }
        for (const std::string& t : kTriggerTables) {
          GRIN_RETURN_IF_ERROR(Exec(*c, "ALTER TABLE " + Quote(t) + " ENABLE TRIGGER USER"));
        }
      } catch (const SQLite::Exception& e) {
        return FromSqliteException(e, sqlite_path + ": reading the run");
      }
      // A lease of a process that is gone: back to ready (retry after failed attempts), the
      // token kept (the fence refuses a write on it: the job is no longer leased).
      GRIN_ASSIGN_OR_RETURN(
          PgResult freed,
          c->Exec("UPDATE jobs SET status = CASE WHEN attempts > 0 THEN 'retry' ELSE 'ready' END, "
                  "lease_run = NULL, lease_expires_at = NULL WHERE status = 'leased'"));
      report.leases_released = freed.Affected();
      // The derived tables, from the copied rows.
      GRIN_RETURN_IF_ERROR(Exec(
          *c, "UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = "
              "job_counts.stage)"));
      GRIN_RETURN_IF_ERROR(Exec(*c, "UPDATE book_count SET n = (SELECT count(*) FROM books)"));
      GRIN_RETURN_IF_ERROR(Exec(*c, "DELETE FROM uploaded_per_second"));
      GRIN_RETURN_IF_ERROR(Exec(
          *c, "INSERT INTO uploaded_per_second(sec, n) SELECT grin_iso_unix_seconds(at), count(*) "
              "FROM events WHERE stage = 'uploaded' AND grin_iso_unix_seconds(at) IS NOT NULL "
              "GROUP BY 1"));
      // New ids continue after the copied ones.
      GRIN_ASSIGN_OR_RETURN(
          PgResult ids,
          c->Exec("SELECT table_name, column_name FROM information_schema.columns "
                  "WHERE table_schema = current_schema() AND is_identity = 'YES'"));
      std::set<std::string> copied;
      for (const Table& t : tables) copied.insert(t.name);
      for (int i = 0; i < ids.rows(); ++i) {
        const std::string table = ids.Text(i, 0), col = ids.Text(i, 1);
        if (!copied.count(table)) continue;
        GRIN_RETURN_IF_ERROR(Exec(
            *c,
            "SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max(" + Quote(col) +
                ") FROM " + Quote(table) + "), 0) + 1, false)",
            {Quote(table), col}));
      }
      // Verified before it counts: an independent read of both sides, inside this transaction.
      try {
        SQLite::Transaction snapshot(*check_db, SQLite::TransactionBehavior::DEFERRED);
        GRIN_ASSIGN_OR_RETURN(report.tables,
                              Compare(*check_db, sqlite_path, *c, tables, c->what()));
      } catch (const SQLite::Exception& e) {
        return FromSqliteException(e, sqlite_path + ": reading the run");
      }
      GRIN_RETURN_IF_ERROR(tx.Commit());
    }
  }
  if (!holder.empty()) {
    // The target holds a run: this one, already copied (every table matches), or another.
    auto same = VerifyRun(sqlite_path, conninfo);
    if (!same.ok()) {
      if (same.status().code() != StatusCode::kDataLoss) return same.status();
      return Status::AlreadyExists(c->what() + " already holds a run (table " + holder +
                                   " has rows) that is not this one (" + same.status().message() +
                                   "); move the run into an empty database");
    }
    report.tables = std::move(*same);
    report.already_done = true;
  }
  report.micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return report;
}

bool ConninfoHasPassword(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) {
    // Not parseable: be conservative with what looks like a URI's user:password@.
    auto scheme = conninfo.find("://");
    if (scheme == std::string::npos) return conninfo.find("password") != std::string::npos;
    auto at = conninfo.find('@', scheme);
    return at != std::string::npos && conninfo.substr(scheme, at - scheme).find(':') !=
                                          std::string::npos;
  }
  bool has = false;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val && *o->val) has = true;
  }
  PQconninfoFree(opts);
  return has;
}

}  // namespace grin::storage
