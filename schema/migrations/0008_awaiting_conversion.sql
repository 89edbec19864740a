-- 0008: books waiting for GRIN to convert them (issue 16, items 11-15).
--
-- A sync that finds no archive at GRIN asks GRIN to convert the book; such books used to become
-- dead (conversion_requested, conversion_queue_full) and later syncs skipped them for good. They
-- now wait with jobs.status = 'awaiting': never claimed, neither failed nor dead, counted apart
-- by `status`, until a sync sees them in GRIN's _converted list and makes them ready again.
-- While a job awaits, error_reason says why (conversion_requested, conversion_in_process,
-- conversion_queue_full, conversion_not_requested, archive_expired, ...), error_detail holds
-- GRIN's reply, and failed_at is when it started waiting (unix micros); error_class is NULL, so
-- the `failed` view (status retry or dead) does not list it.
--
-- The status CHECK cannot be altered in place, so jobs is rebuilt as 0005 did (same columns,
-- rowids, indexes and views; O(jobs) once).

DROP VIEW pending;
DROP VIEW checked;
DROP VIEW downloaded;
DROP VIEW uploaded;
DROP VIEW failed;

CREATE TABLE jobs_0008 (
  job_id INTEGER PRIMARY KEY,
  barcode TEXT NOT NULL UNIQUE,
  stage TEXT NOT NULL DEFAULT 'pending'
    CHECK (stage = 'pending' OR stage = 'checked' OR stage = 'downloaded'
           OR stage = 'uploaded'),
  status TEXT NOT NULL DEFAULT 'ready'
    CHECK (status = 'ready' OR status = 'leased' OR status = 'retry' OR status = 'dead'
           OR status = 'awaiting'),
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
INSERT INTO jobs_0008 SELECT job_id, barcode, stage, status, priority, attempts, recoveries,
  next_attempt_at, lease_run, lease_token, leased_at, error_class, error_reason, error_detail,
  failed_at, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_0008 RENAME TO jobs;

CREATE INDEX jobs_lease ON jobs(lease_run) WHERE status = 'leased';
CREATE INDEX jobs_stage ON jobs(stage);
CREATE INDEX jobs_claim ON jobs(stage, priority, next_attempt_at, job_id)
  WHERE status IN ('ready', 'retry') AND stage <> 'uploaded';
CREATE INDEX jobs_failed ON jobs(status, stage, error_reason, error_class)
  WHERE status IN ('retry', 'dead');
-- The waiting books, for `status` (how many, since when) and the wake-up by barcode.
CREATE INDEX jobs_awaiting ON jobs(failed_at) WHERE status = 'awaiting';

-- Books that syncs used to make dead while GRIN converts them wait instead.
UPDATE jobs SET status = 'awaiting', error_class = NULL, attempts = 0
WHERE status = 'dead' AND stage = 'pending'
  AND error_reason IN ('conversion_requested', 'conversion_queue_full',
                       'conversion_in_process', 'conversion_already_available',
                       'conversion_unanswered');

-- The views of 0001, unchanged (awaiting books are in `pending`, not in `failed`).
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
-- The books waiting for GRIN to convert them: why, GRIN's reply, and since when (ISO UTC).
CREATE VIEW awaiting_conversion AS
  SELECT barcode, error_reason AS reason, error_detail AS detail,
         strftime('%Y-%m-%dT%H:%M:%SZ', failed_at / 1000000, 'unixepoch') AS since
  FROM jobs WHERE status = 'awaiting';

UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
