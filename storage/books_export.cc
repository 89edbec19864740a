#include "storage/books_export.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/base/fn_deleter.h"
#include "engine/books_columns.h"
#include "storage/database.h"
#include "storage/open_run_queries.h"
#include "storage/sqlite_status.h"

#ifdef GRIN_HAVE_POSTGRES
#include "storage/postgres/pg_books_export.h"
#endif

namespace grin::storage {
namespace {

// (header text, books column), in the reference tool's order (engine/books_columns.h).
const std::vector<std::pair<std::string, std::string>>& Columns() {
  static const std::vector<std::pair<std::string, std::string>> kColumns = [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const BooksColumn& c : BooksColumns()) {
      out.emplace_back(std::string(c.csv_header), std::string(c.name));
    }
    return out;
  }();
  return kColumns;
}

void AppendCsvField(std::string* line, const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) {
    *line += v;
    return;
  }
  *line += '"';
  for (char c : v) {
    if (c == '"') *line += '"';
    *line += c;
  }
  *line += '"';
}

using GzFile = std::unique_ptr<gzFile_s, FnDeleter<gzclose>>;

// Writes chunks to a plain or gzip file.
class Writer {
 public:
  Writer(const std::string& path, bool gzip) : gzip_(gzip) {
    if (gzip) {
      gz_.reset(gzopen(path.c_str(), "wb1"));
    } else {
      plain_.open(path, std::ios::binary | std::ios::trunc);
    }
  }
  bool ok() const { return gzip_ ? gz_ != nullptr : static_cast<bool>(plain_); }
  bool Write(const std::string& s) {
    if (s.empty()) return true;
    if (gzip_) return gzwrite(gz_.get(), s.data(), static_cast<unsigned>(s.size())) > 0;
    plain_.write(s.data(), static_cast<std::streamsize>(s.size()));
    return static_cast<bool>(plain_);
  }
  bool Close() {
    if (gzip_) return gzclose(gz_.release()) == Z_OK;
    plain_.close();
    return !plain_.fail();
  }

 private:
  bool gzip_;
  GzFile gz_;
  std::ofstream plain_;
};

}  // namespace

static bool IsGrinDateColumn(const std::string& column) {
  const BooksColumn* c = FindBooksColumn(column);
  return c != nullptr && c->grin_date;
}

std::string IsoToGrinDate(const std::string& v) {
  auto digits = [&v](size_t pos, size_t n) {
    for (size_t i = pos; i < pos + n; ++i) {
      if (v[i] < '0' || v[i] > '9') return false;
    }
    return true;
  };
  if (v.size() != 19 || !digits(0, 4) || v[4] != '-' || !digits(5, 2) || v[7] != '-' ||
      !digits(8, 2) || v[10] != 'T' || !digits(11, 2) || v[13] != ':' || !digits(14, 2) ||
      v[16] != ':' || !digits(17, 2)) {
    return v;
  }
  std::string out = v.substr(0, 4) + "/" + v.substr(5, 2) + "/" + v.substr(8, 2) + " " +
                    v.substr(11, 5);
  if (v.compare(17, 2, "00") != 0) out += v.substr(16, 3);
  return out;
}

const std::vector<std::string>& BooksCsvHeaders() {
  static const std::vector<std::string> kHeaders = [] {
    std::vector<std::string> h;
    for (const auto& c : Columns()) h.push_back(c.first);
    return h;
  }();
  return kHeaders;
}

namespace {

using RowFn = std::function<Status(const std::vector<std::optional<std::string>>& row)>;

// Calls fn for every books row of the run at `location` (Columns() order, ordered by barcode
// in byte order): a books.db path, or a PostgreSQL URI.
Status ForEachBookRow(const std::string& location, const RowFn& fn) {
  std::vector<std::string> names;
  for (const auto& c : Columns()) names.push_back(c.second);
  if (IsPostgresLocation(location)) {
#ifdef GRIN_HAVE_POSTGRES
    return ForEachPgBookRow(location, names, fn);
#else
    return Status::FailedPrecondition(
        "the run's state is on PostgreSQL, but this grin-jobs was built without PostgreSQL "
        "support: install libpq-dev and rebuild (GRIN_POSTGRES=ON)");
#endif
  }
  DatabaseOptions ro;
  ro.read_only = true;
  GRIN_ASSIGN_OR_RETURN(auto db, OpenDatabase(location, ro));
  try {
    std::string sql = "SELECT ";
    for (size_t i = 0; i < names.size(); ++i) sql += (i ? ", " : "") + names[i];
    sql += " FROM books ORDER BY barcode";
    SQLite::Statement q(*db, sql);
    std::vector<std::optional<std::string>> row(names.size());
    while (q.executeStep()) {
      for (int i = 0; i < q.getColumnCount() && i < static_cast<int>(row.size()); ++i) {
        SQLite::Column c = q.getColumn(i);
        if (c.isNull()) {
          row[static_cast<size_t>(i)].reset();
        } else {
          row[static_cast<size_t>(i)] = c.getString();
        }
      }
      GRIN_RETURN_IF_ERROR(fn(row));
    }
  } catch (const SQLite::Exception& e) {
    return FromSqliteException(e, location);
  }
  return Status::Ok();
}

}  // namespace

