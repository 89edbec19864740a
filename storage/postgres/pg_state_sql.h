#pragma once
// The SQL of PgStateStore, beside storage/sqlite_state_sql.h which it mirrors statement for
// statement. Every value is a $n parameter; lists travel as one JSON parameter
// (jsonb_array_elements_text / jsonb_to_recordset), so a batch is one statement whatever its
// size. Every time comes from the database's clock (grin_now_micros() and friends, postgres
// migration 0001; now() is the transaction's start), never from a host.
// Included only by pg_state_store.cc.

namespace grin::storage::pg::state_sql {

inline constexpr const char* kInsertRunSql =
    "INSERT INTO runs(started_at, pid, host) VALUES (grin_now_iso_millis(), $1::bigint, $2) "
    "RETURNING run_id";
inline constexpr const char* kEndRunSql =
    "UPDATE runs SET ended_at = grin_now_iso_millis() WHERE run_id = $1::bigint";

// Leases whose time ran out (database clock) go back to ready/retry, or dead ("crash_loop") when
// their crash streak passes $1 (max_recoveries); the token is bumped, which fences the old
// holder out; one event each, by the reclaiming run $2. At most $3 rows per call, skipping rows
// another transaction holds. The streak rule is SQLite's boot-id reclaim's (kReclaimFindSql):
// unchanged after a forced exit, 1 when the holder's run completed anything after claiming it,
// else one more.
inline constexpr const char* kReclaimExpiredSql = R"sql(
WITH x AS (
  SELECT j.job_id, j.lease_run AS old_run,
         CASE WHEN coalesce(r.forced_exit, 0) = 1 THEN j.recoveries
              WHEN r.last_progress_at >= coalesce(j.leased_at, 0) THEN 1
              ELSE j.recoveries + 1 END AS streak
  FROM jobs j LEFT JOIN runs r ON r.run_id = j.lease_run
  WHERE j.status = 'leased' AND j.lease_expires_at < now()
  ORDER BY j.job_id LIMIT $3::bigint
  FOR UPDATE OF j SKIP LOCKED),
u AS (
  UPDATE jobs j SET
    status = CASE WHEN x.streak > $1::bigint THEN 'dead'
                  WHEN j.attempts > 0 THEN 'retry' ELSE 'ready' END,
    error_class = CASE WHEN x.streak > $1::bigint THEN 'permanent' ELSE j.error_class END,
    error_reason = CASE WHEN x.streak > $1::bigint THEN 'crash_loop' ELSE j.error_reason END,
    recoveries = x.streak,
    lease_token = j.lease_token + 1,
    lease_run = NULL,
    lease_expires_at = NULL,
    updated_at = grin_now_micros()
  FROM x WHERE j.job_id = x.job_id
  RETURNING j.job_id, j.barcode, j.stage, j.status, x.old_run, x.streak)
INSERT INTO events(at, barcode, stage, outcome, run_id, detail)
SELECT grin_now_iso_millis(), u.barcode, u.stage,
       CASE WHEN u.status = 'dead' THEN 'dead_crash_loop' ELSE 'reclaimed' END, $2::bigint,
       json_build_object('from_run', u.old_run, 'now', u.status, 'crash_streak', u.streak)::text
FROM u ORDER BY u.job_id)sql";

// Heartbeat: this run's leases ($1) last $2 more microseconds from now.
inline constexpr const char* kHeartbeatSql = R"sql(
UPDATE jobs SET lease_expires_at = now() + $2::bigint * interval '1 microsecond'
WHERE status = 'leased' AND lease_run = $1::bigint)sql";

// A forced exit gives back every lease of this run ($1) without counting an attempt or a crash.
inline constexpr const char* kReleaseRunSql = R"sql(
WITH u AS (
  UPDATE jobs SET status = CASE WHEN attempts > 0 THEN 'retry' ELSE 'ready' END,
                  lease_token = lease_token + 1, lease_run = NULL, lease_expires_at = NULL,
                  updated_at = grin_now_micros()
  WHERE status = 'leased' AND lease_run = $1::bigint
  RETURNING job_id, barcode, stage)
INSERT INTO events(at, barcode, stage, outcome, run_id, detail)
SELECT grin_now_iso_millis(), barcode, stage, 'released', $1::bigint, '{"forced_exit":true}'
FROM u ORDER BY job_id)sql";
inline constexpr const char* kForcedEndRunSql =
    "UPDATE runs SET ended_at = grin_now_iso_millis(), forced_exit = 1 WHERE run_id = $1::bigint";

// $1 = the barcodes as a JSON array; in their order; known ones untouched.
inline constexpr const char* kEnqueueSql = R"sql(
INSERT INTO jobs(barcode, created_at, updated_at)
SELECT x.b, grin_now_micros(), grin_now_micros()
FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS x(b, o) ORDER BY x.o
ON CONFLICT (barcode) DO NOTHING)sql";

