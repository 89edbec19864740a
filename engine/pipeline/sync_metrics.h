#pragma once
// The sync's Prometheus metrics (engine/base/metrics.h), by name, in one place: what
// `sync --metrics-listen` serves and what `status --metrics` prints from the run database.
// docs/metrics.md lists every family. Each function sets the families it names from a snapshot
// (counters mirrored with Counter::Set, never counted twice).
//
// Thread safety: as Metrics (any thread).

#include "engine/base/metrics.h"
#include "engine/pipeline/sync.h"
#include "engine/state_store.h"

namespace grin::pipeline {

// Jobs in the run database (queue depths): grin_jobs_jobs{stage}, grin_jobs_jobs_leased,
// grin_jobs_jobs_retrying, grin_jobs_jobs_dead, grin_jobs_jobs_awaiting_conversion. The
// DB-derivable subset, shared by sync and status.
void ExportStageCounts(const StageCounts& counts, Metrics* metrics);

// Failed jobs now, by stage, reason, error class and whether they are dead:
// grin_jobs_jobs_failed{stage,reason,class,dead} (DB-derivable too).
void ExportFailures(const std::vector<FailureSummary>& failures, Metrics* metrics);

// The run's tallies so far (SyncStats, cumulative since the sync started):
// grin_jobs_books_total{stage,outcome}, grin_jobs_book_failures_total{stage,reason},
// grin_jobs_books_finished_total{result}, grin_jobs_{downloaded,uploaded}_bytes_total,
// grin_jobs_retries_scheduled_total, grin_jobs_books_held_back.
void ExportSyncStats(const SyncStats& stats, Metrics* metrics);

// What the pipeline holds right now: books in flight (per stage), memory-budget use and
// capacity.
struct PipelineGauges {
  int in_flight = 0;
  int check = 0, download = 0, process = 0;  // worker slots taken per stage
  uint64_t memory_in_use = 0, memory_capacity = 0, memory_idle = 0;
};
void ExportPipelineGauges(const PipelineGauges& g, Metrics* metrics);

// The histogram of the time a worker held a claimed job of `stage` ("check", "download",
// "process"): grin_jobs_stage_duration_seconds{stage}.
Metrics::Histogram* StageDurationHistogram(Metrics* metrics, const char* stage);

}  // namespace grin::pipeline
