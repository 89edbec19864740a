#include "cli/report_data.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/run_config.h"
#include "engine/base/clock.h"
#include "storage/sqlite_status.h"
#include "storage/state_reader.h"

namespace grin::cli {
namespace {

// Unix seconds (with milliseconds) of an events.at value (YYYY-MM-DDTHH:MM:SS[.mmm]Z), exact.
constexpr const char* kT =
    "(CAST(strftime('%s', at) AS REAL) + CAST(substr(at, 21, 3) AS INTEGER) / 1000.0)";
// Events that mean "this book reached uploaded" (status counts them the same way).
constexpr const char* kDone =
    "stage = 'uploaded' AND outcome NOT IN ('failed', 'dead', 'released', 'requeued', 'reset', "
    "'reclaimed', 'dead_crash_loop')";
constexpr const char* kFailed = "outcome IN ('failed', 'dead')";

void LoadHosts(const std::string& run_dir, ReportData* r) {
  std::ifstream in(std::filesystem::path(run_dir) / "process_summary.json");
  if (!in) return;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("hosts") || !j["hosts"].is_array()) return;
  for (const auto& h : j["hosts"]) {
    if (!h.is_object()) continue;
    ReportData::Host x;
    x.host = h.value("host", std::string());
    x.requests = h.value("requests", int64_t{0});
    x.retries = h.value("retries", int64_t{0});
    x.new_connections = h.value("new_connections", int64_t{0});
    x.bytes_down = h.value("bytes_down", int64_t{0});
    r->hosts.push_back(std::move(x));
  }
}

}  // namespace

double BucketSeconds(double span_s, int max_buckets) {
  static const double kSteps[] = {1,    5,     10,    30,    60,     300,    600,    1800,
                                  3600, 10800, 21600, 43200, 86400, 172800, 604800};
  for (double s : kSteps) {
    if (span_s / s < max_buckets) return s;
  }
  double s = 604800;
  while (span_s / s >= max_buckets) s *= 2;
  return s;
}

