#pragma once
// The sync pipeline's job checkpoint: what a job carries between stages, typed (JobCheckpoint),
// with its one encoding (EncodeCheckpoint / DecodeCheckpoint), and the MultipartJournal that
// persists upload progress there, fenced on the job's lease, so a resumed run continues the
// upload from its recorded parts instead of starting again.
//
// The stages hand the check's result on as a value: a book streamed by the worker that checked
// it gets the CheckedArchive directly; a book claimed at `checked` or `downloaded` gets it
// decoded once, at the claim, from the checkpoint the previous stage stored (the state store
// keeps it across kill -9). Nothing else reads or writes the text.
//
// Stored form (JSON text in the job row; unchanged since the first release, so runs started by
// an older grin-jobs resume): {"etag": "...", "size": N, "upload": {"id": "...",
//   "part_size": N, "parts": [{"n": 1, "size": N, "etag": "..."}, ...]}}
//
// Thread safety: the functions are pure; CheckpointJournal locks (Upload() reports parts from
// several threads).

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "engine/object_store.h"
#include "engine/state_store.h"

namespace grin::pipeline {

// GRIN's encrypted archive of a book as the check (a HEAD, or the response head of a GET)
// described it: what the download stage fetches and the process stage expects.
struct CheckedArchive {
  std::string etag;   // unquoted; "" unknown
  int64_t size = -1;  // bytes; -1 unknown
  bool operator==(const CheckedArchive&) const = default;
};

struct JobCheckpoint {
  CheckedArchive archive;
  std::optional<MultipartState> upload;  // an unfinished multipart upload of the raw archive
};

// Parses a stored checkpoint. Text that is empty, not JSON, or has fields of the wrong type
// yields the empty parts (the job starts its stage afresh), never an error.
JobCheckpoint DecodeCheckpoint(const std::string& text);
// The stored form of `cp` (see the file comment; "etag" and "size" are always written).
std::string EncodeCheckpoint(const JobCheckpoint& cp);

class CheckpointJournal final : public MultipartJournal {
 public:
  // `base`: the checkpoint to keep (the archive's ETag and size); the upload is recorded in it.
  CheckpointJournal(StateStore* store, const WorkItem& item, const CheckedArchive& base)
      : store_(store), item_(item) {
    cp_.archive = base;
  }
  Status OnBegin(const std::string& bucket, const std::string& key,
                 const MultipartState& state) override;
  Status OnPart(const std::string& bucket, const std::string& key, const std::string& upload_id,
                const UploadedPart& part) override;
  Status OnFinish(const std::string& bucket, const std::string& key,
                  const std::string& upload_id) override;

 private:
  StateStore* store_;
  WorkItem item_;
  std::mutex mu_;
  JobCheckpoint cp_;
};

}  // namespace grin::pipeline
