-- 0007: a placeholder on branch h-convert only, so that 0008 applies in order (migrations are
-- contiguous). Another branch owns 0007: delete this file when merging it.
SELECT 1;
