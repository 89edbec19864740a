-- 0005: jobs with CHECK constraints that cost nothing per row (issue 2's benchmark).
--
-- SQLite codes a CHECK `x IN (4 constants)` as an ephemeral b-tree that it clears and refills
-- with the four values, then probes, for every row it inserts or updates (no once-per-statement
-- hoisting inside constraint checks; lists of up to two values are plain comparisons). 0001's
-- `stage IN (...)` and `status IN (...)` thus built two b-trees per enqueued job, one per claim
-- and two per completion, a large share of the writer's CPU. The same rules written as
-- equalities allow exactly the same values and compile to four comparisons.
--
-- A CHECK cannot be altered in place, so jobs is rebuilt (SQLite's documented 12-step
-- procedure; OpenDatabase runs migrations with foreign_keys off, so job_checkpoints' cascade
-- does not fire, and checks foreign keys before commit). Columns, their order, rowids
-- (job_id), indexes (as of 0004) and views are unchanged; O(jobs) once.

DROP VIEW pending;
DROP VIEW checked;
DROP VIEW downloaded;
DROP VIEW uploaded;
DROP VIEW failed;

CREATE TABLE jobs_0005 (
  job_id INTEGER PRIMARY KEY,
  barcode TEXT NOT NULL UNIQUE,
  stage TEXT NOT NULL DEFAULT 'pending'
    CHECK (stage = 'pending' OR stage = 'checked' OR stage = 'downloaded'
           OR stage = 'uploaded'),
  status TEXT NOT NULL DEFAULT 'ready'
    CHECK (status = 'ready' OR status = 'leased' OR status = 'retry' OR status = 'dead'),
  priority INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,       -- failed attempts at the current stage
  recoveries INTEGER NOT NULL DEFAULT 0,     -- leases taken back from crashed runs
  next_attempt_at INTEGER NOT NULL DEFAULT 0, -- unix micros
  lease_run INTEGER,
  lease_token INTEGER NOT NULL DEFAULT 0,
  leased_at INTEGER,
  error_class TEXT CHECK (error_class IS NULL OR error_class = 'retryable'
                          OR error_class = 'permanent'),
  error_reason TEXT,
  error_detail TEXT,
  failed_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
INSERT INTO jobs_0005 SELECT job_id, barcode, stage, status, priority, attempts, recoveries,
  next_attempt_at, lease_run, lease_token, leased_at, error_class, error_reason, error_detail,
  failed_at, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_0005 RENAME TO jobs;

-- The indexes of 0001 as changed by 0004.
CREATE INDEX jobs_lease ON jobs(lease_run) WHERE status = 'leased';
CREATE INDEX jobs_stage ON jobs(stage);
CREATE INDEX jobs_claim ON jobs(stage, priority, next_attempt_at, job_id)
  WHERE status IN ('ready', 'retry') AND stage <> 'uploaded';
CREATE INDEX jobs_failed ON jobs(status, stage, error_reason, error_class)
  WHERE status IN ('retry', 'dead');

-- The views of 0001, unchanged.
CREATE VIEW pending AS
  SELECT barcode, status, attempts, next_attempt_at, updated_at FROM jobs WHERE stage = 'pending';
CREATE VIEW checked AS
  SELECT barcode, status, attempts, next_attempt_at, updated_at FROM jobs WHERE stage = 'checked';
CREATE VIEW downloaded AS
  SELECT barcode, status, attempts, next_attempt_at, updated_at FROM jobs
  WHERE stage = 'downloaded';
CREATE VIEW uploaded AS
  SELECT barcode, updated_at FROM jobs WHERE stage = 'uploaded';
CREATE VIEW failed AS
  SELECT barcode, stage, status = 'dead' AS dead, error_class, error_reason AS reason,
         error_detail AS detail, attempts, next_attempt_at, failed_at
  FROM jobs WHERE status IN ('retry', 'dead');

-- job_counts re-derived from the rebuilt table (it must equal the jobs per milestone; this also
-- repairs counts that jobs edited by hand in plain sqlite3 since 0004 left behind).
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
