#pragma once
// Inline SVG line charts for the HTML report: no script, no network. Every point is a <circle>
// carrying its series, time and value as data-series / data-t / data-v attributes (and a
// <title> tooltip), so the page can be checked by a browser-driven test and read by hovering.
// HtmlEscape is applied to every caller-supplied string.

#include <string>
#include <string_view>
#include <vector>

namespace grin::cli {

// &, <, >, " and ' as entities: safe in element text and in quoted attributes.
std::string HtmlEscape(std::string_view s);

struct ChartSeries {
  std::string name;
  std::vector<double> values;  // one per bucket
};

struct ChartSpec {
  std::string id;       // the <svg>'s id
  std::string title;    // shown above the plot
  std::string y_label;  // the unit, e.g. "books/h"
  double t0_s = 0;      // unix seconds of the first bucket
  double step_s = 60;   // bucket width
  std::vector<ChartSeries> series;
};

// The chart as one <svg> element (720 x 260 user units, scales with the page).
std::string ChartSvg(const ChartSpec& spec);

}  // namespace grin::cli
