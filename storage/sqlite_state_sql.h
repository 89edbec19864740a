#pragma once
// The SQL of SqliteStateStore: its DML, its counting queries and the multi-row statement
// builders (only Requeue's filter and UpdateBook's column list are assembled next to their
// code). Kept apart from the code that binds it so the protocol reads in one place, and a
// PostgreSQL adapter (FOR UPDATE SKIP LOCKED, same lease/token protocol) has one file to mirror.
// Included only by sqlite_state_store.cc.

#include <cstddef>
#include <string>

namespace grin::storage::state_sql {

inline constexpr const char* kInsertRunSql =
    "INSERT INTO runs(started_at, pid, host) VALUES (?1, ?2, ?3) RETURNING run_id";
inline constexpr const char* kEndRunSql = "UPDATE runs SET ended_at = ?2 WHERE run_id = ?1";

// Takes back every lease held by an earlier run (we hold the run lock, so every other lease is
// stale). First the leases with what their crash streak becomes (?1 = this run): unchanged when
// the earlier run gave its leases back on a forced exit, 1 when that run completed any job after
// claiming this one (progress in between: the streak starts again), else one more.
inline constexpr const char* kReclaimFindSql = R"sql(
SELECT j.job_id, j.barcode, j.stage, j.attempts, j.lease_run,
       CASE WHEN coalesce(r.forced_exit, 0) = 1 THEN j.recoveries
            WHEN r.last_progress_at >= coalesce(j.leased_at, 0) THEN 1
            ELSE j.recoveries + 1 END
FROM jobs j LEFT JOIN runs r ON r.run_id = j.lease_run
WHERE j.status = 'leased' AND j.lease_run IS NOT ?1)sql";
// Then each one: back to ready/retry, or dead ("crash_loop") past max_recoveries. Bumping the
// token fences the old holder out. ?1 job, ?2 new status, ?3 streak, ?4 now.
inline constexpr const char* kReclaimSql = R"sql(
UPDATE jobs SET
  status = ?2,
  error_class = CASE WHEN ?2 = 'dead' THEN 'permanent' ELSE error_class END,
  error_reason = CASE WHEN ?2 = 'dead' THEN 'crash_loop' ELSE error_reason END,
  recoveries = ?3,
  lease_token = lease_token + 1,
  lease_run = NULL,
  updated_at = ?4
WHERE job_id = ?1)sql";

// A forced exit gives back every lease of this run without counting an attempt or a crash.
// ?1 = run, ?2 = now.
inline constexpr const char* kReleaseRunSql = R"sql(
UPDATE jobs SET status = CASE WHEN attempts > 0 THEN 'retry' ELSE 'ready' END,
                lease_token = lease_token + 1, lease_run = NULL, updated_at = ?2
WHERE status = 'leased' AND lease_run = ?1
RETURNING barcode, stage)sql";
inline constexpr const char* kForcedEndRunSql =
    "UPDATE runs SET ended_at = ?2, forced_exit = 1 WHERE run_id = ?1";
// The run completed a job (crash streaks, above). ?1 = run, ?2 = now.
inline constexpr const char* kRunProgressSql =
    "UPDATE runs SET last_progress_at = ?2 WHERE run_id = ?1";

// Enqueue and completion run as multi-row statements (up to kChunk rows per execution): every
// execution of a statement on `jobs` pays a fixed setup (cursors on five b-trees, and ephemeral
// tables for the 4-value IN lists in its CHECK constraints), which per row cost more than the
// row itself. Chunk sizes: kChunk, then 16, then 1.
inline constexpr int kChunk = 128;
constexpr int ChunkFor(size_t remaining) {
  return remaining >= kChunk ? kChunk : remaining >= 16 ? 16 : 1;
}
// ?1 = now; ?2.. = the barcodes.
inline std::string EnqueueSql(int rows) {
  std::string sql = "INSERT INTO jobs(barcode, created_at, updated_at) VALUES ";
  for (int i = 0; i < rows; ++i) {
    sql += (i ? ", (?" : "(?") + std::to_string(i + 2) + ", ?1, ?1)";
  }
  return sql + " ON CONFLICT(barcode) DO NOTHING";
}

inline constexpr const char* kClaimSql = R"sql(
UPDATE jobs SET status = 'leased', lease_run = ?1, lease_token = lease_token + 1,
                leased_at = ?2, updated_at = ?2
WHERE job_id IN (
  SELECT job_id FROM jobs
  WHERE stage = ?3 AND status IN ('ready', 'retry') AND stage <> 'uploaded'
    AND next_attempt_at <= ?2
  ORDER BY priority, next_attempt_at, job_id LIMIT ?4)
RETURNING job_id, barcode, lease_token, attempts)sql";

