// What interrupted earlier runs left behind, removed at the start of a run (see sync_impl.h):
//   - staging: `<BARCODE>.tar.gz.gpg` partial downloads no job will resume (the book is stored,
//     dead, or not a job of this run), `<BARCODE>.tar.gz` decrypted copies (always rewritten
//     from the .gpg by the process stage) and `<BARCODE>_ocr.jsonl.gz[.part]` OCR spill files
//     (always rebuilt). The staging directory belongs to the run, which one process holds at a
//     time (the run lock), so nothing in it is in use at the start.
//   - storage: temporary objects of interrupted writes in the raw and full buckets, which the
//     store removes only when their writer is clearly gone (ObjectStore::
//     RemoveAbandonedTemporaries; storage may be shared with other processes).
// During the run a book that reaches `uploaded` has its staging partial removed at once
// (CompleteItem), so a book that is streamed after a staged attempt leaves nothing behind.
#include <filesystem>
#include <string>

#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

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
       {RawArchiveLocation(opt.layout, probe), FullTextLocation(opt.layout, probe)}) {
    auto n = objects->RemoveAbandonedTemporaries(loc.bucket, loc.key.substr(0, loc.key.find(probe)));
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
  std::lock_guard<std::mutex> l(mu);
  stats.litter_removed += removed;
}

}  // namespace grin::pipeline
