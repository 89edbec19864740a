// grin-jobs sql: run one read-only SQL statement against a run's database and print the rows as
// a table, CSV or JSON. The connection is opened read-only with query_only and ATTACH denied, and
// statements that could write are refused before they run.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"
#include "storage/sqlite_status.h"
#include "storage/state_reader.h"

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

}  // namespace

int RunSql(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs sql",
                           "Run one read-only SQL statement on a run's database, e.g.\n"
                           "  grin-jobs sql --run-name r1 \"SELECT count(*) FROM uploaded\"\n"
                           "Tables and views: books, jobs, events, runs, pending, checked, "
                           "downloaded, uploaded, failed.");
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
  // A PostgreSQL run: refused with one line until this command reads PostgreSQL.
  Status sqlite_only = RequireSqliteRun(*run_dir, "sql");
  if (!sqlite_only.ok()) return ReportError(err, "sql", sqlite_only);
  if (!parsed.count("query")) {
    return ReportError(err, "sql", Status::InvalidArgument("give the SQL statement to run"));
  }
  std::string format = parsed["format"].as<std::string>();
  if (format != "table" && format != "csv" && format != "json") {
    return ReportError(err, "sql", Status::InvalidArgument("--format '" + format +
                                                           "': use table, csv or json"));
  }
  auto reader = storage::StateReader::Open(DbPath(*run_dir));
  if (!reader.ok()) return ReportError(err, "sql", reader.status());
  std::string query = parsed["query"].as<std::string>();
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
    std::vector<std::string> names;
    for (int i = 0; i < ncol; ++i) names.push_back(stmt.getColumnName(i));
    std::vector<std::vector<std::optional<std::string>>> rows;
    nlohmann::json jrows = nlohmann::json::array();
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
        jrows.push_back(std::move(jrow));
      } else {
        rows.push_back(std::move(row));
      }
    }
    if (format == "json") {
      out << jrows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else if (format == "csv") {
      for (int i = 0; i < ncol; ++i) out << (i ? "," : "") << CsvField(names[static_cast<size_t>(i)]);
      out << "\n";
      for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << CsvField(r[i].value_or(""));
        out << "\n";
      }
    } else {
      std::vector<size_t> width(names.size());
      for (size_t i = 0; i < names.size(); ++i) width[i] = names[i].size();
      for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) {
          width[i] = std::max(width[i], r[i].value_or("NULL").size());
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
      for (const auto& r : rows) {
        std::vector<std::string> cells;
        for (const auto& v : r) cells.push_back(v.value_or("NULL"));
        print_row(cells);
      }
    }
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
