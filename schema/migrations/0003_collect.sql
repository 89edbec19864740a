-- 0003: bookkeeping for collect, enrich and conversion requests (issue 5).

-- Where an interrupted collect resumes: the URL of the next _all_books page to fetch, written in
-- the same transaction as the rows of the page before it. Absent = no collect in progress.
CREATE TABLE collect_cursor (
  library_directory TEXT PRIMARY KEY NOT NULL,
  next_url TEXT NOT NULL,
  pages_done INTEGER NOT NULL DEFAULT 0,
  rows_seen INTEGER NOT NULL DEFAULT 0,
  refresh INTEGER NOT NULL DEFAULT 0 CHECK (refresh IN (0, 1)),
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

-- Enrichment attempts. 'found' rows mirror books.enrichment_timestamp; 'missing' means GRIN's
-- _barcode_search did not know the barcode (not asked again unless reset); 'failed' means the
-- batch failed and the book stays pending (retried on the next run), unlike the reference tool.
CREATE TABLE book_enrichment (
  barcode TEXT PRIMARY KEY NOT NULL REFERENCES books(barcode) ON DELETE CASCADE,
  state TEXT NOT NULL CHECK (state IN ('found', 'missing', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_attempt_at TEXT NOT NULL,
  last_error TEXT
) STRICT;
CREATE INDEX book_enrichment_state ON book_enrichment(state, barcode);
-- The enrichment work list: books never enriched, in barcode order (keyset-paged).
CREATE INDEX books_enrichment_pending ON books(barcode) WHERE enrichment_timestamp IS NULL;

-- The latest _process outcome per book. History goes to events (stage 'conversion').
CREATE TABLE conversion_request (
  barcode TEXT PRIMARY KEY NOT NULL REFERENCES books(barcode) ON DELETE CASCADE,
  outcome TEXT NOT NULL CHECK (outcome IN ('requested', 'in_process', 'already_available',
                                           'not_allowed', 'other', 'unanswered')),
  grin_status TEXT,
  attempts INTEGER NOT NULL DEFAULT 1,
  requested_at TEXT NOT NULL
) STRICT;
CREATE INDEX conversion_request_outcome ON conversion_request(outcome);
