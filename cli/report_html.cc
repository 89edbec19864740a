#include "cli/report_html.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/svg_chart.h"
#include "engine/base/clock.h"
#include "engine/base/format.h"

namespace grin::cli {
namespace {

constexpr const char* kStyle = R"css(
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
svg.chart{width:100%;height:auto;max-width:720px;display:block;margin:.5em 0}
svg .grid{stroke:#eee}svg .tick{font-size:10px;fill:#666}svg .ctitle{font-size:12px;font-weight:600}
svg .legend{font-size:11px}code{font-size:.95em}
)css";

std::string Num(double v, const char* fmt = "%.2f") {
  char b[48];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string Td(const std::string& text, bool numeric = false) {
  return std::string(numeric ? "<td class=\"n\">" : "<td>") + HtmlEscape(text) + "</td>";
}

std::string Stages(const ReportData& d) {
  const auto& c = d.counts;
  std::string o = "<h2>Jobs per stage</h2><table id=\"stages\"><tr><th>stage</th><th "
                  "class=\"n\">jobs</th><th class=\"n\">share</th></tr>";
  for (int i = 0; i < kStageCount; ++i) {
    std::string name(StageName(static_cast<Stage>(i)));
    double pct = c.total ? 100.0 * static_cast<double>(c.at[i]) / static_cast<double>(c.total) : 0;
    o += "<tr data-stage=\"" + HtmlEscape(name) + "\" data-count=\"" + std::to_string(c.at[i]) +
         "\">" + Td(name) + Td(FormatThousands(c.at[i]), true) + Td(Num(pct, "%.1f%%"), true) +
         "</tr>";
  }
  o += "</table><p>" + FormatThousands(c.total) + " jobs, " + FormatThousands(d.books) +
       " books known; in flight " + FormatThousands(c.leased) + ", retrying " +
       FormatThousands(c.retrying) + ", dead " + FormatThousands(c.dead) +
       ", awaiting GRIN's conversion " + FormatThousands(c.awaiting) + ".</p>";
  return o;
}

std::string Eta(const ReportData& d) {
  std::string o = "<h2>ETA</h2><p id=\"eta\" data-remaining=\"" + std::to_string(d.remaining) +
                  "\" data-books-per-h=\"" + Num(d.recent_books_per_s * 3600, "%.1f") + "\">";
  o += FormatThousands(d.remaining) + " jobs left. ";
  if (d.remaining <= 0) {
    o += "Nothing left to do.";
  } else if (d.recent_books_per_s > 0) {
    o += "At the recent rate (" + Num(d.recent_books_per_s * 3600, "%.1f") +
         " books/h over the last hour of completions) about " +
         HtmlEscape(FormatDuration(static_cast<double>(d.remaining) / d.recent_books_per_s)) +
         " more.";
  } else {
    o += "No book completed yet: no rate to estimate from.";
  }
  return o + "</p>";
}

std::string Charts(const ReportData& d) {
  ChartSpec books{"chart-books", "Throughput", "books/h", d.t0_s, d.bucket_s, {}};
  ChartSpec mbs{"chart-mbs", "Download volume", "MB/s", d.t0_s, d.bucket_s, {}};
  ChartSeries b{"books/h", {}}, m{"MB/s", {}};
  for (const auto& x : d.throughput) {
    b.values.push_back(static_cast<double>(x.books) * 3600.0 / d.bucket_s);
    m.values.push_back(static_cast<double>(x.bytes) / 1e6 / d.bucket_s);
  }
  books.series.push_back(std::move(b));
  mbs.series.push_back(std::move(m));
  std::string o = "<h2>Throughput</h2><p class=\"muted\">Books that reached storage and their "
                  "archive bytes, per " + HtmlEscape(FormatDuration(d.bucket_s)) +
                  " (times in UTC).</p>";
  o += ChartSvg(books) + ChartSvg(mbs);
  return o;
}

std::string Failures(const ReportData& d) {
  std::string o = "<h2>Failures by reason</h2>";
  if (d.failure_reasons.empty()) return o + "<p id=\"no-failures\">No failed attempt recorded.</p>";
  ChartSpec f{"chart-failures", "Failed attempts", "per " + FormatDuration(d.bucket_s), d.t0_s,
              d.bucket_s, {}};
  for (const auto& r : d.failure_reasons) {
    ChartSeries s{r.reason, {}};
    for (int64_t v : r.per_bucket) s.values.push_back(static_cast<double>(v));
    f.series.push_back(std::move(s));
  }
  o += ChartSvg(f);
  o += "<table id=\"failure-reasons\"><tr><th>reason</th><th class=\"n\">attempts</th><th>e.g."
       "</th></tr>";
  for (const auto& r : d.failure_reasons) {
    std::string ex;
    for (const auto& b : r.examples) ex += (ex.empty() ? "" : ", ") + b;
    o += "<tr data-reason=\"" + HtmlEscape(r.reason) + "\">" + Td(r.reason) +
         Td(FormatThousands(r.events), true) + Td(ex) + "</tr>";
  }
  o += "</table>";
  if (!d.failures.empty()) {
    o += "<p>Jobs failing now:</p><table id=\"failing-now\"><tr><th>stage</th><th>reason</th>"
         "<th>class</th><th>state</th><th class=\"n\">jobs</th></tr>";
    for (const auto& f2 : d.failures) {
      o += "<tr>" + Td(f2.stage) + Td(f2.reason.empty() ? "(none)" : f2.reason) +
           Td(f2.error_class) + Td(f2.dead ? "dead" : "retrying") +
           Td(FormatThousands(f2.count), true) + "</tr>";
    }
    o += "</table>";
  }
  return o;
}

std::string Awaiting(const ReportData& d) {
  std::string o = "<h2>Conversions awaited</h2>";
  if (d.counts.awaiting == 0) return o + "<p id=\"awaiting\" data-count=\"0\">None.</p>";
  o += "<p id=\"awaiting\" data-count=\"" + std::to_string(d.counts.awaiting) + "\">" +
       FormatThousands(d.counts.awaiting) +
       " books wait for GRIN to convert them; a sync picks them up once _converted lists "
       "them. The longest-waiting:</p><table><tr><th>barcode</th><th>waiting since</th></tr>";
  for (const auto& w : d.awaiting) {
    o += "<tr>" + Td(w.barcode) + Td(w.since_micros ? FormatIsoUtc(w.since_micros) : "") +
         "</tr>";
  }
  return o + "</table>";
}

std::string Slowest(const ReportData& d) {
  std::string o = "<h2>Slowest books</h2>";
  if (d.slowest.empty()) return o + "<p>No book stored yet.</p>";
  o += "<p class=\"muted\">From the last time a worker took the book to its upload.</p>"
       "<table id=\"slowest\"><tr><th>barcode</th><th>title</th><th class=\"n\">time</th>"
       "<th class=\"n\">MB</th></tr>";
  for (const auto& s : d.slowest) {
    o += "<tr data-barcode=\"" + HtmlEscape(s.barcode) + "\" data-seconds=\"" +
         Num(s.seconds, "%.3f") + "\">" + Td(s.barcode) + Td(s.title) +
         Td(FormatDuration(s.seconds), true) + Td(Num(static_cast<double>(s.bytes) / 1e6), true) +
         "</tr>";
  }
  return o + "</table>";
}

std::string Hosts(const ReportData& d) {
  std::string o = "<h2>Hosts</h2>";
  if (d.hosts.empty()) {
    return o + "<p>No per-host figures (written by sync into process_summary.json at its end)."
               "</p>";
  }
  o += "<p class=\"muted\">From the last sync's process_summary.json.</p><table id=\"hosts\">"
       "<tr><th>host</th><th class=\"n\">requests</th><th class=\"n\">retries</th><th "
       "class=\"n\">new connections</th><th class=\"n\">MB down</th></tr>";
  for (const auto& h : d.hosts) {
    o += "<tr data-host=\"" + HtmlEscape(h.host) + "\" data-retries=\"" +
         std::to_string(h.retries) + "\">" + Td(h.host) + Td(FormatThousands(h.requests), true) +
         Td(FormatThousands(h.retries), true) + Td(FormatThousands(h.new_connections), true) +
         Td(Num(static_cast<double>(h.bytes_down) / 1e6), true) + "</tr>";
  }
  return o + "</table>";
}

}  // namespace

std::string RenderReportHtml(const ReportData& d) {
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>grin-jobs run report</title><style>";
  o += kStyle;
  o += "</style></head><body><h1>grin-jobs run report</h1><p class=\"muted\">Run <code>" +
       HtmlEscape(d.run_dir) + "</code>, generated " + FormatIsoUtc(d.generated_micros) +
       ".</p>";
  o += Stages(d) + Eta(d) + Charts(d) + Failures(d) + Awaiting(d) + Slowest(d) + Hosts(d);
  o += "</body></html>\n";
  return o;
}

Status WriteRunReport(const std::string& run_dir, const std::string& out_path) {
  GRIN_ASSIGN_OR_RETURN(auto data, LoadReportData(run_dir));
  const std::string html = RenderReportHtml(data);
  const std::string tmp = out_path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << html;
    f.close();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status::Unavailable(out_path + ": cannot write the report (check the folder exists "
                                 "and is writable)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out_path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status::Unavailable(out_path + ": cannot write the report: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace grin::cli
