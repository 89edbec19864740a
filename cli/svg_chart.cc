#include "cli/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/base/clock.h"

namespace grin::cli {
namespace {

constexpr double kW = 720, kLeft = 64, kRight = 16, kTop = 28, kBottom = 40;
constexpr double kPlotBottom = 220;  // the x axis; ticks and legend below it
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string Num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string Px(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
double NiceCeil(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

// At most `max` bytes of s, not cutting a UTF-8 character.
std::string Clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "\u2026";
}

std::string TimeLabel(double t_s, double span_s) {
  std::string iso = FormatIsoUtc(static_cast<int64_t>(t_s * 1e6));  // YYYY-MM-DDTHH:MM:SSZ
  if (iso.size() < 19) return iso;
  if (span_s >= 2 * 86400) return iso.substr(5, 5) + " " + iso.substr(11, 5);
  if (span_s >= 600) return iso.substr(11, 5);
  return iso.substr(11, 8);
}

}  // namespace

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string ChartSvg(const ChartSpec& spec) {
  size_t n = 0;
  double max_v = 0;
  for (const auto& s : spec.series) {
    n = std::max(n, s.values.size());
    for (double v : s.values) max_v = std::max(max_v, v);
  }
  const double y_max = NiceCeil(max_v);
  const size_t legend_rows = (spec.series.size() + 3) / 4;
  const double height = kPlotBottom + kBottom + 14.0 * static_cast<double>(legend_rows);
  const double pw = kW - kLeft - kRight, ph = kPlotBottom - kTop;
  auto x_of = [&](size_t i) {
    return kLeft + (n > 1 ? pw * static_cast<double>(i) / static_cast<double>(n - 1) : pw / 2);
  };
  auto y_of = [&](double v) { return kTop + ph - ph * v / y_max; };

  std::string o = "<svg id=\"" + HtmlEscape(spec.id) +
                  "\" class=\"chart\" viewBox=\"0 0 " +
                  Num(kW) + " " + Num(height) + "\" data-buckets=\"" + std::to_string(n) +
                  "\" data-bucket-s=\"" + Num(spec.step_s) + "\" role=\"img\">";
  o += "<title>" + HtmlEscape(spec.title) + "</title>";
  o += "<text x=\"" + Num(kLeft) + "\" y=\"16\" class=\"ctitle\">" + HtmlEscape(spec.title) +
       " (" + HtmlEscape(spec.y_label) + ")</text>";
  // Axes and grid.
  for (int k = 0; k <= 4; ++k) {
    double v = y_max * k / 4, y = y_of(v);
    o += "<line class=\"grid\" x1=\"" + Num(kLeft) + "\" x2=\"" + Num(kW - kRight) + "\" y1=\"" +
         Px(y) + "\" y2=\"" + Px(y) + "\"/>";
    o += "<text class=\"tick\" x=\"" + Num(kLeft - 6) + "\" y=\"" + Px(y + 4) +
         "\" text-anchor=\"end\">" + Num(v) + "</text>";
  }
  const double span = spec.step_s * static_cast<double>(n);
  if (n > 0) {
    std::vector<size_t> ticks = {0, n / 2, n - 1};
    ticks.erase(std::unique(ticks.begin(), ticks.end()), ticks.end());
    for (size_t i : ticks) {
      o += "<text class=\"tick\" x=\"" + Px(x_of(i)) + "\" y=\"" + Num(kPlotBottom + 16) +
           "\" text-anchor=\"" + (i == 0 ? "start" : i + 1 == n ? "end" : "middle") + "\">" +
           HtmlEscape(TimeLabel(spec.t0_s + spec.step_s * static_cast<double>(i), span)) +
           "</text>";
    }
  } else {
    o += "<text class=\"tick\" x=\"" + Num(kW / 2) + "\" y=\"" + Num(height / 2) +
         "\" text-anchor=\"middle\">no events yet</text>";
  }
  // Series.
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    const char* color = kColors[si % (sizeof kColors / sizeof kColors[0])];
    o += "<g class=\"series\" data-series=\"" + HtmlEscape(s.name) + "\">";
    std::string pts;
    for (size_t i = 0; i < s.values.size(); ++i) {
      pts += (i ? " " : "") + Px(x_of(i)) + "," + Px(y_of(s.values[i]));
    }
    o += "<polyline fill=\"none\" stroke=\"" + std::string(color) +
         "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>";
    for (size_t i = 0; i < s.values.size(); ++i) {
      const double t = spec.t0_s + spec.step_s * static_cast<double>(i);
      const std::string iso = FormatIsoUtc(static_cast<int64_t>(t * 1e6));
      o += "<circle class=\"pt\" r=\"2.5\" fill=\"" + std::string(color) + "\" cx=\"" +
           Px(x_of(i)) + "\" cy=\"" + Px(y_of(s.values[i])) + "\" data-series=\"" +
           HtmlEscape(s.name) + "\" data-t=\"" + iso + "\" data-v=\"" + Num(s.values[i]) +
           "\"><title>" + HtmlEscape(s.name) + " " + iso + ": " + Num(s.values[i]) + " " +
           HtmlEscape(spec.y_label) + "</title></circle>";
    }
    o += "</g>";
    // Legend: rows of four under the time axis.
    const double lx = kLeft + 165.0 * static_cast<double>(si % 4);
    const double ly = kPlotBottom + kBottom + 14.0 * static_cast<double>(si / 4) - 4;
    o += "<text class=\"legend\" x=\"" + Px(lx) + "\" y=\"" + Px(ly) + "\" fill=\"" + color +
         "\">&#9632; " + HtmlEscape(Clip(s.name, 26)) + "</text>";
  }
  o += "</svg>";
  return o;
}

}  // namespace grin::cli