// The claim, one statement (autocommit: one round trip): up to $3 claimable jobs at milestone $2
// in (priority, next_attempt_at, job_id) order, rows other claimers hold skipped (FOR UPDATE SKIP
// LOCKED: concurrent claimers never wait for, nor take, each other's rows), leased to run $1
// with a fresh token until now() + $4 micros, each with its checkpoint saved at $2 (or NULL).
// $5: the run's scope as a JSON array, or NULL for none.
inline constexpr const char* kClaimSql = R"sql(
WITH c AS (
  SELECT job_id FROM jobs
  WHERE stage = $2 AND status IN ('ready', 'retry') AND stage <> 'uploaded'
    AND next_attempt_at <= grin_now_micros()
    AND ($5::jsonb IS NULL OR barcode IN (SELECT jsonb_array_elements_text($5::jsonb)))
  ORDER BY priority, next_attempt_at, job_id LIMIT $3::bigint
  FOR UPDATE SKIP LOCKED),
u AS (
  UPDATE jobs j SET status = 'leased', lease_run = $1::bigint, lease_token = j.lease_token + 1,
                    leased_at = grin_now_micros(), updated_at = grin_now_micros(),
                    lease_expires_at = now() + $4::bigint * interval '1 microsecond'
  FROM c WHERE j.job_id = c.job_id
  RETURNING j.job_id, j.barcode, j.lease_token, j.attempts)
SELECT u.job_id, u.barcode, u.lease_token, u.attempts, cp.data
FROM u LEFT JOIN job_checkpoints cp ON cp.barcode = u.barcode AND cp.stage = $2
ORDER BY u.job_id)sql";

// Fenced completions, one statement whatever the batch (autocommit when no book fields: one
// round trip). $1 = [{"k", "id", "tok", "st", "from_st", "o", "d", "carry"}...] (k: the
// completion's index; d, carry: null or text), $2 = run, $3 = notify (boolean). A job named twice
// is completed once, by its first naming whose fence holds (c; the UPDATE checks the fence again
// on the row as it is when locked). For the rows whose fence (token, leased, claimed stage)
// held: the job moves to st; its checkpoint is deleted, or replaced by carry; one event each in
// k order; the run's progress time; job_counts (grin_add_job_counts, postgres 0003: last, so
// the shared rows are locked for the shortest time); a notification when some job moved to a
// milestone that is not the last. Returns the held completions' k, in order. (Data-modifying
// CTEs run once each, and those nothing reads only at the statement's end: cnt reads the others
// through `done` so that job_counts, which every worker's completions update, is locked after
// all of them, shortly before the commit; cnt and nt are read from the select list, once, and
// only when some fence held. The events' trigger, uploaded_per_second, runs after the
// statement.)
inline constexpr const char* kCompleteSql = R"sql(
WITH c AS (
  SELECT DISTINCT ON (x.id) x.*
  FROM jsonb_to_recordset($1::jsonb)
    AS x(k bigint, id bigint, tok bigint, st text, from_st text, o text, d text, carry text)
  JOIN jobs j ON j.job_id = x.id AND j.lease_token = x.tok AND j.status = 'leased'
    AND j.stage = x.from_st
  ORDER BY x.id, x.k),
u AS (
  UPDATE jobs SET stage = c.st, status = 'ready', attempts = 0, next_attempt_at = 0,
                  recoveries = 0, lease_run = NULL, lease_expires_at = NULL, error_class = NULL,
                  error_reason = NULL, error_detail = NULL, failed_at = NULL,
                  updated_at = grin_now_micros()
  FROM c WHERE jobs.job_id = c.id AND jobs.lease_token = c.tok AND jobs.status = 'leased'
    AND jobs.stage = c.from_st
  RETURNING c.k, jobs.barcode AS b, c.st, c.from_st, c.o, c.d, c.carry),
dc AS (
  DELETE FROM job_checkpoints WHERE barcode IN (SELECT b FROM u WHERE carry IS NULL)
  RETURNING 1),
sc AS (
  INSERT INTO job_checkpoints(barcode, stage, data, updated_at)
  SELECT b, st, carry, grin_now_micros() FROM u WHERE carry IS NOT NULL
  ON CONFLICT (barcode) DO UPDATE SET stage = excluded.stage, data = excluded.data,
                                      updated_at = excluded.updated_at
  RETURNING 1),
e AS (
  INSERT INTO events(at, barcode, stage, outcome, run_id, detail)
  SELECT grin_now_iso_millis(), b, st, o, $2::bigint, d FROM u ORDER BY k
  RETURNING 1),
p AS (
  UPDATE runs SET last_progress_at = grin_now_micros()
  WHERE run_id = $2::bigint AND EXISTS (SELECT 1 FROM u)
  RETURNING 1),
