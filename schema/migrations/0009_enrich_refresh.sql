-- 0009: enrichment that does not go stale (issue 16, item 9).
--
-- A barcode GRIN's _barcode_search did not know used to stay 'missing' for good. It is now asked
-- again by a later plain `enrich`, with backoff: 1 day after the first 'missing' answer, then
-- doubling (2, 4, 8, 16 days) up to 30 days. missing_count is the number of 'missing' answers in
-- a row (0 once found); next_ask_at (ISO 8601 UTC, like last_attempt_at) is when the book is due
-- again, NULL unless state = 'missing'. `enrich --refresh` asks enriched books again as well.
ALTER TABLE book_enrichment ADD COLUMN missing_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE book_enrichment ADD COLUMN next_ask_at TEXT;

-- Books already missing count one 'missing' answer: due a day after it.
UPDATE book_enrichment
SET missing_count = 1,
    next_ask_at = strftime('%Y-%m-%dT%H:%M:%SZ', last_attempt_at, '+1 days')
WHERE state = 'missing';

-- The missing books that are due, in barcode order (keyset-paged by enrich).
CREATE INDEX book_enrichment_missing_due ON book_enrichment(barcode, next_ask_at)
  WHERE state = 'missing';
-- `enrich --refresh --older-than DAYS`: enriched books by barcode.
CREATE INDEX books_enriched ON books(barcode, enrichment_timestamp)
  WHERE enrichment_timestamp IS NOT NULL;

-- As 0004 and 0008 do: job_counts recounted from jobs (it must equal them after any upgrade).
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
