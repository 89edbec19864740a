// The Prometheus text exposition format of engine/base/metrics.h: HELP and TYPE lines, label
// escaping, cumulative histogram buckets with +Inf, _sum and _count, refreshers.
#include "engine/base/metrics.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace grin {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("metrics: counters and gauges with HELP, TYPE and sorted labels") {
  Metrics m;
  m.GetCounter("grin_jobs_b_total", "Books", {{"stage", "check"}, {"outcome", "failed"}})->Add(2);
  m.GetCounter("grin_jobs_b_total", "Books", {{"outcome", "failed"}, {"stage", "check"}})->Add();
  m.GetGauge("grin_jobs_a", "A gauge")->Set(2.5);
  std::string t = m.Render();
  CHECK(t ==
        "# HELP grin_jobs_a A gauge\n"
        "# TYPE grin_jobs_a gauge\n"
        "grin_jobs_a 2.5\n"
        "# HELP grin_jobs_b_total Books\n"
        "# TYPE grin_jobs_b_total counter\n"
        "grin_jobs_b_total{outcome=\"failed\",stage=\"check\"} 3\n");
}

TEST_CASE("metrics: label values and HELP text are escaped") {
  Metrics m;
  m.GetCounter("x_total", "back\\slash and\nnewline", {{"reason", "a\"b\\c\nd"}})->Add();
  std::string t = m.Render();
  CHECK(Has(t, "# HELP x_total back\\\\slash and\\nnewline"));
  CHECK(Has(t, "x_total{reason=\"a\\\"b\\\\c\\nd\"} 1"));
  CHECK(EscapeLabelValue("plain") == "plain");
}

TEST_CASE("metrics: histogram buckets are cumulative and end with +Inf, _sum and _count") {
  Metrics m;
  auto* h = m.GetHistogram("lat_seconds", "Latency", {1, 0.1, 10, 1}, {{"stage", "check"}});
  REQUIRE(h->bounds() == std::vector<double>{0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 3.0, 20.0, 30.0}) h->Observe(v);
  std::string t = m.Render();
  CHECK(Has(t, "# TYPE lat_seconds histogram"));
  CHECK(Has(t, "lat_seconds_bucket{stage=\"check\",le=\"0.1\"} 2"));  // le is inclusive
  CHECK(Has(t, "lat_seconds_bucket{stage=\"check\",le=\"1\"} 4"));
  CHECK(Has(t, "lat_seconds_bucket{stage=\"check\",le=\"10\"} 5"));
  CHECK(Has(t, "lat_seconds_bucket{stage=\"check\",le=\"+Inf\"} 7"));
  CHECK(Has(t, "lat_seconds_sum{stage=\"check\"} 54.65"));
  CHECK(Has(t, "lat_seconds_count{stage=\"check\"} 7"));
  // Buckets come in increasing order of le.
  CHECK(t.find("le=\"0.1\"") < t.find("le=\"1\""));
  CHECK(t.find("le=\"10\"") < t.find("le=\"+Inf\""));
  // An unlabelled histogram gets {le="..."} alone.
  m.GetHistogram("plain_seconds", "P", {1})->Observe(2);
  t = m.Render();
  CHECK(Has(t, "plain_seconds_bucket{le=\"1\"} 0"));
  CHECK(Has(t, "plain_seconds_bucket{le=\"+Inf\"} 1"));
  CHECK(Has(t, "plain_seconds_count 1"));
}

TEST_CASE("metrics: values as Prometheus writes them") {
  CHECK(FormatMetricValue(3) == "3");
  CHECK(FormatMetricValue(0.005) == "0.005");
  CHECK(FormatMetricValue(-2) == "-2");
  CHECK(FormatMetricValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatMetricValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatMetricValue(std::nan("")) == "NaN");
  CHECK(FormatMetricValue(1.5e20) == "1.5e+20");
}

TEST_CASE("metrics: bad names and type clashes never reach the output") {
  Metrics m;
  m.GetCounter("ok_total", "ok")->Add();
  m.GetGauge("ok_total", "same name, other type")->Set(5);  // detached
  m.GetCounter("1bad", "bad name")->Add();
  m.GetCounter("bad_label_total", "x", {{"__reserved", "v"}})->Add();
  m.GetCounter("le_label_total", "x", {{"le", "v"}})->Add();
  std::string t = m.Render();
  CHECK(t == "# HELP ok_total ok\n# TYPE ok_total counter\nok_total 1\n");
  CHECK(IsValidMetricName("grin_jobs:x_total"));
  CHECK_FALSE(IsValidMetricName(""));
  CHECK_FALSE(IsValidLabelName("a:b"));
}

TEST_CASE("metrics: a gauge family set whole zeroes the series that went away") {
  Metrics m;
  m.SetGaugeFamily("f", "F", {{{{"reason", "a"}}, 2}, {{{"reason", "b"}}, 3}});
  m.SetGaugeFamily("f", "F", {{{{"reason", "b"}}, 4}});
  std::string t = m.Render();
  CHECK(Has(t, "f{reason=\"a\"} 0"));
  CHECK(Has(t, "f{reason=\"b\"} 4"));
}

TEST_CASE("metrics: refreshers run before each render until removed") {
  Metrics m;
  int calls = 0;
  int id = m.AddRefresher([&] { m.GetCounter("r_total", "R")->Set(++calls); });
  CHECK(Has(m.Render(), "r_total 1"));
  CHECK(Has(m.Render(), "r_total 2"));
  m.RemoveRefresher(id);
  CHECK(Has(m.Render(), "r_total 2"));
  CHECK(calls == 2);
}

TEST_CASE("metrics: concurrent updates are all counted") {
  Metrics m;
  auto* c = m.GetCounter("n_total", "N");
  auto* h = m.GetHistogram("h_seconds", "H", {0.5});
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) {
        c->Add();
        h->Observe(j % 2 ? 1.0 : 0.1);
      }
    });
  }
  for (int i = 0; i < 20; ++i) (void)m.Render();
  for (auto& t : threads) t.join();
  std::string t = m.Render();
  CHECK(Has(t, "n_total 40000"));
  CHECK(Has(t, "h_seconds_bucket{le=\"0.5\"} 20000"));
  CHECK(Has(t, "h_seconds_bucket{le=\"+Inf\"} 40000"));
}

}  // namespace
}  // namespace grin
