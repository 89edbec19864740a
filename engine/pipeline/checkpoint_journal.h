#pragma once
// The sync pipeline's job checkpoints: the JSON a job carries between stages (the GRIN ETag and
// size seen by the check, and the state of an unfinished multipart upload), and the
// MultipartJournal that persists upload progress there, fenced on the job's lease, so a resumed
// run continues the upload from its recorded parts instead of starting again.
//
// Checkpoint shape: {"etag": "...", "size": N, "upload": {"id": "...", "part_size": N,
//                    "parts": [{"n": 1, "size": N, "etag": "..."}, ...]}}
//
// Thread safety: CheckpointJournal locks (Upload() reports parts from several threads).

#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/object_store.h"
#include "engine/state_store.h"

namespace grin::pipeline {

// Parses a checkpoint; anything unreadable is an empty object (the job starts its stage afresh).
nlohmann::json ParseCheckpoint(const std::string& text);

// The multipart upload recorded in a checkpoint, if any.
std::optional<MultipartState> RecordedUpload(const nlohmann::json& checkpoint);

class CheckpointJournal final : public MultipartJournal {
 public:
  // `base`: the checkpoint fields to keep (etag, size); the upload is added to it.
  CheckpointJournal(StateStore* store, const WorkItem& item, nlohmann::json base)
      : store_(store), item_(item), cp_(std::move(base)) {}
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
  nlohmann::json cp_;
};

}  // namespace grin::pipeline
