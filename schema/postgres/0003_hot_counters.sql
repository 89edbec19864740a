-- postgres 0003 (PostgreSQL only, no SQLite twin: no table, view or column changes): the shared
-- counter rows (job_counts, uploaded_per_second) are written once per statement, at its end, so
-- that concurrent workers hold their locks for microseconds (issue 21, item 5).
--
-- Before: events_uploaded_per_second ran once per inserted row, so a completion of 256 jobs to
-- `uploaded` made 256 upserts of the same row (this second's), and held that row's lock from the
-- events insert until its transaction committed; every other worker's completion queued on it.

-- Books completed per second, from the statement's new events (a transition table): one upsert
-- per second named, in second order (rows locked in one order: no deadlock between statements).
CREATE OR REPLACE FUNCTION events_uploaded_per_second() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Grouped by `at` first: a statement's events share their time, so the text is parsed once.
  INSERT INTO uploaded_per_second(sec, n)
    SELECT s, sum(k) FROM (SELECT grin_iso_unix_seconds(at) AS s, count(*) AS k FROM new_events
                           WHERE stage = 'uploaded' GROUP BY at OFFSET 0) x
    WHERE s IS NOT NULL GROUP BY s ORDER BY s
  ON CONFLICT (sec) DO UPDATE SET n = uploaded_per_second.n + excluded.n;
  RETURN NULL;
END $$;
DROP TRIGGER events_uploaded_per_second ON events;
CREATE TRIGGER events_uploaded_per_second AFTER INSERT ON events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION events_uploaded_per_second();

-- job_counts moved by delta[1..4] (pending, checked, downloaded, uploaded), its rows updated in
-- milestone order (the one order every writer locks them in), zero deltas skipped. The state
-- store calls it from the statement that moves the jobs (PgStateStore), last.
CREATE FUNCTION grin_add_job_counts(delta bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  stages constant text[] := ARRAY['pending', 'checked', 'downloaded', 'uploaded'];
BEGIN
  FOR i IN 1..4 LOOP
    IF coalesce(delta[i], 0) <> 0 THEN
      UPDATE job_counts SET n = n + delta[i] WHERE stage = stages[i];
    END IF;
  END LOOP;
END $$;
