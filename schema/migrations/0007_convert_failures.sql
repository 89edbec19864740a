-- 0007: GRIN's own words on a failed conversion, per book (issue 16 item 7).
--
-- GRIN's _failed list (HTML) gives each book whose conversion failed a Convert Failed Date, a
-- Convert Failed Info and a Detailed Convert Failed Info. `enrich` copies them here, so that
-- `status` and the books CSV can say why a book cannot be downloaded. Empty (NULL) for books
-- not in _failed the last time it was read.
ALTER TABLE books ADD COLUMN grin_convert_failed_date TEXT;
ALTER TABLE books ADD COLUMN grin_convert_failed_info TEXT;
ALTER TABLE books ADD COLUMN grin_detailed_convert_failed_info TEXT;

-- job_counts re-derived, as 0005 and 0006 do (repairs counts left behind by jobs edited by hand).
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
