#include "cli/report_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_config.h"
#include "cli/state_factory.h"
#include "engine/base/clock.h"
#include "storage/open_run_queries.h"

namespace grin::cli {
namespace {

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
  GRIN_ASSIGN_OR_RETURN(std::string location, RunStateLocation(run_dir));
  GRIN_ASSIGN_OR_RETURN(auto q, storage::OpenRunQueries(location));
  ReportData r;
  r.run_dir = run_dir;
  r.generated_micros = SystemClock::Default()->NowMicros();
  GRIN_ASSIGN_OR_RETURN(r.counts, q->Counts());
  GRIN_ASSIGN_OR_RETURN(r.failures, q->Failures());
  r.remaining = r.counts.total - r.counts.at[3] - r.counts.dead - r.counts.awaiting;
  GRIN_ASSIGN_OR_RETURN(r.books, q->BookCount());

  // The grid.
  GRIN_ASSIGN_OR_RETURN(auto span, q->CompletionOrFailureSpan());
  const double t_min = span ? span->first_s : 0, t_max = span ? span->last_s : 0;
  r.bucket_s = BucketSeconds(t_max - t_min);
  r.t0_s = std::floor(t_min / r.bucket_s) * r.bucket_s;
  const size_t n = t_max > 0 ? static_cast<size_t>((t_max - r.t0_s) / r.bucket_s) + 1 : 0;
  const storage::EventGrid grid{r.t0_s, r.bucket_s};
  auto index = [n](int64_t bucket) {  // n if outside the grid
    auto i = static_cast<size_t>(std::max<int64_t>(0, bucket));
    return i < n ? i : n;
  };
  r.throughput.assign(n, {});
  GRIN_ASSIGN_OR_RETURN(auto completions, q->CompletionsPerBucket(grid));
  for (const auto& c : completions) {
    size_t i = index(c.bucket);
    if (i == n) continue;
    r.throughput[i].books = c.events;
    r.throughput[i].bytes = c.bytes;
  }

  // Failures by reason over time.
  GRIN_ASSIGN_OR_RETURN(auto reasons, q->TopFailureReasons(grid, 8, 3));
  for (auto& f : reasons) {
    ReportData::Reason x;
    x.reason = std::move(f.reason);
    x.events = f.events;
    x.per_bucket.assign(n, 0);
    for (const auto& c : f.per_bucket) {
      size_t i = index(c.bucket);
      if (i < n) x.per_bucket[i] = c.events;
    }
    x.examples = std::move(f.examples);
    r.failure_reasons.push_back(std::move(x));
  }

  // The recent rate: completions over the last hour before the last completion.
  GRIN_ASSIGN_OR_RETURN(auto recent, q->RecentCompletionsIn(3600));
  r.recent_books_per_s =
      recent.span_s > 0 ? static_cast<double>(recent.books) / recent.span_s : 0;

  GRIN_ASSIGN_OR_RETURN(r.awaiting, q->LongestAwaiting(10));  // longest first
  GRIN_ASSIGN_OR_RETURN(r.slowest, q->SlowestBooks(10));      // last lease to upload
  LoadHosts(run_dir, &r);
  return r;
}

}  // namespace grin::cli
