-- 0002 (= SQLite 0011): `status` without a whole-table scan of books. The same tables, kept the
-- same way; see schema/migrations/0011_status_counts.sql for why each exists.

-- The number of rows of books, kept exact by triggers in the writing statement's transaction.
-- (One row: concurrent inserters of books queue on it; collect is one process per run.)
CREATE TABLE book_count (
  one bigint PRIMARY KEY NOT NULL CHECK (one = 1),
  n bigint NOT NULL
);
INSERT INTO book_count(one, n) SELECT 1, count(*) FROM books;
CREATE FUNCTION books_count_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE book_count SET n = n + 1 WHERE one = 1;
  ELSE
    UPDATE book_count SET n = n - 1 WHERE one = 1;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER books_count_insert AFTER INSERT ON books
  FOR EACH ROW EXECUTE FUNCTION books_count_bump();
CREATE TRIGGER books_count_delete AFTER DELETE ON books
  FOR EACH ROW EXECUTE FUNCTION books_count_bump();

-- The books GRIN's _failed list named, in status's grouping order (partial index).
CREATE INDEX books_convert_failed ON books((coalesce(grin_convert_failed_info, '')))
  WHERE grin_convert_failed_date IS NOT NULL OR grin_convert_failed_info IS NOT NULL;

-- Books completed per second of `at` (UTC ISO-8601 text, "YYYY-MM-DDTHH:MM:SS[.mmm]Z"); an `at`
-- that does not start with a full date and time is not counted (as SQLite's strftime gives NULL).
CREATE FUNCTION grin_iso_unix_seconds(t text) RETURNS bigint LANGUAGE sql IMMUTABLE
  AS $$ SELECT CASE WHEN t ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}'
                    THEN floor(extract(epoch FROM
                           (substr(t, 1, 10) || ' ' || substr(t, 12, 8) || '+00')::timestamptz))::bigint
               END $$;
CREATE TABLE uploaded_per_second (
  sec bigint PRIMARY KEY NOT NULL,  -- unix seconds
  n bigint NOT NULL
);
INSERT INTO uploaded_per_second(sec, n)
  SELECT grin_iso_unix_seconds(at), count(*) FROM events
  WHERE stage = 'uploaded' AND grin_iso_unix_seconds(at) IS NOT NULL GROUP BY 1;
CREATE FUNCTION events_uploaded_per_second() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s bigint := grin_iso_unix_seconds(NEW.at);
BEGIN
  IF NEW.stage = 'uploaded' AND s IS NOT NULL THEN
    INSERT INTO uploaded_per_second(sec, n) VALUES (s, 1)
      ON CONFLICT (sec) DO UPDATE SET n = uploaded_per_second.n + 1;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER events_uploaded_per_second AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION events_uploaded_per_second();

UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
