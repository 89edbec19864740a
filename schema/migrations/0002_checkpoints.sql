-- 0002: resumable-transfer checkpoints. A job's in-flight progress (download offset and the
-- validator it was taken under, a multipart upload id) and the parts already uploaded, so a
-- resumed run continues instead of starting the stage again.
CREATE TABLE job_checkpoints (
  barcode TEXT PRIMARY KEY NOT NULL REFERENCES jobs(barcode) ON DELETE CASCADE,
  stage TEXT NOT NULL,
  data TEXT NOT NULL CHECK (json_valid(data)),
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE upload_parts (
  upload_id TEXT NOT NULL,
  part_number INTEGER NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  barcode TEXT NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  checksum TEXT,
  PRIMARY KEY (upload_id, part_number)
) STRICT;
