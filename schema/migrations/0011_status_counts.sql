-- 0011: `status` without a whole-table scan of books (issue 20, item 4).
--
-- `status` counted the books (count(*) walked an index of every book) and grouped GRIN's
-- conversion failures by a WHERE no index covered (it read the whole books table: ~0.3 s at
-- 100,000 books, growing with the run).
--
-- book_count holds the number of rows of books, kept by the two triggers below in the same
-- statement as the row written, whichever code (or hand edit in sqlite3) inserts or deletes a
-- book. It must always equal SELECT count(*) FROM books. (INSERT OR REPLACE on books would
-- delete without firing books_count_delete unless recursive_triggers is on: grin-jobs never
-- replaces a book, and a migration that rebuilds books must recreate both triggers.)
CREATE TABLE book_count (
  one INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
  n INTEGER NOT NULL
) STRICT;
INSERT INTO book_count(one, n) SELECT 1, count(*) FROM books;
CREATE TRIGGER books_count_insert AFTER INSERT ON books
  BEGIN UPDATE book_count SET n = n + 1 WHERE one = 1; END;
CREATE TRIGGER books_count_delete AFTER DELETE ON books
  BEGIN UPDATE book_count SET n = n - 1 WHERE one = 1; END;

-- The books GRIN's _failed list named (as of the last enrich), by Convert Failed Info: only
-- those books are in the index, in `status`'s grouping order, so the grouping reads O(failed
-- conversions) rows. The WHERE is the one `status` asks with, word for word (the planner uses a
-- partial index only for a query whose WHERE implies the index's).
CREATE INDEX books_convert_failed ON books(coalesce(grin_convert_failed_info, ''))
  WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL;

-- Books completed per second (events at stage 'uploaded', by the second of `at`), for status's
-- rate over the last 5 minutes: the window's count is the events of its first, partial second
-- (through events_stage_at) plus at most 300 of these rows, instead of every completion in the
-- window (42,705 index entries right after a 155 books/s sync). Kept by a trigger on the
-- append-only events, so it always equals
--   SELECT CAST(strftime('%s', at) AS INTEGER), count(*) FROM events
--   WHERE stage = 'uploaded' AND strftime('%s', at) IS NOT NULL GROUP BY 1.
CREATE TABLE uploaded_per_second (
  sec INTEGER PRIMARY KEY NOT NULL,  -- unix seconds
  n INTEGER NOT NULL
) STRICT;
INSERT INTO uploaded_per_second(sec, n)
  SELECT CAST(strftime('%s', at) AS INTEGER), count(*) FROM events
  WHERE stage = 'uploaded' AND strftime('%s', at) IS NOT NULL GROUP BY 1;
CREATE TRIGGER events_uploaded_per_second AFTER INSERT ON events
  WHEN NEW.stage = 'uploaded' AND strftime('%s', NEW.at) IS NOT NULL
  BEGIN
    INSERT INTO uploaded_per_second(sec, n) VALUES (CAST(strftime('%s', NEW.at) AS INTEGER), 1)
      ON CONFLICT(sec) DO UPDATE SET n = n + 1;
  END;

-- As every migration since 0005 does: job_counts re-derived from jobs.
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
