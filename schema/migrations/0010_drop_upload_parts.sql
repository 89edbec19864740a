-- 0010: drop upload_parts. Created by 0002 for multipart progress, it was never written or read:
-- a job's multipart state (upload id, part size, acknowledged parts) lives in its checkpoint in
-- job_checkpoints (engine/pipeline/checkpoint_journal.h), fenced on the job's lease like every
-- other write of that job.
DROP TABLE IF EXISTS upload_parts;

-- job_counts re-derived, as every migration since 0005 does (repairs counts left behind by jobs
-- edited by hand).
UPDATE job_counts SET n = (SELECT count(*) FROM jobs WHERE jobs.stage = job_counts.stage);