// The same, restricted to the run's scope (SetScope: the barcodes in temp.claim_scope, a table
// of the writer's connection).
inline constexpr const char* kClaimScopedSql = R"sql(
UPDATE jobs SET status = 'leased', lease_run = ?1, lease_token = lease_token + 1,
                leased_at = ?2, updated_at = ?2
WHERE job_id IN (
  SELECT job_id FROM jobs
  WHERE stage = ?3 AND status IN ('ready', 'retry') AND stage <> 'uploaded'
    AND next_attempt_at <= ?2 AND barcode IN (SELECT barcode FROM temp.claim_scope)
  ORDER BY priority, next_attempt_at, job_id LIMIT ?4)
RETURNING job_id, barcode, lease_token, attempts)sql";
inline constexpr const char* kCreateScopeSql =
    "CREATE TEMP TABLE IF NOT EXISTS claim_scope(barcode TEXT PRIMARY KEY) WITHOUT ROWID";
inline constexpr const char* kClearScopeSql = "DELETE FROM temp.claim_scope";
inline constexpr const char* kAddScopeSql =
    "INSERT OR IGNORE INTO temp.claim_scope(barcode) VALUES (?1)";
// Counts() of a scoped run, on the read connection: ?1 = the scope as a JSON array.
inline constexpr const char* kScopedCountsSql = R"sql(
SELECT stage, status, count(*), coalesce(min(failed_at), 0) FROM jobs
WHERE barcode IN (SELECT value FROM json_each(?1)) GROUP BY stage, status)sql";

// O(1) whatever the table's size (count(*) would walk every in-flight checkpoint).
inline constexpr const char* kAnyCheckpointSql = "SELECT EXISTS (SELECT 1 FROM job_checkpoints)";
inline constexpr const char* kGetCheckpointSql =
    "SELECT data FROM job_checkpoints WHERE barcode = ?1 AND stage = ?2";

// Every lease-holder write is fenced on (job_id, lease_token, status='leased'). Completions:
// ?1 = now, then (job_id, token, new stage, stage it was claimed at) per row; RETURNING names
// the rows whose fence held. Fencing on the claimed stage too keeps job_counts exact even for a
// caller that hands back a WorkItem with a wrong stage (it gets kConflict).
inline std::string CompleteSql(int rows) {
  std::string sql = "WITH c(id, tok, st, from_st) AS (VALUES ";
  for (int i = 0; i < rows; ++i) {
    int p = 2 + 4 * i;
    sql += (i ? ", (?" : "(?") + std::to_string(p) + ", ?" + std::to_string(p + 1) + ", ?" +
           std::to_string(p + 2) + ", ?" + std::to_string(p + 3) + ")";
  }
  return sql + R"sql()
UPDATE jobs SET stage = c.st, status = 'ready', attempts = 0, next_attempt_at = 0,
                recoveries = 0, lease_run = NULL, error_class = NULL, error_reason = NULL, error_detail = NULL,
                failed_at = NULL, updated_at = ?1
FROM c WHERE jobs.job_id = c.id AND jobs.lease_token = c.tok AND jobs.status = 'leased'
  AND jobs.stage = c.from_st
RETURNING jobs.job_id, jobs.lease_token)sql";
}
inline constexpr const char* kDeleteCheckpointSql =
    "DELETE FROM job_checkpoints WHERE barcode = ?1";

inline constexpr const char* kFailSql = R"sql(
UPDATE jobs SET status = ?3, attempts = attempts + 1, next_attempt_at = ?4, lease_run = NULL,
                error_class = ?5, error_reason = ?6, error_detail = ?7, failed_at = ?8,
                updated_at = ?8
WHERE job_id = ?1 AND lease_token = ?2 AND status = 'leased'
RETURNING attempts)sql";

inline constexpr const char* kReleaseSql = R"sql(
UPDATE jobs SET status = CASE WHEN attempts > 0 THEN 'retry' ELSE 'ready' END,
                lease_run = NULL, updated_at = ?3
WHERE job_id = ?1 AND lease_token = ?2 AND status = 'leased')sql";

// Await (0008): the leased job waits for GRIN's conversion, back at pending with its attempts
// reset; fenced on the token and the stage it was claimed at (job_counts stays exact).
// ?1 job, ?2 token, ?3 claimed stage, ?4 reason, ?5 detail, ?6 now.
inline constexpr const char* kAwaitSql = R"sql(
UPDATE jobs SET stage = 'pending', status = 'awaiting', attempts = 0, next_attempt_at = 0,
                lease_run = NULL, error_class = NULL, error_reason = ?4, error_detail = ?5,
                failed_at = ?6, updated_at = ?6