Result<int64_t> ExportBooksCsv(const std::string& location, const std::string& out_path,
                               bool gzip, CsvDateFormat dates) {
  std::vector<bool> grin_date(Columns().size(), false);
  std::vector<bool> boolean(Columns().size(), false);
  for (size_t i = 0; i < Columns().size(); ++i) {
    grin_date[i] = dates == CsvDateFormat::kGrin && IsGrinDateColumn(Columns()[i].second);
    boolean[i] = Columns()[i].second == "is_decrypted";
  }
  std::string tmp = out_path + ".tmp";
  Writer w(tmp, gzip);
  if (!w.ok()) return Status::PermissionDenied(tmp + ": cannot write the CSV export");
  int64_t rows = 0;
  const Status write_failed = Status::ResourceExhausted(tmp + ": write failed (disk full?)");
  std::string header;
  for (size_t i = 0; i < Columns().size(); ++i) {
    if (i) header += ',';
    AppendCsvField(&header, Columns()[i].first);
  }
  header += "\r\n";
  std::string chunk = std::move(header);
  Status s = ForEachBookRow(location, [&](const std::vector<std::optional<std::string>>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) chunk += ',';
      if (!row[i]) continue;
      if (boolean[i]) {
        chunk += *row[i] != "0" ? "TRUE" : "FALSE";
      } else if (grin_date[i]) {
        AppendCsvField(&chunk, IsoToGrinDate(*row[i]));
      } else {
        AppendCsvField(&chunk, *row[i]);
      }
    }
    chunk += "\r\n";
    ++rows;
    if (chunk.size() > (1 << 20)) {
      if (!w.Write(chunk)) return write_failed;
      chunk.clear();
    }
    return Status::Ok();
  });
  if (s.ok() && !w.Write(chunk)) s = write_failed;
  if (!s.ok()) {
    (void)w.Close();
    std::remove(tmp.c_str());
    return s;
  }
  if (!w.Close()) {
    std::remove(tmp.c_str());
    return write_failed;
  }
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    return Status::PermissionDenied(out_path + ": cannot replace the CSV export");
  }
  return rows;
}

Status GzipFile(const std::string& in_path, const std::string& out_path) {
  std::ifstream in(in_path, std::ios::binary);
  if (!in) return Status::NotFound(in_path + ": cannot read it to gzip it");
  std::string tmp = out_path + ".tmp";
  Writer w(tmp, true);
  if (!w.ok()) return Status::PermissionDenied(tmp + ": cannot write it");
  std::vector<char> buf(1 << 20);
  bool ok = true;
  while (ok && in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) ok = w.Write(std::string(buf.data(), static_cast<size_t>(n)));
  }
  ok = w.Close() && ok && !in.bad();
  if (!ok) {
    std::remove(tmp.c_str());
    return Status::ResourceExhausted(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::PermissionDenied(out_path + ": cannot replace it");
  }
  return Status::Ok();
}

Status BackupDatabaseGz(const std::string& db_path, const std::string& out_path,
                        int64_t* books) {
  std::string copy = out_path + ".db.tmp";
  {
    DatabaseOptions ro;
    ro.read_only = true;
    GRIN_ASSIGN_OR_RETURN(auto src, OpenDatabase(db_path, ro));
    sqlite3* dst = nullptr;
    if (sqlite3_open(copy.c_str(), &dst) != SQLITE_OK) {
      sqlite3_close(dst);
      return Status::PermissionDenied(copy + ": cannot create the backup");
    }
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src->getHandle(), "main");
    int rc = b ? sqlite3_backup_step(b, -1) : sqlite3_errcode(dst);
    if (b) sqlite3_backup_finish(b);
    if (rc == SQLITE_DONE && books) {
      // Count what the copy holds (the source may have moved on since).
      sqlite3_stmt* q = nullptr;
      rc = sqlite3_prepare_v2(dst, "SELECT count(*) FROM books", -1, &q, nullptr);
      if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        *books = sqlite3_column_int64(q, 0);
        rc = SQLITE_DONE;
      } else if (rc == SQLITE_OK) {
        rc = sqlite3_errcode(dst);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(dst);
    if (rc != SQLITE_DONE) {
      std::remove(copy.c_str());
      return Status::Unavailable(db_path + ": online backup failed (" + sqlite3_errstr(rc) + ")");
    }
  }
  Status gz = GzipFile(copy, out_path);
  std::remove(copy.c_str());
  return gz;
}

int64_t RemoveExportLeftovers(const std::string& run_dir) {
  namespace fs = std::filesystem;
  int64_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "backups", ec)) {
    std::string name = e.path().filename().string();
    std::error_code fec;
    if (name.find(".tmp") != std::string::npos && e.is_regular_file(fec) &&
        fs::remove(e.path(), fec)) {
      ++removed;
    }
  }
  for (const char* name : {"books_export.csv.tmp", "books_export.csv.gz.tmp"}) {
    std::error_code fec;
    if (fs::remove(fs::path(run_dir) / name, fec)) ++removed;
  }
  return removed;
}

}  // namespace grin::storage
