// Outputs of a stored book in SyncPipeline (see sync.h, sync_impl.h): a book is done only when
// every output it should have is in place — the raw archive, the OCR object (unless skip_ocr)
// and the MARC columns (unless skip_marc). A crash (or a failed OCR upload) between the raw
// upload and the completing transaction leaves the raw archive stored with a matching
// `encrypted_etag` but no OCR object or MARC columns; those are rebuilt here from the stored raw
// archive (the decrypted tar.gz), never by downloading from GRIN again.
#include <unistd.h>

#include <string>
#include <utility>

#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {
namespace {

// Feeds a storage download into a BookProcessor, remembering the processor's own verdict so a
// bad archive is told apart from a failed download.
class ProcessorSink final : public grin::ObjectSink {
 public:
  explicit ProcessorSink(archive::BookProcessor* book) : book_(book) {}
  Status Write(std::string_view data) override {
    status_ = book_->Write(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    return status_;
  }
  const Status& status() const { return status_; }

 private:
  archive::BookProcessor* book_;
  Status status_;
};

// The archive itself is bad (not the storage read): it will not get better by reading again.
bool ArchiveFault(const Status& s) {
  return s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kResourceExhausted;
}

}  // namespace

Result<PutResult> SyncPipeline::Impl::PutOcr(const std::string& barcode,
                                             const archive::Extraction& x,
                                             const std::string& now) {
  auto full = FullTextLocation(opt.layout, barcode);
  PutOptions po;
  po.metadata = FullTextMetadata(barcode, now, x.page_count);
  po.content_type = "application/gzip";
  if (x.ocr_jsonl_gz_path.empty()) {
    MemorySource ocr(x.ocr_jsonl_gz);
    return objects->Put(full.bucket, full.key, ocr, po);
  }
  // Spilled (a book with more OCR text than ocr_memory_bytes compresses to): upload the file.
  struct Remove {
    const std::string& path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{x.ocr_jsonl_gz_path};
  GRIN_ASSIGN_OR_RETURN(auto src, FileSource::Open(x.ocr_jsonl_gz_path));
  return objects->Put(full.bucket, full.key, *src, po);
}

Result<SyncPipeline::Impl::MissingOutputs> SyncPipeline::Impl::FindMissingOutputs(
    const std::string& barcode) {
  MissingOutputs m;
  if (!opt.skip_ocr) {
    auto full = FullTextLocation(opt.layout, barcode);
    if (full_inventory) {
      m.ocr = full_inventory->count(full.key) == 0;
    } else {
      auto head = objects->Head(full.bucket, full.key);
      if (!head.ok() && head.status().code() != StatusCode::kNotFound) return head.status();
      m.ocr = !head.ok();
    }
  }
  if (!opt.skip_marc && opt.marc_recorded) {
    GRIN_ASSIGN_OR_RETURN(bool recorded, opt.marc_recorded(barcode));
    m.marc = !recorded;
  }
  return m;
}

SyncPipeline::Impl::RebuildOutcome SyncPipeline::Impl::RebuildOutputs(
    const WorkItem& w, const MissingOutputs& missing, Completion c) {
  CpuScope account(this, "rebuild");
  auto raw = RawArchiveLocation(opt.layout, w.barcode);
  archive::BookOptions bo = BookOptionsFor(w.barcode, -1, nullptr);
  bo.encrypted = false;  // the stored raw archive is the decrypted tar.gz
  bo.extract = true;
  bo.extract_options.require_ocr = missing.ocr;
  bo.extract_options.require_marc = missing.marc;
  auto unusable = [&](const Status& why) {
    log->Log(LogLevel::kWarning, "book.stored_raw_unusable",
             {{"barcode", w.barcode}, {"key", raw.bucket + "/" + raw.key},
              {"error", why.message()}});
    return RebuildOutcome::kRawUnusable;
  };
  Result<archive::BookResult> result = Status::Internal("not run");
  {
    auto book = archive::BookProcessor::Open(bo, nullptr);
    if (!book.ok()) {
      FailItem(w, stats.check, book.status(), "rebuild_failed", false);
      return RebuildOutcome::kHandled;
    }
    ProcessorSink sink(book->get());
    auto got = objects->Get(raw.bucket, raw.key, sink);
    if (!got.ok()) {
      if (!sink.status().ok()) return unusable(sink.status());
      if (got.status().code() == StatusCode::kNotFound ||
          got.status().code() == StatusCode::kDataLoss) {
        return unusable(got.status());  // gone, or storage says the copy is damaged
      }
      FailItem(w, stats.check, got.status(), "storage_get_failed",
               got.status().code() == StatusCode::kPermissionDenied);
      return RebuildOutcome::kHandled;
    }
    result = (*book)->Finish();
  }
  if (!result.ok()) {
    if (ArchiveFault(result.status())) return unusable(result.status());
    FailItem(w, stats.check, result.status(), "rebuild_failed", false);
    return RebuildOutcome::kHandled;
  }
  const archive::Extraction& x = *result->extraction;
  std::string now = NowIso();
  json rebuilt = json::array();
  int64_t uploaded_bytes = 0;
  if (missing.ocr) {
    auto put = PutOcr(w.barcode, x, now);
    if (!put.ok()) {
      FailItem(w, stats.check, put.status(), "ocr_upload_failed", false);
      return RebuildOutcome::kHandled;
    }
    uploaded_bytes += static_cast<int64_t>(put->size);
    rebuilt.push_back("ocr");
  } else if (!x.ocr_jsonl_gz_path.empty()) {
    ::unlink(x.ocr_jsonl_gz_path.c_str());
  }
  if (missing.marc && x.marc) {
    for (const auto& [column, value] : x.marc->Columns()) {
      c.book_fields.emplace_back(column, value.value_or(""));
    }
    c.book_fields.emplace_back("marc_extraction_timestamp", now);
    rebuilt.push_back("marc");
  }
  json detail = c.detail_json.empty() ? json::object() : json::parse(c.detail_json);
  detail["rebuilt"] = rebuilt;
  detail["pages"] = x.page_count;
  c.to = Stage::kUploaded;
  c.outcome = "rebuilt_outputs";
  c.detail_json = detail.dump();
  {
    std::lock_guard<std::mutex> l(mu);
    stats.bytes_uploaded += uploaded_bytes;
    ++stats.rebuilt;
  }
  log->Log(LogLevel::kInfo, "book.rebuilt_outputs",
           {{"barcode", w.barcode}, {"rebuilt", rebuilt.dump()}});
  CompleteItem(w, std::move(c), stats.check, "completed", "rebuilt_outputs");
  return RebuildOutcome::kHandled;
}

}  // namespace grin::pipeline