WHERE job_id = ?1 AND lease_token = ?2 AND status = 'leased' AND stage = ?3)sql";
// Wake: an awaiting job becomes ready. ?1 barcode, ?2 now.
inline constexpr const char* kWakeSql = R"sql(
UPDATE jobs SET status = 'ready', next_attempt_at = 0, error_reason = NULL, error_detail = NULL,
                failed_at = NULL, updated_at = ?2
WHERE barcode = ?1 AND status = 'awaiting')sql";
// How many wait, and since when the longest has waited (the partial index jobs_awaiting).
inline constexpr const char* kAwaitingCountSql =
    "SELECT count(*), coalesce(min(failed_at), 0) FROM jobs WHERE status = 'awaiting'";

inline constexpr const char* kFencedLeaseSql =
    "SELECT 1 FROM jobs WHERE job_id = ?1 AND lease_token = ?2 AND status = 'leased'";
inline constexpr const char* kSaveCheckpointSql = R"sql(
INSERT INTO job_checkpoints(barcode, stage, data, updated_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT(barcode) DO UPDATE SET stage = excluded.stage, data = excluded.data,
                                   updated_at = excluded.updated_at)sql";

inline constexpr const char* kInsertEventSql =
    "INSERT INTO events(at, barcode, stage, outcome, run_id, detail) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// The completion events of one call, `rows` per execution: ?1 = at, ?2 = run id, then
// (barcode, stage, outcome, detail) per row.
inline std::string InsertEventsSql(int rows) {
  std::string sql = "INSERT INTO events(at, barcode, stage, outcome, run_id, detail) VALUES ";
  for (int i = 0; i < rows; ++i) {
    int p = 3 + 4 * i;
    sql += (i ? ", (?1, ?" : "(?1, ?") + std::to_string(p) + ", ?" + std::to_string(p + 1) +
           ", ?" + std::to_string(p + 2) + ", ?2, ?" + std::to_string(p + 3) + ")";
  }
  return sql;
}

inline constexpr const char* kEnsureBookSql =
    "INSERT INTO books(barcode, created_at, updated_at) VALUES (?1, ?2, ?2) "
    "ON CONFLICT(barcode) DO NOTHING";

// Reset reads the milestone first (job_counts needs where the job came from; RETURNING only
// sees the new row), then moves it; both under the writer's transaction.
inline constexpr const char* kResetFindSql = R"sql(
SELECT job_id, stage FROM jobs
WHERE barcode = ?1 AND status <> 'leased' AND (?2 OR stage <> 'uploaded'))sql";
inline constexpr const char* kResetSql = R"sql(
UPDATE jobs SET stage = 'pending', status = 'ready', attempts = 0, next_attempt_at = 0,
                recoveries = 0, error_class = NULL, error_reason = NULL, error_detail = NULL,
                failed_at = NULL, lease_run = NULL, updated_at = ?2
WHERE job_id = ?1)sql";

// job_counts (0004) is kept by the writer in the same transaction as the jobs it moves.
inline constexpr const char* kAddCountSql = "UPDATE job_counts SET n = n + ?2 WHERE stage = ?1";

// `status` in O(1) + O(in flight) + O(failed): the milestone counts from job_counts, leased
// jobs from the small partial index jobs_lease, retrying/dead from the partial jobs_failed.
inline constexpr const char* kStageCountsSql = "SELECT stage, n FROM job_counts";
inline constexpr const char* kLeasedCountSql = "SELECT count(*) FROM jobs WHERE status = 'leased'";
inline constexpr const char* kFailedCountsSql =
    "SELECT status, count(*) FROM jobs WHERE status IN ('retry', 'dead') GROUP BY status";
inline constexpr const char* kFailuresSql = R"sql(
SELECT stage, coalesce(error_reason, ''), coalesce(error_class, ''), status = 'dead', count(*)
FROM jobs WHERE status IN ('retry', 'dead')
GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC, 1, 2)sql";
// Books completed since ?1 (ISO millis): the events of the partial second [?1, ?2) (?2 = the
// next whole second, ISO millis) plus uploaded_per_second from that second (?3, unix s) on, so
// O(1) whatever the rate (0011); and the first of them (unix s, ms), one index seek.
inline constexpr const char* kCompletedSinceSql = R"sql(
SELECT (SELECT count(*) FROM events WHERE stage = 'uploaded' AND at >= ?1 AND at < ?2)
         + (SELECT coalesce(sum(n), 0) FROM uploaded_per_second WHERE sec >= ?3),
       coalesce(CAST(strftime('%s', f.at) AS INTEGER), 0),
       coalesce(CAST(substr(f.at, 21, 3) AS INTEGER), 0)
FROM (SELECT min(at) AS at FROM events WHERE stage = 'uploaded' AND at >= ?1) f)sql";

}  // namespace grin::storage::state_sql
