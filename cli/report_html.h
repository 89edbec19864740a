#pragma once
// The run's HTML report: one self-contained page (inline CSS and SVG, no script, no network; a
// Content-Security-Policy forbids fetching anything) with throughput over time (books/h, MB/s),
// jobs per stage, the ETA, failures by reason over time with example barcodes, conversions
// awaited, the slowest books and per-host requests and retries. Every string from the database
// is HTML-escaped.

#include <string>

#include "cli/report_data.h"
#include "engine/base/status.h"

namespace grin::cli {

std::string RenderReportHtml(const ReportData& data);

// Loads the run in `run_dir` and writes its report to `out_path` (through a temporary file and
// a rename, so a reader never sees half a page).
Status WriteRunReport(const std::string& run_dir, const std::string& out_path);

}  // namespace grin::cli
