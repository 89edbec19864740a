// What interrupted earlier runs left behind, removed at the start of a run (see sync_impl.h):
//   - staging: `<BARCODE>.tar.gz.gpg` partial downloads no job will resume (the book is stored,
//     dead, or not a job of this run), `<BARCODE>.tar.gz` decrypted copies (always rewritten
//     from the .gpg by the process stage) and `<BARCODE>_ocr.jsonl.gz[.part]` OCR spill files
//     (always rebuilt). The staging directory belongs to the run, which one process holds at a
//     time (the run lock), so nothing in it is in use at the start.
//   - storage: temporary objects of interrupted writes in the raw, full and meta buckets,
//     which the store removes only when their writer is clearly gone (ObjectStore::
//     RemoveAbandonedTemporaries; storage may be shared with other processes); and multipart
//     uploads of this run's books that no job checkpoint records (a recorded one is resumed
//     by its job; uploads of books that are not jobs of this run may be another run's).
// During the run a book that reaches `uploaded` has its staging partial removed at once
// (CompleteItem), so a book that is streamed after a staged attempt leaves nothing behind.
#include <filesystem>
#include <string>

#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int64_t SyncPipeline::Impl::AbortAbandonedUploads() {
  if (!opt.job_view) return 0;
  const std::string probe = "BARCODE";
  ObjectLocation loc = RawArchiveLocation(opt.layout, probe);
  const std::string prefix = loc.key.substr(0, loc.key.find(probe));
  auto uploads = objects->ListPendingUploads(loc.bucket, prefix);
  if (!uploads.ok()) {
    log->Log(LogLevel::kWarning, "sync.litter_scan_failed",
             {{"bucket", loc.bucket}, {"error", uploads.status().message()}});
    return 0;
  }
  int64_t aborted = 0;
  for (const auto& u : *uploads) {
    std::string rest = u.key.substr(prefix.size());
    std::string barcode = rest.substr(0, rest.find('/'));
    if (RawArchiveLocation(opt.layout, barcode).key != u.key) continue;  // not a book's raw key
    auto job = opt.job_view(barcode);
    if (!job.ok() || !job->has_value()) continue;  // unknown, or not a book of this run
    const SyncOptions::JobView& v = **job;
    if (!v.dead && v.stage != Stage::kUploaded) {
      auto recorded = RecordedUpload(ParseCheckpoint(v.checkpoint));
      if (recorded && recorded->upload_id == u.upload_id) continue;  // resumed by its job
    }
    Status s = objects->AbortMultipart(loc.bucket, u.key, u.upload_id);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      log->Log(LogLevel::kWarning, "sync.litter_abort_failed",
               {{"key", loc.bucket + "/" + u.key}, {"error", s.message()}});
      continue;
    }
    ++aborted;
    log->Log(LogLevel::kInfo, "sync.litter_removed",
             {{"multipart_upload", loc.bucket + "/" + u.key}});
  }
  return aborted;
}

void SyncPipeline::Impl::RemoveLitter() {
  namespace fs = std::filesystem;
  int64_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opt.staging_dir, ec)) {
    std::error_code fec;
    if (!e.is_regular_file(fec)) continue;
    std::string name = e.path().filename().string();
    bool remove = false;
    if (EndsWith(name, "_ocr.jsonl.gz") || EndsWith(name, "_ocr.jsonl.gz.part")) {
      remove = true;
    } else if (EndsWith(name, ".tar.gz")) {
      remove = true;
    } else if (EndsWith(name, ".tar.gz.gpg") && opt.job_view) {
      std::string barcode = name.substr(0, name.size() - std::string(".tar.gz.gpg").size());
      auto job = opt.job_view(barcode);
      if (!job.ok()) continue;  // unknown: keep it
      remove = !job->has_value() || (*job)->dead || (*job)->stage == Stage::kUploaded;
    }
    if (remove && fs::remove(e.path(), fec)) {
      ++removed;
      log->Log(LogLevel::kInfo, "sync.litter_removed", {{"path", e.path().string()}});
    }
  }
  const std::string probe = "BARCODE";
  for (const ObjectLocation& loc :
       {RawArchiveLocation(opt.layout, probe), FullTextLocation(opt.layout, probe),
        MetaLocation(opt.layout, probe)}) {  // meta: its timestamped/ copies too (recursive)
    std::string prefix = loc.key.substr(0, loc.key.find(probe));
    auto n = objects->RemoveAbandonedTemporaries(loc.bucket, prefix);
    if (!n.ok()) {
      log->Log(LogLevel::kWarning, "sync.litter_scan_failed",
               {{"bucket", loc.bucket}, {"error", n.status().message()}});
      continue;
    }
    if (*n > 0) {
      log->Log(LogLevel::kInfo, "sync.litter_removed",
               {{"bucket", loc.bucket}, {"temporary_objects", std::to_string(*n)}});
    }
    removed += *n;
  }
  removed += AbortAbandonedUploads();
  std::lock_guard<std::mutex> l(mu);
  stats.litter_removed += removed;
}

}  // namespace grin::pipeline
