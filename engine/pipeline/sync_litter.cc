// What interrupted earlier runs left behind, removed at the start of a run (see sync_impl.h):
//   - staging: `<BARCODE>.tar.gz.gpg` partial downloads no job will resume (the book is stored,
//     dead, or not a job of this run), `<BARCODE>.tar.gz` decrypted copies (always rewritten
//     from the .gpg by the process stage) and `<BARCODE>_ocr.jsonl.gz[.part]` OCR spill files
//     (always rebuilt). The staging directory belongs to the run, which one process holds at a
//     time (the run lock), so nothing in it is in use at the start.
//   - storage (storage_litter.h, shared with verify): temporary objects of interrupted writes
//     in the raw, full and meta buckets, which the store removes only when their writer is
//     clearly gone; and multipart uploads of this run's books that no job checkpoint records
//     (a recorded one is resumed by its job; uploads of books that are not jobs of this run
//     may be another run's).
// During the run a book that reaches `uploaded` has its staging partial removed at once
// (CompleteItem), so a book that is streamed after a staged attempt leaves nothing behind.
#include <filesystem>
#include <string>

#include "engine/pipeline/storage_litter.h"
#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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
  // Storage (shared with verify): temporary objects and abandoned multipart uploads.
  removed += SweepStorageLitter(*objects, opt.layout, opt.job_view, *log, "sync").removed();
  std::lock_guard<std::mutex> l(mu);
  stats.litter_removed += removed;
}

}  // namespace grin::pipeline
