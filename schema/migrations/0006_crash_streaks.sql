-- 0006: crash_loop counts consecutive crashes only (issue 15).
--
-- jobs.recoveries used to grow by one for every lease taken back from a crashed run and was
-- reset only by requeue/reset, so a book that merely happened to be in flight during six
-- unrelated kills went dead. It now counts the crashes in a row that took the book down with no
-- progress of the run in between: a completion resets it to 0, and a lease taken back from a run
-- that completed any job after claiming this one starts the count again at 1.
-- runs.last_progress_at records, per run, when it last completed a job (unix micros; NULL =
-- never), written by the state store's writer in the completion's own transaction.
-- runs.forced_exit is 1 when the run gave its leases back on a forced exit (a second Ctrl-C).

ALTER TABLE runs ADD COLUMN last_progress_at INTEGER;
ALTER TABLE runs ADD COLUMN forced_exit INTEGER NOT NULL DEFAULT 0;

-- Counts from before this migration were lifetime totals, not streaks: start every book again.
UPDATE jobs SET recoveries = 0 WHERE recoveries <> 0 AND status <> 'dead';

-- job_counts re-derived, as 0005 does (repairs counts left behind by jobs edited by hand).
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
