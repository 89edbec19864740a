#include "engine/pipeline/sync_metrics.h"

#include <string>

namespace grin::pipeline {
namespace {

void SetCounter(Metrics* m, const char* name, const char* help, double v,
                const Metrics::Labels& labels = {}) {
  m->GetCounter(name, help, labels)->Set(v);
}

void SetGauge(Metrics* m, const char* name, const char* help, double v,
              const Metrics::Labels& labels = {}) {
  m->GetGauge(name, help, labels)->Set(v);
}

void ExportTally(Metrics* m, const char* stage, const StageTally& t) {
  static constexpr const char* kHelp =
      "Books that left a stage during this sync, by stage and outcome";
  SetCounter(m, "grin_jobs_books_total", kHelp, static_cast<double>(t.completed),
             {{"stage", stage}, {"outcome", "completed"}});
  SetCounter(m, "grin_jobs_books_total", kHelp, static_cast<double>(t.skipped),
             {{"stage", stage}, {"outcome", "skipped"}});
  SetCounter(m, "grin_jobs_books_total", kHelp, static_cast<double>(t.failed),
             {{"stage", stage}, {"outcome", "failed"}});
  for (const auto& [reason, n] : t.reasons) {
    SetCounter(m, "grin_jobs_book_reasons_total",
               "Failures and skips during this sync, by stage and reason",
               static_cast<double>(n), {{"stage", stage}, {"reason", reason}});
  }
}

}  // namespace

void ExportStageCounts(const StageCounts& c, Metrics* m) {
  for (int i = 0; i < kStageCount; ++i) {
    SetGauge(m, "grin_jobs_jobs",
             "Jobs of the run by milestone (every job in exactly one; the queue depths)",
             static_cast<double>(c.at[i]),
             {{"stage", std::string(StageName(static_cast<Stage>(i)))}});
  }
  SetGauge(m, "grin_jobs_jobs_leased", "Jobs claimed by a worker now (books in flight)",
           static_cast<double>(c.leased));
  SetGauge(m, "grin_jobs_jobs_retrying", "Jobs failed and waiting for a retry",
           static_cast<double>(c.retrying));
  SetGauge(m, "grin_jobs_jobs_dead", "Jobs failed for good", static_cast<double>(c.dead));
  SetGauge(m, "grin_jobs_jobs_awaiting_conversion", "Jobs waiting for GRIN to convert their book",
           static_cast<double>(c.awaiting));
}

void ExportFailures(const std::vector<FailureSummary>& failures, Metrics* m) {
  std::vector<std::pair<Metrics::Labels, double>> values;
  for (const auto& f : failures) {
    values.push_back({{{"stage", f.stage},
                       {"reason", f.reason},
                       {"class", f.error_class},
                       {"dead", f.dead ? "true" : "false"}},
                      static_cast<double>(f.count)});
  }
  m->SetGaugeFamily("grin_jobs_jobs_failed",
                    "Failed jobs now (retrying or dead), by stage, reason and error class",
                    values);
}

void ExportSyncStats(const SyncStats& s, Metrics* m) {
  ExportTally(m, "check", s.check);
  ExportTally(m, "download", s.download);
  ExportTally(m, "process", s.process);
  static constexpr const char* kFinished =
      "Books that reached an end state during this sync, by result";
  auto finished = [&](const char* result, int64_t n) {
    SetCounter(m, "grin_jobs_books_finished_total", kFinished, static_cast<double>(n),
               {{"result", result}});
  };
  finished("uploaded", s.uploaded);  // synced + skipped_etag_match + rebuilt_outputs
  finished("synced", s.synced);
  finished("skipped_etag_match", s.skipped_etag);
  finished("rebuilt_outputs", s.rebuilt);
  finished("dead", s.dead);
  finished("awaiting_conversion", s.awaiting_conversion);
  SetCounter(m, "grin_jobs_conversions_requested_total",
             "Conversion requests sent to GRIN during this sync",
             static_cast<double>(s.conversion_requested));
  SetCounter(m, "grin_jobs_retries_scheduled_total",
             "Book failures scheduled for a retry during this sync", static_cast<double>(s.retried));
  SetCounter(m, "grin_jobs_downloaded_bytes_total",
             "Archive bytes downloaded from GRIN during this sync",
             static_cast<double>(s.bytes_downloaded));
  SetCounter(m, "grin_jobs_uploaded_bytes_total", "Bytes stored during this sync (archives, OCR)",
             static_cast<double>(s.bytes_uploaded));
  SetGauge(m, "grin_jobs_books_to_do", "Jobs unfinished when this sync started",
           static_cast<double>(s.total));
  SetGauge(m, "grin_jobs_books_held_back",
           "Books kept unchanged for a failure that is not theirs (the run stops)",
           static_cast<double>(s.held_back));
}

void ExportPipelineGauges(const PipelineGauges& g, Metrics* m) {
  SetGauge(m, "grin_jobs_books_in_flight", "Books a worker holds now",
           static_cast<double>(g.in_flight));
  static constexpr const char* kSlots = "Worker slots taken now, by stage";
  SetGauge(m, "grin_jobs_stage_busy", kSlots, g.check, {{"stage", "check"}});
  SetGauge(m, "grin_jobs_stage_busy", kSlots, g.download, {{"stage", "download"}});
  SetGauge(m, "grin_jobs_stage_busy", kSlots, g.process, {{"stage", "process"}});
  SetGauge(m, "grin_jobs_memory_budget_used_bytes",
           "Memory reserved by streamed books in flight", static_cast<double>(g.memory_in_use));
  SetGauge(m, "grin_jobs_memory_budget_capacity_bytes", "The memory budget (--memory-limit-mb)",
           static_cast<double>(g.memory_capacity));
  SetGauge(m, "grin_jobs_memory_budget_idle_bytes", "Budget chunks kept for the next books",
           static_cast<double>(g.memory_idle));
}

Metrics::Histogram* StageDurationHistogram(Metrics* m, const char* stage) {
  return m->GetHistogram("grin_jobs_stage_duration_seconds",
                         "Time a worker held a claimed job, by the stage it was claimed in "
                         "(check includes a book streamed at once under the same claim)",
                         Metrics::LatencyBuckets(), {{"stage", stage}});
}

}  // namespace grin::pipeline
