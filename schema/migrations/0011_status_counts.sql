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

-- As every migration since 0005 does: job_counts re-derived from jobs.
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
