#pragma once
// Metrics: a small registry of Prometheus metrics (counters, gauges, histograms) and their
// rendering in the Prometheus text exposition format (version 0.0.4). Injected where needed
// (SyncOptions::metrics), never a global.
//
// A metric family has a name, a help text and a type; each series of it is one label set.
// Get*() returns the series for (name, labels), creating the family on first use; the pointer
// stays valid for the registry's life, so hot paths look a series up once and then update it
// with atomic operations only. Asking for a name already registered with another type, or an
// invalid name or label name, returns a detached series that is never rendered (a programming
// error must not stop a sync).
//
// Values that something else already counts (the transport's per-host counters, the pipeline's
// tallies) are mirrored rather than counted twice: a refresher (AddRefresher) copies them into
// the registry just before each Render(), with Counter::Set / Gauge::Set.
//
// Thread safety: everything may be called from any thread. Refreshers run on the thread that
// calls Render(), one Render() at a time.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grin {

class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // Monotonic. Add() for counting here, Set() for mirroring a counter kept elsewhere.
  class Counter {
   public:
    void Add(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
    void Set(double v) { value_.store(v, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<double> value_{0};
  };

  class Gauge {
   public:
    void Set(double v) { value_.store(v, std::memory_order_relaxed); }
    void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<double> value_{0};
  };

  // Buckets by upper bound (le); rendered cumulative with the +Inf bucket, _sum and _count.
  class Histogram {
   public:
    explicit Histogram(std::vector<double> bounds);
    void Observe(double v);
    const std::vector<double>& bounds() const { return bounds_; }
    // Observations per bucket, not cumulative; the last entry is past the largest bound.
    std::vector<uint64_t> BucketCounts() const;
    double sum() const { return sum_.load(std::memory_order_relaxed); }
    uint64_t count() const { return count_.load(std::memory_order_relaxed); }

   private:
    std::vector<double> bounds_;  // sorted, distinct, finite
    std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
    std::atomic<double> sum_{0};
    std::atomic<uint64_t> count_{0};
  };

  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  Counter* GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge* GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  // `bounds`: the buckets' upper bounds (sorted and deduplicated here; non-finite ones dropped).
  // A family's bounds are those of its first series.
  Histogram* GetHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          const Labels& labels = {});

  // Sets the gauge family `name` to exactly `values` in one step (a Render() never sees half of
  // it): the series listed get their values, every other series of the family is set to 0 (a
  // label set that went away, e.g. a failure reason no job has any more).
  void SetGaugeFamily(std::string_view name, std::string_view help,
                      const std::vector<std::pair<Labels, double>>& values);

  // Runs `fn` before every Render() until RemoveRefresher(id). `fn` must not call Render().
  int AddRefresher(std::function<void()> fn);
  // Once this returns, the refresher is not running and never runs again.
  void RemoveRefresher(int id);

  // Every family, sorted by name, with HELP and TYPE lines; series sorted by labels.
  std::string Render();

  // Seconds buckets for stage latencies: 0.005 s to 10 min.
  static std::vector<double> LatencyBuckets();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;  // histograms
    // Rendered label set ("{a=\"x\"}" or "") -> series.
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };

  // The family `name` of `type`, created if missing; nullptr on a type clash or a bad name.
  Family* FamilyLocked(std::string_view name, std::string_view help, Type type);
  static bool FormatLabels(const Labels& labels, std::string* out);

  std::mutex mu_;  // guards families_, detached_*
  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::unique_ptr<Counter>> detached_counters_;
  std::vector<std::unique_ptr<Gauge>> detached_gauges_;
  std::vector<std::unique_ptr<Histogram>> detached_histograms_;

  std::mutex render_mu_;  // one Render() at a time; guards refreshers_ while they run
  std::mutex refresh_mu_;  // guards refreshers_ / next_refresher_
  std::map<int, std::function<void()>> refreshers_;
  int next_refresher_ = 1;
};

// A metric or label name per Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]* (labels: no ':', no "__").
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
// Label value escaping: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view v);
// HELP text escaping: backslash and newline.
std::string EscapeHelp(std::string_view v);
// A sample value as Prometheus writes it: integers without a fraction, +Inf, -Inf, NaN.
std::string FormatMetricValue(double v);

}  // namespace grin
