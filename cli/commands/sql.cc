// grin-jobs sql: run one read-only SQL statement against a run's database and print the rows as
// a table, CSV or JSON. SQLite: the connection is opened read-only with query_only and ATTACH
// denied, and statements that could write are refused before they run. PostgreSQL: the statement
// runs alone (the extended protocol takes one) in a READ ONLY transaction that is rolled back, on
// a session whose default is read-only; the server refuses anything that writes. Both print the
// same text for the same values (integers, floats as SQLite writes them, NULL, text).
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"
#include "storage/open_run_queries.h"
#include "storage/sqlite_status.h"
#include "storage/state_reader.h"

#ifdef GRIN_HAVE_POSTGRES
#include <libpq-fe.h>

#include "storage/postgres/pg_connection.h"
#endif

namespace grin::cli {
namespace {

std::string CsvField(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

// The statement must read only: SELECT/WITH/VALUES/EXPLAIN, and PRAGMAs that only report. A
// PRAGMA that sets anything (PRAGMA x = v) or changes how the connection reads (writable_schema,
// journal_mode, ...) is refused, as are ATTACH and DETACH.
bool ReadOnlyPragma(const char* name, const char* arg) {
  static const char* const kReport[] = {
      "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
      "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
      "user_version", "schema_version", "application_id", "page_count", "page_size",
      "freelist_count", "encoding", "compile_options", "collation_list", "function_list",
      "module_list", "pragma_list", "database_list", "data_version"};
  // Pragmas whose argument names what to report on (a table, an index, a row limit).
  static const char* const kWithArgument[] = {
      "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
      "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check"};
  if (!name) return false;
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  auto in = [&n](const auto& list) {
    return std::any_of(std::begin(list), std::end(list), [&n](const char* p) { return n == p; });
  };
  return arg ? in(kWithArgument) : in(kReport);
}

int SqlAuthorizer(void* refused, int action, const char* a1, const char* a2, const char*,
                  const char*) {
  if (action == SQLITE_ATTACH || action == SQLITE_DETACH) return SQLITE_DENY;
  if (action == SQLITE_PRAGMA && !ReadOnlyPragma(a1, a2)) {
    *static_cast<std::string*>(refused) = std::string("PRAGMA ") + (a1 ? a1 : "");
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

// True if text holds anything but whitespace and SQL comments.
bool HasMoreSql(sqlite3* db, const char* text) {
  while (text && *text) {
    sqlite3_stmt* next = nullptr;
    const char* tail = nullptr;
    if (sqlite3_prepare_v2(db, text, -1, &next, &tail) != SQLITE_OK) return true;
    if (next) {
      sqlite3_finalize(next);
      return true;
    }
    if (tail == text) break;
    text = tail;  // a lone ';' prepares to nothing
  }
  return false;
}

// A result: column names, each row's cells as text (nullopt = NULL) and, for --format json, the
// rows as objects with typed values.
struct Rows {
  std::vector<std::string> names;
  std::vector<std::vector<std::optional<std::string>>> cells;
  nlohmann::json json = nlohmann::json::array();
};

void PrintRows(const Rows& r, const std::string& format, std::ostream& out) {
  const auto& names = r.names;
  if (format == "json") {
    out << r.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (format == "csv") {
    for (size_t i = 0; i < names.size(); ++i) out << (i ? "," : "") << CsvField(names[i]);
    out << "\n";
    for (const auto& row : r.cells) {
      for (size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << CsvField(row[i].value_or(""));
      out << "\n";
    }
  } else {
    std::vector<size_t> width(names.size());
    for (size_t i = 0; i < names.size(); ++i) width[i] = names[i].size();
    for (const auto& row : r.cells) {
      for (size_t i = 0; i < row.size(); ++i) {
        width[i] = std::max(width[i], row[i].value_or("NULL").size());
      }
    }
    auto print_row = [&](const std::vector<std::string>& cells) {
      for (size_t i = 0; i < cells.size(); ++i) {
        std::string cell = cells[i];
        if (i + 1 < cells.size()) cell.resize(width[i], ' ');
        out << (i ? "  " : "") << cell;
      }
      out << "\n";
    };
    print_row(names);
    std::vector<std::string> rule;
    for (size_t w : width) rule.push_back(std::string(w, '-'));
    print_row(rule);
    for (const auto& row : r.cells) {
      std::vector<std::string> cells;
      for (const auto& v : row) cells.push_back(v.value_or("NULL"));
      print_row(cells);
    }
  }
}

// A REAL as SQLite writes it as text (sqlite3_column_text: "%!.15g").
[[maybe_unused]] std::string SqliteRealText(double v) {
  char* t = sqlite3_mprintf("%!.15g", v);
  std::string s = t ? t : "";
  sqlite3_free(t);
  return s;
}

#ifdef GRIN_HAVE_POSTGRES
// Type OIDs of pg_type (catalog/pg_type_d.h, stable across releases).
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
              kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700;

bool ParseInt64(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return false;
  *v = x;
  return true;
}

// One statement on a PostgreSQL run, read-only. kInvalidArgument (one line, "SQL error: ...")
// for the statement's own faults; the connection's errors otherwise (the URI redacted).
Result<Rows> RunPgQuery(const std::string& uri, const std::string& query) {
  namespace pg = storage::pg;
  GRIN_ASSIGN_OR_RETURN(auto c, pg::PgConnection::Connect(uri, pg::RedactConninfo(uri)));
  GRIN_RETURN_IF_ERROR(c->Exec("SET default_transaction_read_only = on").status());
  // Never committed: whatever the statement does ends with the transaction.
  GRIN_RETURN_IF_ERROR(c->Exec("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                           .status());
  PGresult* raw = PQexecParams(c->handle(), query.c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                               0);
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> res(raw);
  const ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = raw ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    std::string code = state ? state : "";
    std::string msg = primary ? primary : PQerrorMessage(c->handle());
    for (char& ch : msg) {
      if (ch == '\n' || ch == '\r') ch = ' ';
    }
    while (!msg.empty() && msg.back() == ' ') msg.pop_back();
    if (!c->ok() || code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") ||
        code.starts_with("28")) {
      return pg::PgStatus(code.empty() ? "08006" : code, msg, c->what());
    }
    (void)c->Exec("ROLLBACK");
    if (code == "25006") {  // read_only_sql_transaction
      return Status::InvalidArgument("only read-only statements are allowed (SELECT, WITH, "
                                     "EXPLAIN, SHOW); the database refused it: " + msg);
    }
    if (code == "42601" && msg.find("multiple commands") != std::string::npos) {
      return Status::InvalidArgument("give one SQL statement: the text holds several "
                                     "(nothing was run)");
    }
    return Status::InvalidArgument("SQL error: " + msg);
  }
  Rows out;
  const int ncol = PQnfields(raw);
  std::vector<Oid> types;
  for (int i = 0; i < ncol; ++i) {
    out.names.push_back(PQfname(raw, i));
    types.push_back(PQftype(raw, i));
  }
  for (int r = 0; r < PQntuples(raw); ++r) {
    std::vector<std::optional<std::string>> row;
    nlohmann::json jrow = nlohmann::json::object();
    for (int i = 0; i < ncol; ++i) {
      const std::string& name = out.names[static_cast<size_t>(i)];
      if (PQgetisnull(raw, r, i)) {
        row.emplace_back(std::nullopt);
        jrow[name] = nullptr;
        continue;
      }
      std::string v(PQgetvalue(raw, r, i), static_cast<size_t>(PQgetlength(raw, r, i)));
      const Oid t = types[static_cast<size_t>(i)];
      int64_t n = 0;
      if (t == kBoolOid) {  // SQLite has no booleans: 1 / 0
        n = v == "t" ? 1 : 0;
        row.emplace_back(std::to_string(n));
        jrow[name] = n;
      } else if ((t == kInt2Oid || t == kInt4Oid || t == kInt8Oid || t == kOidOid ||
                  t == kNumericOid) &&
                 ParseInt64(v, &n)) {
        row.emplace_back(std::to_string(n));
        jrow[name] = n;
      } else if (t == kFloat4Oid || t == kFloat8Oid || t == kNumericOid) {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (end != nullptr && *end == '\0' && std::isfinite(d)) {
          row.emplace_back(SqliteRealText(d));
          jrow[name] = d;
        } else {  // NaN, Infinity, a numeric beyond a double: as the server wrote it
          row.emplace_back(v);
          jrow[name] = v;
        }
      } else {
        row.emplace_back(v);
        jrow[name] = std::move(v);
      }
    }
    out.cells.push_back(std::move(row));
    out.json.push_back(std::move(jrow));
  }
  res.reset();
  (void)c->Exec("ROLLBACK");
  return out;
}
#endif

}  // namespace

int RunSql(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs sql",
                           "Run one read-only SQL statement on a run's database, e.g.\n"
                           "  grin-jobs sql --run-name r1 \"SELECT count(*) FROM uploaded\"\n"
                           "Tables and views: books, jobs, events, runs, pending, checked, "
                           "downloaded, uploaded, failed. On a PostgreSQL run the statement runs "
                           "in a READ ONLY transaction that is rolled back (same tables, same "
                           "output; text ORDER BY follows the database's collation).");
  AddRunOptions(options);
  options.add_options()("format", "table, csv or json",
                        cxxopts::value<std::string>()->default_value("table"))(
      "query", "The SQL statement", cxxopts::value<std::string>());
  options.parse_positional({"query"});
  options.positional_help("\"SELECT ...\"");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "sql", run_dir.status());
  if (!parsed.count("query")) {
    return ReportError(err, "sql", Status::InvalidArgument("give the SQL statement to run"));
  }
  std::string format = parsed["format"].as<std::string>();
  if (format != "table" && format != "csv" && format != "json") {
    return ReportError(err, "sql", Status::InvalidArgument("--format '" + format +
                                                           "': use table, csv or json"));
  }
  std::string query = parsed["query"].as<std::string>();
  auto location = RunStateLocation(*run_dir);
  if (!location.ok()) return ReportError(err, "sql", location.status());
  if (storage::IsPostgresLocation(*location)) {
#ifdef GRIN_HAVE_POSTGRES
    auto rows = RunPgQuery(*location, query);
    if (!rows.ok()) return ReportError(err, "sql", rows.status());
    PrintRows(*rows, format, out);
    return kExitOk;
#else
    return ReportError(err, "sql", Status::FailedPrecondition(
                                       "this run keeps its state on PostgreSQL, but this "
                                       "grin-jobs was built without PostgreSQL support"));
#endif
  }
  auto reader = storage::StateReader::Open(DbPath(*run_dir));
  if (!reader.ok()) return ReportError(err, "sql", reader.status());
  sqlite3* handle = (*reader)->db().getHandle();
  std::string refused;
  sqlite3_set_authorizer(handle, SqlAuthorizer, &refused);
  try {
    // Refuse anything that could write, and more than one statement, before anything runs.
    sqlite3_stmt* probe = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(handle, query.c_str(), static_cast<int>(query.size()), &probe,
                                &tail);
    bool read_only = rc == SQLITE_OK && (probe == nullptr || sqlite3_stmt_readonly(probe));
    bool several = rc == SQLITE_OK && probe != nullptr && HasMoreSql(handle, tail);
    sqlite3_finalize(probe);
    if (!refused.empty()) {
      return ReportError(err, "sql", Status::InvalidArgument(
                                          refused + " is not allowed: only read-only statements "
                                          "(SELECT, WITH, EXPLAIN, reporting PRAGMAs)"));
    }
    if (several) {
      return ReportError(err, "sql", Status::InvalidArgument(
                                          "give one SQL statement: the text holds several "
                                          "(nothing was run)"));
    }
    SQLite::Statement stmt((*reader)->db(), query);
    if (!read_only) {
      return ReportError(err, "sql", Status::InvalidArgument(
                                          "only read-only statements are allowed (SELECT, "
                                          "WITH, EXPLAIN, read-only PRAGMA)"));
    }
    int ncol = stmt.getColumnCount();
    Rows rows;
    auto& names = rows.names;
    for (int i = 0; i < ncol; ++i) names.push_back(stmt.getColumnName(i));
    while (stmt.executeStep()) {
      std::vector<std::optional<std::string>> row;
      nlohmann::json jrow = nlohmann::json::object();
      for (int i = 0; i < ncol; ++i) {
        SQLite::Column c = stmt.getColumn(i);
        if (c.isNull()) {
          row.emplace_back(std::nullopt);
          jrow[names[static_cast<size_t>(i)]] = nullptr;
        } else if (c.isInteger()) {
          row.emplace_back(std::to_string(c.getInt64()));
          jrow[names[static_cast<size_t>(i)]] = c.getInt64();
        } else if (c.isFloat()) {
          row.emplace_back(c.getString());
          jrow[names[static_cast<size_t>(i)]] = c.getDouble();
        } else {
          row.emplace_back(c.getString());
          jrow[names[static_cast<size_t>(i)]] = c.getString();
        }
      }
      if (format == "json") {
        rows.json.push_back(std::move(jrow));
      } else {
        rows.cells.push_back(std::move(row));
      }
    }
    PrintRows(rows, format, out);
  } catch (const SQLite::Exception& e) {
    // A damaged or unreadable database is the database's fault, not the statement's.
    int rc = e.getErrorCode();
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN) {
      return ReportError(err, "sql", storage::FromSqliteException(e, DbPath(*run_dir)));
    }
    std::string what = e.what();
    if (e.getErrorCode() == SQLITE_AUTH) what = "ATTACH is not allowed";
    if (e.getErrorCode() == SQLITE_READONLY) what = "the database is opened read-only";
    return ReportError(err, "sql", Status::InvalidArgument("SQL error: " + what));
  }
  return kExitOk;
}

}  // namespace grin::cli