done AS (
  SELECT (SELECT count(*) FROM dc) + (SELECT count(*) FROM sc) + (SELECT count(*) FROM e) +
         (SELECT count(*) FROM p) AS n),
cnt AS (
  SELECT grin_add_job_counts(ARRAY[
    count(*) FILTER (WHERE st = 'pending') - count(*) FILTER (WHERE from_st = 'pending'),
    count(*) FILTER (WHERE st = 'checked') - count(*) FILTER (WHERE from_st = 'checked'),
    count(*) FILTER (WHERE st = 'downloaded') - count(*) FILTER (WHERE from_st = 'downloaded'),
    count(*) FILTER (WHERE st = 'uploaded') - count(*) FILTER (WHERE from_st = 'uploaded')])
  FROM u WHERE (SELECT n FROM done) >= 0),
nt AS (
  SELECT pg_notify('grin_jobs_ready', '')
  FROM (SELECT 1 FROM u WHERE st <> 'uploaded' LIMIT 1) x WHERE $3::boolean)
SELECT u.k, (SELECT count(*) FROM cnt), (SELECT count(*) FROM nt) FROM u ORDER BY u.k)sql";
inline constexpr const char* kDeleteCheckpointSql =
    "DELETE FROM job_checkpoints WHERE barcode = $1";
// $1 barcode, $2 stage, $3 data.
inline constexpr const char* kSaveCheckpointSql = R"sql(
INSERT INTO job_checkpoints(barcode, stage, data, updated_at)
VALUES ($1, $2, $3, grin_now_micros())
ON CONFLICT (barcode) DO UPDATE SET stage = excluded.stage, data = excluded.data,
                                    updated_at = excluded.updated_at)sql";
// The fence of SaveCheckpoint, holding the row until commit.
inline constexpr const char* kFencedLeaseSql =
    "SELECT 1 FROM jobs WHERE job_id = $1::bigint AND lease_token = $2::bigint "
    "AND status = 'leased' FOR UPDATE";

// Several events in one statement, in order: $1 = run id, $2 = [{"b", "st", "o", "d"}...].
inline constexpr const char* kInsertEventsSql = R"sql(
INSERT INTO events(at, barcode, stage, outcome, run_id, detail)
SELECT grin_now_iso_millis(), e.b, e.st, e.o, $1::bigint, e.d
FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (b text, st text, o text, d text))
     WITH ORDINALITY AS e(b, st, o, d, n)
ORDER BY e.n)sql";
// $1 barcode ("" = NULL), $2 stage, $3 outcome, $4 run, $5 detail.
inline constexpr const char* kInsertEventSql = R"sql(
INSERT INTO events(at, barcode, stage, outcome, run_id, detail)
VALUES (grin_now_iso_millis(), nullif($1, ''), $2, $3, $4::bigint, $5))sql";

inline constexpr const char* kEnsureBookSql =
    "INSERT INTO books(barcode, created_at, updated_at) "
    "VALUES ($1, grin_now_iso(), grin_now_iso()) ON CONFLICT (barcode) DO NOTHING";

// $1 job, $2 token, $3 status (retry/dead), $4 delay micros, $5 class, $6 reason, $7 detail.
inline constexpr const char* kFailSql = R"sql(
UPDATE jobs SET status = $3, attempts = attempts + 1,
                next_attempt_at = grin_now_micros() + $4::bigint, lease_run = NULL,
                lease_expires_at = NULL, error_class = $5, error_reason = $6, error_detail = $7,
                failed_at = grin_now_micros(), updated_at = grin_now_micros()
WHERE job_id = $1::bigint AND lease_token = $2::bigint AND status = 'leased'
RETURNING attempts)sql";

inline constexpr const char* kReleaseSql = R"sql(
UPDATE jobs SET status = CASE WHEN attempts > 0 THEN 'retry' ELSE 'ready' END,
                lease_run = NULL, lease_expires_at = NULL, updated_at = grin_now_micros()
WHERE job_id = $1::bigint AND lease_token = $2::bigint AND status = 'leased')sql";

// $1 job, $2 token, $3 claimed stage, $4 reason, $5 detail.
inline constexpr const char* kAwaitSql = R"sql(
UPDATE jobs SET stage = 'pending', status = 'awaiting', attempts = 0, next_attempt_at = 0,
                lease_run = NULL, lease_expires_at = NULL, error_class = NULL,
                error_reason = $4, error_detail = $5, failed_at = grin_now_micros(),
                updated_at = grin_now_micros()
WHERE job_id = $1::bigint AND lease_token = $2::bigint AND status = 'leased' AND stage = $3)sql";
// $1 = barcodes (JSON array); the woken barcodes come back.
inline constexpr const char* kWakeSql = R"sql(
UPDATE jobs SET status = 'ready', next_attempt_at = 0, error_reason = NULL, error_detail = NULL,
                failed_at = NULL, updated_at = grin_now_micros()
