#include "engine/base/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace grin {
namespace {

bool NameChar(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return colon;
  return !first && c >= '0' && c <= '9';
}

const char* TypeName(int type) {
  switch (type) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

// `labels` ("{a=\"x\"}" or "") with one more label appended (for histogram buckets).
std::string WithLabel(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return labels.substr(0, labels.size() - 1) + "," + extra + "}";
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i], i == 0, true)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i], i == 0, false)) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back exactly
  return std::string(buf, r.ptr);
}

Metrics::Histogram::Histogram(std::vector<double> bounds) {
  bounds.erase(std::remove_if(bounds.begin(), bounds.end(),
                              [](double b) { return !std::isfinite(b); }),
               bounds.end());
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  bounds_ = std::move(bounds);
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Metrics::Histogram::Observe(double v) {
  // The first bucket whose upper bound is >= v (le is inclusive); past the last: +Inf only.
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                 bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Metrics::Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<double> Metrics::LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

bool Metrics::FormatLabels(const Labels& labels, std::string* out) {
  out->clear();
  if (labels.empty()) return true;
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  *out = "{";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!IsValidLabelName(sorted[i].first) || sorted[i].first == "le") return false;
    if (i > 0 && sorted[i].first == sorted[i - 1].first) return false;
    if (i > 0) *out += ",";
    *out += sorted[i].first + "=\"" + EscapeLabelValue(sorted[i].second) + "\"";
  }
  *out += "}";
  return true;
}

Metrics::Family* Metrics::FamilyLocked(std::string_view name, std::string_view help, Type type) {
  if (!IsValidMetricName(name)) return nullptr;
  auto it = families_.find(name);
  if (it == families_.end()) {
    Family f;
    f.type = type;
    f.help = std::string(help);
    it = families_.emplace(std::string(name), std::move(f)).first;
  }
  return it->second.type == type ? &it->second : nullptr;
}

Metrics::Counter* Metrics::GetCounter(std::string_view name, std::string_view help,
                                      const Labels& labels) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key;
  Family* f = FormatLabels(labels, &key) ? FamilyLocked(name, help, Type::kCounter) : nullptr;
  if (f == nullptr) {
    detached_counters_.push_back(std::make_unique<Counter>());
    return detached_counters_.back().get();
  }
  auto& slot = f->counters[key];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Metrics::Gauge* Metrics::GetGauge(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key;
  Family* f = FormatLabels(labels, &key) ? FamilyLocked(name, help, Type::kGauge) : nullptr;
  if (f == nullptr) {
    detached_gauges_.push_back(std::make_unique<Gauge>());
    return detached_gauges_.back().get();
  }
  auto& slot = f->gauges[key];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Metrics::Histogram* Metrics::GetHistogram(std::string_view name, std::string_view help,
                                          std::vector<double> bounds, const Labels& labels) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key;
  Family* f = FormatLabels(labels, &key) ? FamilyLocked(name, help, Type::kHistogram) : nullptr;
  if (f == nullptr) {
    detached_histograms_.push_back(std::make_unique<Histogram>(std::move(bounds)));
    return detached_histograms_.back().get();
  }
  auto& slot = f->histograms[key];
  if (!slot) {
    if (f->histograms.size() == 1) {
      slot = std::make_unique<Histogram>(std::move(bounds));
      f->bounds = slot->bounds();
    } else {
      slot = std::make_unique<Histogram>(f->bounds);  // one family, one set of buckets
    }
  }
  return slot.get();
}

void Metrics::SetGaugeFamily(std::string_view name, std::string_view help,
                             const std::vector<std::pair<Labels, double>>& values) {
  std::lock_guard<std::mutex> l(mu_);
  Family* f = FamilyLocked(name, help, Type::kGauge);
  if (f == nullptr) return;
  std::map<std::string, double> next;
  for (const auto& [labels, v] : values) {
    std::string key;
    if (FormatLabels(labels, &key)) next[key] = v;
  }
  for (auto& [key, g] : f->gauges) {
    if (next.count(key) == 0) g->Set(0);
  }
  for (const auto& [key, v] : next) {
    auto& slot = f->gauges[key];
    if (!slot) slot = std::make_unique<Gauge>();
    slot->Set(v);
  }
}

int Metrics::AddRefresher(std::function<void()> fn) {
  std::lock_guard<std::mutex> l(refresh_mu_);
  int id = next_refresher_++;
  refreshers_.emplace(id, std::move(fn));
  return id;
}

void Metrics::RemoveRefresher(int id) {
  std::lock_guard<std::mutex> r(render_mu_);  // waits for a Render() running it
  std::lock_guard<std::mutex> l(refresh_mu_);
  refreshers_.erase(id);
}

std::string Metrics::Render() {
  std::lock_guard<std::mutex> r(render_mu_);
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard<std::mutex> l(refresh_mu_);
    for (const auto& [id, fn] : refreshers_) fns.push_back(fn);
  }
  for (const auto& fn : fns) fn();

  std::string out;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(static_cast<int>(f.type)) + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + labels + " " + FormatMetricValue(c->value()) + "\n";
    }
    for (const auto& [labels, g] : f.gauges) {
      out += name + labels + " " + FormatMetricValue(g->value()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      std::vector<uint64_t> counts = h->BucketCounts();
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        cumulative += counts[i];
        out += name + "_bucket" +
               WithLabel(labels, "le=\"" + FormatMetricValue(h->bounds()[i]) + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      cumulative += counts.back();
      // +Inf equals the cumulative total of the buckets read (an Observe racing this Render
      // may have counted in _count already; the next scrape catches up).
      out += name + "_bucket" + WithLabel(labels, "le=\"+Inf\"") + " " +
             std::to_string(cumulative) + "\n";
      out += name + "_sum" + labels + " " + FormatMetricValue(h->sum()) + "\n";
      out += name + "_count" + labels + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

}  // namespace grin
