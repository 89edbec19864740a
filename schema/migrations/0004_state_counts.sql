-- 0004: O(1) progress counts and cheaper state writes (issue 2's benchmark).
--
-- job_counts holds the number of jobs at each milestone. The state store's writer keeps it in
-- the same transaction as the job rows it changes (one UPDATE per milestone per group commit), so
-- `status` reads four rows instead of counting a million. The progress views still read `jobs`
-- and stay the truth in plain sqlite3; job_counts must always equal
--   SELECT stage, count(*) FROM jobs GROUP BY stage.
CREATE TABLE job_counts (
  stage TEXT PRIMARY KEY NOT NULL
    CHECK (stage IN ('pending', 'checked', 'downloaded', 'uploaded')),
  n INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO job_counts(stage, n)
  SELECT s.stage, (SELECT count(*) FROM jobs j WHERE j.stage = s.stage)
  FROM (SELECT 'pending' AS stage UNION ALL SELECT 'checked' UNION ALL SELECT 'downloaded'
        UNION ALL SELECT 'uploaded') s;

-- jobs_stage_status changed on every claim and every completion. Counting moved to job_counts;
-- the views only need the milestone, which a claim does not change.
DROP INDEX jobs_stage_status;
CREATE INDEX jobs_stage ON jobs(stage);
-- The claim index without the finished jobs: a job that reached `uploaded` is never claimed, but
-- it is 'ready', so 0001's index kept every finished job (and took an insert per final
-- completion). The claim query repeats `stage <> 'uploaded'` so the planner may use it.
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs(stage, priority, next_attempt_at, job_id)
  WHERE status IN ('ready', 'retry') AND stage <> 'uploaded';
-- Failed jobs (retrying or dead), for the retrying/dead counts and the failure summary. Partial:
-- a claim or completion of a healthy job never touches it.
CREATE INDEX jobs_failed ON jobs(status, stage, error_reason, error_class)
  WHERE status IN ('retry', 'dead');

-- `status` asks how many books reached `uploaded` in the last minutes (stage = 'uploaded' AND
-- at >= ?); events_outcome (stage, outcome, at) could only seek the stage and then read every
-- uploaded event ever. Same number of event indexes, time before outcome.
DROP INDEX events_outcome;
CREATE INDEX events_stage_at ON events(stage, at, outcome);