WHERE barcode IN (SELECT jsonb_array_elements_text($1::jsonb)) AND status = 'awaiting'
RETURNING barcode)sql";

// Requeue, one statement for every filter: $1 stage or NULL, $2 LIKE pattern or NULL, $3 dead
// only.
inline constexpr const char* kRequeueSql = R"sql(
UPDATE jobs SET status = 'ready', attempts = 0, next_attempt_at = 0, recoveries = 0,
                error_class = NULL, error_reason = NULL, error_detail = NULL, failed_at = NULL,
                updated_at = grin_now_micros()
WHERE status IN ('retry', 'dead') AND (NOT $3::boolean OR status = 'dead')
  AND ($1::text IS NULL OR stage = $1) AND ($2::text IS NULL OR error_reason LIKE $2)
RETURNING job_id, barcode, stage)sql";

// Reset: $1 barcode, $2 include jobs at uploaded. The old milestone comes back (for job_counts)
// from the row locked by the sub-select.
inline constexpr const char* kResetSql = R"sql(
WITH old AS (
  SELECT job_id, stage FROM jobs
  WHERE barcode = $1 AND status <> 'leased' AND ($2::boolean OR stage <> 'uploaded')
  FOR UPDATE)
UPDATE jobs SET stage = 'pending', status = 'ready', attempts = 0, next_attempt_at = 0,
                recoveries = 0, error_class = NULL, error_reason = NULL, error_detail = NULL,
                failed_at = NULL, lease_run = NULL, lease_expires_at = NULL,
                updated_at = grin_now_micros()
FROM old WHERE jobs.job_id = old.job_id
RETURNING old.stage)sql";

// job_counts moved by $1 (a bigint[4] in milestone order), in the same transaction as the jobs,
// in one statement: grin_add_job_counts (postgres 0003) locks its rows in milestone order, the
// one order every writer uses (no deadlock).
inline constexpr const char* kAddCountsSql = "SELECT grin_add_job_counts($1::bigint[])";

inline constexpr const char* kStageCountsSql = "SELECT stage, n FROM job_counts";
inline constexpr const char* kLeasedCountSql = "SELECT count(*) FROM jobs WHERE status = 'leased'";
inline constexpr const char* kFailedCountsSql =
    "SELECT status, count(*) FROM jobs WHERE status IN ('retry', 'dead') GROUP BY status";
inline constexpr const char* kAwaitingCountSql =
    "SELECT count(*), coalesce(min(failed_at), 0) FROM jobs WHERE status = 'awaiting'";
// $1 = the scope as a JSON array.
inline constexpr const char* kScopedCountsSql = R"sql(
SELECT stage, status, count(*), coalesce(min(failed_at), 0) FROM jobs
WHERE barcode IN (SELECT jsonb_array_elements_text($1::jsonb)) GROUP BY stage, status)sql";
inline constexpr const char* kFailuresSql = R"sql(
SELECT stage, coalesce(error_reason, ''), coalesce(error_class, ''), (status = 'dead')::int,
       count(*)
FROM jobs WHERE status IN ('retry', 'dead')
GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC, 1, 2)sql";

// What the clock will make claimable (PgStateStore::WaitForWork), in microseconds from now by
// the database's clock, at milestones $1 (text[]), within the scope $3 (JSON array, or NULL):
// the earliest next_attempt_at of a ready or retry job (<= 0: one is claimable now), and the
// earliest expiry of a lease another run than $2 holds (<= 0: expired; the next claim takes it
// back). NULL when there is none. Both are index lookups (jobs_claim, jobs_lease_expiry).
inline constexpr const char* kWaitTimesSql = R"sql(
SELECT (SELECT min(next_attempt_at) FROM jobs
        WHERE stage = ANY($1::text[]) AND status IN ('ready', 'retry') AND stage <> 'uploaded'
          AND ($3::jsonb IS NULL OR barcode IN (SELECT jsonb_array_elements_text($3::jsonb))))
         - grin_now_micros(),
       (SELECT (extract(epoch FROM min(lease_expires_at) - now()) * 1000000)::bigint FROM jobs
        WHERE status = 'leased' AND lease_run IS DISTINCT FROM $2::bigint
          AND stage = ANY($1::text[])
          AND ($3::jsonb IS NULL OR barcode IN (SELECT jsonb_array_elements_text($3::jsonb)))))sql";

// Idle workers wait on this channel (PgStateStore::WaitForWork).
inline constexpr const char* kNotifySql = "SELECT pg_notify('grin_jobs_ready', '')";
inline constexpr const char* kListenSql = "LISTEN grin_jobs_ready";

}  // namespace grin::storage::pg::state_sql