Result<ReportData> LoadReportData(const std::string& run_dir) {
  const std::string path = DbPath(run_dir);
  GRIN_ASSIGN_OR_RETURN(auto reader, storage::StateReader::Open(path));
  ReportData r;
  r.run_dir = run_dir;
  r.generated_micros = SystemClock::Default()->NowMicros();
  GRIN_ASSIGN_OR_RETURN(r.counts, reader->Counts());
  GRIN_ASSIGN_OR_RETURN(r.failures, reader->Failures());
  r.remaining = r.counts.total - r.counts.at[3] - r.counts.dead - r.counts.awaiting;
  try {
    SQLite::Database& db = reader->db();
    r.books = db.execAndGet("SELECT count(*) FROM books").getInt64();

    // The grid.
    double t_min = 0, t_max = 0;
    {
      SQLite::Statement q(db, std::string("SELECT min(") + kT + "), max(" + kT +
                                  ") FROM events WHERE (" + kDone + ") OR " + kFailed);
      if (q.executeStep() && !q.getColumn(0).isNull()) {
        t_min = q.getColumn(0).getDouble();
        t_max = q.getColumn(1).getDouble();
      }
    }
    r.bucket_s = BucketSeconds(t_max - t_min);
    r.t0_s = std::floor(t_min / r.bucket_s) * r.bucket_s;
    const size_t n = t_max > 0 ? static_cast<size_t>((t_max - r.t0_s) / r.bucket_s) + 1 : 0;
    r.throughput.assign(n, {});
    const std::string bucket = "CAST((" + std::string(kT) + " - ?1) / ?2 AS INTEGER)";
    {
      SQLite::Statement q(db, "SELECT " + bucket + ", count(*), "
                              "sum(coalesce(json_extract(detail, '$.bytes'), 0)) FROM events "
                              "WHERE " + kDone + " GROUP BY 1 ORDER BY 1");
      q.bind(1, r.t0_s);
      q.bind(2, r.bucket_s);
      while (q.executeStep()) {
        auto b = static_cast<size_t>(std::max<int64_t>(0, q.getColumn(0).getInt64()));
        if (b >= n) continue;
        r.throughput[b].books = q.getColumn(1).getInt64();
        r.throughput[b].bytes = q.getColumn(2).getInt64();
      }
    }

    // Failures by reason over time.
    {
      const std::string reason = "coalesce(json_extract(detail, '$.reason'), '(none)')";
      SQLite::Statement q(db, "SELECT " + reason + ", count(*) FROM events WHERE " + kFailed +
                                  " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8");
      while (q.executeStep()) {
        ReportData::Reason x;
        x.reason = q.getColumn(0).getString();
        x.events = q.getColumn(1).getInt64();
        x.per_bucket.assign(n, 0);
        r.failure_reasons.push_back(std::move(x));
      }
      SQLite::Statement b(db, "SELECT " + bucket + ", count(*) FROM events WHERE " + kFailed +
                                  " AND " + reason + " = ?3 GROUP BY 1");
      SQLite::Statement ex(db, "SELECT barcode FROM events WHERE " + std::string(kFailed) +
                                   " AND " + reason + " = ?1 AND barcode IS NOT NULL "
                                   "GROUP BY barcode ORDER BY min(event_id) LIMIT 3");
      for (auto& x : r.failure_reasons) {
        b.reset();
        b.bind(1, r.t0_s);
        b.bind(2, r.bucket_s);
        b.bind(3, x.reason);
        while (b.executeStep()) {
          auto i = static_cast<size_t>(std::max<int64_t>(0, b.getColumn(0).getInt64()));
          if (i < n) x.per_bucket[i] = b.getColumn(1).getInt64();
        }
        ex.reset();
        ex.bind(1, x.reason);
        while (ex.executeStep()) x.examples.push_back(ex.getColumn(0).getString());
      }
    }

    // The recent rate: completions over the last hour before the last completion.
    {
      SQLite::Statement q(db, std::string("SELECT max(") + kT + "), min(" + kT +
                                  ") FROM events WHERE " + kDone);
      if (q.executeStep() && !q.getColumn(0).isNull()) {
        double last = q.getColumn(0).getDouble(), first = q.getColumn(1).getDouble();
        double from = std::max(first, last - 3600);
        SQLite::Statement c(db, std::string("SELECT count(*) FROM events WHERE ") + kDone +
                                    " AND " + kT + " >= ?1");
        c.bind(1, from);
        c.executeStep();
        int64_t k = c.getColumn(0).getInt64();
        double span = last - from;
        r.recent_books_per_s = span > 0 ? static_cast<double>(k) / span : 0;
      }
    }

    // Conversions awaited, longest first.
    {
      SQLite::Statement q(db, "SELECT barcode, coalesce(failed_at, 0) FROM jobs "
                              "WHERE status = 'awaiting' ORDER BY failed_at, barcode LIMIT 10");
      while (q.executeStep()) {
        r.awaiting.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64()});
      }
    }

    // The slowest books: from their last lease to their upload.
    {
      // The ten first (the sort reads jobs only), then their bytes.
      SQLite::Statement q(
          db, "SELECT s.barcode, s.title, s.secs, "
              "coalesce((SELECT json_extract(e.detail, '$.bytes') FROM events e "
              "WHERE e.barcode = s.barcode AND e.stage = 'uploaded' "
              "ORDER BY e.event_id DESC LIMIT 1), 0) "
              "FROM (SELECT j.barcode, coalesce(b.title, '') AS title, "
              "(j.updated_at - j.leased_at) / 1e6 AS secs "
              "FROM jobs j LEFT JOIN books b ON b.barcode = j.barcode "
              "WHERE j.stage = 'uploaded' AND j.leased_at IS NOT NULL "
              "ORDER BY j.updated_at - j.leased_at DESC, j.barcode LIMIT 10) s "
              "ORDER BY s.secs DESC, s.barcode");
      while (q.executeStep()) {
        r.slowest.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                             q.getColumn(2).getDouble(), q.getColumn(3).getInt64()});
      }
    }
  } catch (const SQLite::Exception& e) {
    return storage::FromSqliteException(e, path);
  }
  LoadHosts(run_dir, &r);
  return r;
}

}  // namespace grin::cli
