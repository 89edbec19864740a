-- 0001: books (every column of the reference tool's books table), per-book job state, the
-- append-only event history, runs (boot ids), and the views that answer "how far are we?".

-- One row per book, columns in the reference tool's order (its CSV export depends on them).
CREATE TABLE books (
  barcode TEXT PRIMARY KEY NOT NULL,
  title TEXT,
  scanned_date TEXT,
  converted_date TEXT,
  downloaded_date TEXT,
  processed_date TEXT,
  analyzed_date TEXT,
  ocr_date TEXT,
  google_books_link TEXT,
  processing_request_timestamp TEXT,
  grin_state TEXT,
  grin_viewability TEXT,
  grin_opted_out TEXT,
  grin_conditions TEXT,
  grin_scannable TEXT,
  grin_tagging TEXT,
  grin_audit TEXT,
  grin_material_error_percent TEXT,
  grin_overall_error_percent TEXT,
  grin_claimed TEXT,
  grin_ocr_analysis_score TEXT,
  grin_ocr_gtd_score TEXT,
  grin_digitization_method TEXT,
  grin_check_in_date TEXT,
  grin_source_library_bibkey TEXT,
  grin_rubbish TEXT,
  grin_allow_download_updated_date TEXT,
  grin_viewability_updated_date TEXT,
  enrichment_timestamp TEXT,
  marc_control_number TEXT,
  marc_date_type TEXT,
  marc_date_1 TEXT,
  marc_date_2 TEXT,
  marc_language TEXT,
  marc_lccn TEXT,
  marc_lc_call_number TEXT,
  marc_isbn TEXT,
  marc_oclc_numbers TEXT,
  marc_title TEXT,
  marc_title_remainder TEXT,
  marc_author_personal TEXT,
  marc_author_corporate TEXT,
  marc_author_meeting TEXT,
  marc_subjects TEXT,
  marc_genres TEXT,
  marc_general_note TEXT,
  marc_extraction_timestamp TEXT,
  storage_path TEXT,
  last_etag_check TEXT,
  encrypted_etag TEXT,
  is_decrypted INTEGER NOT NULL DEFAULT 0 CHECK (is_decrypted IN (0, 1)),
  sync_timestamp TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX books_grin_state ON books(grin_state);

-- Every process that opened the database for writing gets a run row; its id is the "boot id"
-- stamped on every lease it takes.
CREATE TABLE runs (
  run_id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL
) STRICT;

-- Per-book job state.
--   stage:  the last milestone reached: pending -> checked -> downloaded -> uploaded (terminal).
--   status: ready (claimable when next_attempt_at <= now), leased (a worker holds it),
--           retry (last attempt failed; claimable again at next_attempt_at), dead (gave up).
-- Every write for a leased item is fenced on lease_token.
CREATE TABLE jobs (
  job_id INTEGER PRIMARY KEY,
  barcode TEXT NOT NULL UNIQUE,
  stage TEXT NOT NULL DEFAULT 'pending'
    CHECK (stage IN ('pending', 'checked', 'downloaded', 'uploaded')),
  status TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'leased', 'retry', 'dead')),
  priority INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,       -- failed attempts at the current stage
  recoveries INTEGER NOT NULL DEFAULT 0,     -- leases taken back from crashed runs
  next_attempt_at INTEGER NOT NULL DEFAULT 0, -- unix micros
  lease_run INTEGER,
  lease_token INTEGER NOT NULL DEFAULT 0,
  leased_at INTEGER,
  error_class TEXT CHECK (error_class IS NULL OR error_class IN ('retryable', 'permanent')),
  error_reason TEXT,
  error_detail TEXT,
  failed_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
-- The claim path: ready/retry items per stage in priority order. Partial, so it stays small.
CREATE INDEX jobs_claim ON jobs(stage, priority, next_attempt_at, job_id)
  WHERE status IN ('ready', 'retry');
CREATE INDEX jobs_stage_status ON jobs(stage, status);
CREATE INDEX jobs_lease ON jobs(lease_run) WHERE status = 'leased';

-- Append-only history: one row per transition or outcome.
CREATE TABLE events (
  event_id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  barcode TEXT,
  stage TEXT NOT NULL,
  outcome TEXT NOT NULL,
  run_id INTEGER,
  detail TEXT CHECK (detail IS NULL OR json_valid(detail))
) STRICT;
CREATE INDEX events_barcode ON events(barcode, event_id);
CREATE INDEX events_outcome ON events(stage, outcome, at);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events is append-only'); END;

-- The progress views. Every job is in exactly one of pending/checked/downloaded/uploaded;
-- failed overlays the jobs whose last attempt failed (retrying or dead).
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
