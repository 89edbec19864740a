#include "cli/facade/teardown.h"

#include <filesystem>
#include <fstream>

#include "cli/object_store_factory.h"
#include "cli/report_html.h"
#include "cli/state_factory.h"
#include "storage/backup_policy.h"
#include "storage/books_export.h"

namespace grin::jobs {
namespace {

namespace fs = std::filesystem;

Status UploadFile(ObjectStore& store, const ObjectLocation& loc, const std::string& path,
                  const std::string& content_type) {
  GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(path));
  PutOptions po;
  po.content_type = content_type;
  auto r = store.Put(loc.bucket, loc.key, *src, po);
  return r.ok() ? Status::Ok() : r.status().WithContext("uploading " + loc.bucket + "/" + loc.key);
}

// Writes `text` to `path` (truncating); kNoSpace / kPermissionDenied / kInternal naming it.
Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  f.close();
  if (!f) return Status::Internal(path + ": could not be written (disk full or not writable?)");
  return Status::Ok();
}

}  // namespace

TeardownResult RunTeardown(TeardownInput in) {
  TeardownResult out;
  out.errors = std::move(in.errors);
  const int64_t now = in.now_micros;
  // A PostgreSQL run (no db_path): its backups are the server's (pg_dump); the CSV export and
  // the HTML report read it where run_config.json says it is.
  const bool sqlite = !in.db_path.empty();
  if (!sqlite) in.summary["state"] = "postgresql";
  Result<std::string> location = sqlite ? Result<std::string>(in.db_path)
                                        : cli::RunStateLocation(in.run_dir);
  if (in.csv_export && !location.ok()) {
    out.errors.push_back("CSV export: " + location.status().message());
  } else if (in.csv_export) {
    std::string csv = (fs::path(in.run_dir) / "books_export.csv").string();
    auto rows = storage::ExportBooksCsv(*location, csv, false);
    std::string gz = csv + ".gz";
    // The .gz from the CSV just written: one read of the database (a full scan on PostgreSQL).
    Status zipped = rows.ok() ? storage::GzipFile(csv, gz) : rows.status();
    if (!zipped.ok()) {
      out.errors.push_back("CSV export: " + zipped.message());
    } else {
      for (const auto& loc : {LatestCsvLocation(in.meta_layout),
                              TimestampedMetaLocation(in.meta_layout, now, "books.csv.gz")}) {
        Status s = UploadFile(*in.store, loc, gz, "application/gzip");
        if (!s.ok()) out.errors.push_back(s.message());
      }
      in.summary["csv_rows"] = *rows;
    }
  }
  if (sqlite) {
    // Backups: a backup with fewer books than the stored books_latest.db.gz never replaces it
    // without keeping it; local retention never drops the newest backup with the most books.
    std::string dir = (fs::path(in.run_dir) / "backups").string();
    auto backup = storage::MakeLocalBackup(in.db_path, dir, now);
    if (!backup.ok()) {
      out.errors.push_back("database backup: " + backup.status().message());
    } else {
      in.summary["backup_books"] = backup->books;
      auto warning = storage::PublishLatestBackup(*in.store, in.meta_layout, *backup, now, dir);
      if (!warning.ok()) {
        out.errors.push_back(warning.status().message());
      } else if (!warning->empty()) {
        out.warnings.push_back(*warning);
        in.summary["backup_warning"] = *warning;
      }
      storage::PruneLocalBackups(dir, 10);
    }
  }
  in.summary["teardown_errors"] = out.errors;
  {
    std::string path = (fs::path(in.run_dir) / "process_summary.json").string();
    Status w = WriteText(path, in.summary.dump(2) + "\n");
    if (!w.ok()) {
      out.errors.push_back(w.message());
    } else {
      for (const auto& loc : {MetaLocation(in.meta_layout, "process_summary.json"),
                              TimestampedMetaLocation(in.meta_layout, now,
                                                      "process_summary.json")}) {
        Status u = UploadFile(*in.store, loc, path, "application/json");
        if (!u.ok()) out.errors.push_back(u.message());
      }
    }
  }
  {
    // The HTML report (regenerable with `grin-jobs report`): a failure is a warning.
    std::string path = (fs::path(in.run_dir) / "report.html").string();
    Status r = cli::WriteRunReport(in.run_dir, path);
    if (r.ok()) {
      r = UploadFile(*in.store, MetaLocation(in.meta_layout, "report.html"), path, "text/html");
    }
    if (!r.ok()) out.warnings.push_back("the HTML report: " + r.message());
  }
  return out;
}

}  // namespace grin::jobs
