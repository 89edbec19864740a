#include "engine/pipeline/storage_litter.h"

#include "engine/pipeline/checkpoint_journal.h"

namespace grin::pipeline {
namespace {

// Aborts multipart uploads of raw archives that no job of this run will resume.
void AbortAbandonedUploads(ObjectStore& objects, const StorageLayout& layout,
                           const decltype(SyncOptions::job_view)& job_view, Logger& log,
                           const std::string& log_prefix, StorageLitter* out) {
  if (!job_view) return;
  const std::string probe = "BARCODE";
  ObjectLocation loc = RawArchiveLocation(layout, probe);
  const std::string prefix = loc.key.substr(0, loc.key.find(probe));
  auto uploads = objects.ListPendingUploads(loc.bucket, prefix);
  if (!uploads.ok()) {
    log.Log(LogLevel::kWarning, log_prefix + ".litter_scan_failed",
            {{"bucket", loc.bucket}, {"error", uploads.status().message()}});
    out->errors.push_back("multipart uploads in bucket '" + loc.bucket +
                          "' not listed: " + uploads.status().message());
    return;
  }
  for (const auto& u : *uploads) {
    std::string rest = u.key.substr(prefix.size());
    std::string barcode = rest.substr(0, rest.find('/'));
    if (RawArchiveLocation(layout, barcode).key != u.key) continue;  // not a book's raw key
    auto job = job_view(barcode);
    if (!job.ok() || !job->has_value()) continue;  // unknown, or not a book of this run
    const SyncOptions::JobView& v = **job;
    if (!v.dead && v.stage != Stage::kUploaded) {
      auto recorded = DecodeCheckpoint(v.checkpoint).upload;
      if (recorded && recorded->upload_id == u.upload_id) continue;  // resumed by its job
    }
    Status s = objects.AbortMultipart(loc.bucket, u.key, u.upload_id);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      log.Log(LogLevel::kWarning, log_prefix + ".litter_abort_failed",
              {{"key", loc.bucket + "/" + u.key}, {"error", s.message()}});
      out->errors.push_back("multipart upload of " + loc.bucket + "/" + u.key +
                            " not aborted: " + s.message());
      continue;
    }
    out->uploads_aborted.push_back(loc.bucket + "/" + u.key);
    log.Log(LogLevel::kInfo, log_prefix + ".litter_removed",
            {{"multipart_upload", loc.bucket + "/" + u.key}});
  }
}

}  // namespace

StorageLitter SweepStorageLitter(ObjectStore& objects, const StorageLayout& layout,
                                 const decltype(SyncOptions::job_view)& job_view, Logger& log,
                                 const std::string& log_prefix) {
  StorageLitter out;
  const std::string probe = "BARCODE";
  for (const ObjectLocation& loc :
       {RawArchiveLocation(layout, probe), FullTextLocation(layout, probe),
        MetaLocation(layout, probe)}) {  // meta: its timestamped/ copies too (recursive)
    std::string prefix = loc.key.substr(0, loc.key.find(probe));
    auto n = objects.RemoveAbandonedTemporaries(loc.bucket, prefix);
    if (!n.ok()) {
      log.Log(LogLevel::kWarning, log_prefix + ".litter_scan_failed",
              {{"bucket", loc.bucket}, {"error", n.status().message()}});
      out.errors.push_back("temporary objects in bucket '" + loc.bucket +
                           "' not scanned: " + n.status().message());
      continue;
    }
    if (*n > 0) {
      log.Log(LogLevel::kInfo, log_prefix + ".litter_removed",
              {{"bucket", loc.bucket}, {"temporary_objects", std::to_string(*n)}});
    }
    out.temporaries_removed += *n;
  }
  AbortAbandonedUploads(objects, layout, job_view, log, log_prefix, &out);
  return out;
}

}  // namespace grin::pipeline
