// The check stage of SyncPipeline (see sync.h, sync_impl.h).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>

#include "engine/pipeline/sync_impl.h"

namespace grin::pipeline {

std::optional<std::unordered_set<std::string>> SyncPipeline::Impl::ListKeys(
    const ObjectLocation& probe_loc, const std::string& probe) {
  std::string prefix = probe_loc.key.substr(0, probe_loc.key.find(probe));
  std::unordered_set<std::string> keys;
  std::string token;
  do {
    auto page = objects->List(probe_loc.bucket, prefix, token);
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kNotFound) break;  // no bucket: nothing stored
      log->Log(LogLevel::kWarning, "sync.inventory_failed",
               {{"bucket", probe_loc.bucket}, {"error", page.status().message()}});
      return std::nullopt;
    }
    for (auto& o : page->objects) keys.insert(std::move(o.key));
    token = std::move(page->next_token);
  } while (!token.empty() && !Stopping());
  return keys;
}

void SyncPipeline::Impl::LoadInventory() {
  const std::string probe = "BARCODE";
  inventory = ListKeys(RawArchiveLocation(opt.layout, probe), probe);
  // The OCR objects too, to tell a stored book whose OCR is missing (sync_rebuild.cc).
  if (inventory && !opt.skip_ocr) {
    full_inventory = ListKeys(FullTextLocation(opt.layout, probe), probe);
  }
}

Result<ObjectInfo> SyncPipeline::Impl::StoredRaw(const ObjectLocation& raw) {
  if (inventory && inventory->count(raw.key) == 0) {
    return Status::NotFound(raw.key + " not in storage at the start of the run");
  }
  return objects->Head(raw.bucket, raw.key);
}

std::optional<SyncPipeline::Impl::StreamNow> SyncPipeline::Impl::Check(const WorkItem& w) {
  auto raw = RawArchiveLocation(opt.layout, w.barcode);
  auto head = grin->HeadArchive(w.barcode);
  if (!head.ok()) {
    const Status& s = head.status();
    if (s.code() != StatusCode::kNotFound) {  // auth, TLS trust...: FailItem holds the book
      FailItem(w, stats.check, s, "check_failed", false);
      return std::nullopt;
    }
    // Not converted (or evicted). Stored already? Then the storage copy is the truth.
    auto stored = StoredRaw(raw);
    if (stored.ok()) {
      Completion c;
      c.to = Stage::kUploaded;
      c.outcome = "reconciled_from_storage";
      c.book_fields = {{"storage_path", raw.bucket + "/" + raw.key},
                       {"last_etag_check", NowIso()}};
      auto missing = FindMissingOutputs(w.barcode);
      if (!missing.ok()) {
        FailItem(w, stats.check, missing.status(), "outputs_check_failed", false);
        return std::nullopt;
      }
      if (missing->any()) {
        if (RebuildOutputs(w, *missing, std::move(c)) == RebuildOutcome::kRawUnusable) {
          FailItem(w, stats.check,
                   Status::DataLoss("the stored " + raw.bucket + "/" + raw.key +
                                    " is not a readable book and GRIN no longer has it"),
                   "stored_archive_unusable", true);
        }
        return std::nullopt;
      }
      CompleteItem(w, c, stats.check, "skipped", "found_in_storage_not_grin");
      return std::nullopt;
    }
    auto known = opt.known_failures.find(w.barcode);
    if (known != opt.known_failures.end() && !opt.force) {
      json d = {{"grin_convert_failed_date", known->second.date},
                {"grin_convert_failed_info", known->second.info},
                {"grin_detailed_convert_failed_info", known->second.detail}};
      (void)store->Fail(w, ErrorClass::kPermanent, "known_conversion_failure", d.dump());
      Tally(stats.check, "failed", "known_conversion_failure");
      {
        std::lock_guard<std::mutex> l(mu);
        ++stats.dead;
      }
      Finished(false);
      return std::nullopt;
    }
    RequestConversion(w);
    return std::nullopt;
  }
  // Converted. Compare with what storage holds.
  last_archive_size = head->size;
  auto stored = StoredRaw(raw);
  if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) {
    FailItem(w, stats.check, stored.status(), "storage_head_failed", false);
    return std::nullopt;
  }
  if (stored.ok() && !opt.force) {
    // FindMetadata also matches "encrypted-etag" (Swift's s3api returns that spelling for
    // objects that were uploaded in parts).
    const std::string* stored_etag = FindMetadata(stored->metadata, "encrypted_etag");
    auto missing = stored_etag != nullptr && *stored_etag == head->etag
                       ? FindMissingOutputs(w.barcode)
                       : Result<MissingOutputs>(MissingOutputs{});
    if (!missing.ok()) {
      FailItem(w, stats.check, missing.status(), "outputs_check_failed", false);
      return std::nullopt;
    }
    if (stored_etag != nullptr && *stored_etag == head->etag && missing->any()) {
      Completion c;
      c.detail_json = json{{"etag", head->etag}}.dump();
      c.book_fields = {{"last_etag_check", NowIso()},
                       {"encrypted_etag", head->etag},
                       {"storage_path", raw.bucket + "/" + raw.key},
                       {"is_decrypted", "1"}};
      if (RebuildOutputs(w, *missing, std::move(c)) == RebuildOutcome::kHandled) {
        return std::nullopt;
      }
      // The stored copy is not a readable book: download it from GRIN again, as if not stored.
    } else if (stored_etag != nullptr && *stored_etag == head->etag) {
      Completion c;
      c.to = Stage::kUploaded;
      c.outcome = "skipped_etag_match";
      c.detail_json = json{{"etag", head->etag}}.dump();
      c.book_fields = {{"last_etag_check", NowIso()},
                       {"encrypted_etag", head->etag},
                       {"storage_path", raw.bucket + "/" + raw.key},
                       {"is_decrypted", "1"}};
      {
        std::lock_guard<std::mutex> l(mu);
        ++stats.skipped_etag;
      }
      CompleteItem(w, c, stats.check, "skipped", "etag_match");
      return std::nullopt;
    }
  }
  CheckedArchive checked{head->etag, head->size};
  if (Slot download = StreamRightAway(head->size)) {
    Tally(stats.check, "completed", "");
    return StreamNow{std::move(checked), std::move(download)};
  }
  CompleteChecked(w, checked);
  return std::nullopt;
}

// --- conversion: GRIN has no archive for the book (issue 16 items 11, 12) ---

void SyncPipeline::Impl::RequestConversion(const WorkItem& w) {
  std::unique_lock<std::mutex> l(convert_mu);
  if (conversion_stopped) {
    l.unlock();
    AwaitConversion(w, "conversion_not_requested", json::object());
    return;
  }
  auto p = grin->Process({w.barcode});
  if (p.ok() && p->queue_full) {
    conversion_stopped = true;
    l.unlock();
    log->Log(LogLevel::kWarning, "sync.conversion_requests_stopped",
             {{"barcode", w.barcode},
              {"why", "GRIN's conversion queue is full (429); unconverted books wait for the "
                      "next run"}});
    {
      std::lock_guard<std::mutex> g(mu);
      stats.conversion_requests_stopped = true;
    }
    AwaitConversion(w, "conversion_queue_full", json::object());
    return;
  }
  l.unlock();
  if (!p.ok()) {
    FailItem(w, stats.check, p.status(), "conversion_request_failed", false);
    return;
  }
  if (p->rows.empty()) {
    AwaitConversion(w, "conversion_unanswered", json::object());
    return;
  }
  const auto& row = p->rows[0];
  const std::string reason =
      "conversion_" + std::string(grin_client::ProcessOutcomeName(row.outcome));
  json d = {{"grin_status", row.status}};
  using grin_client::ProcessOutcome;
  if (row.outcome == ProcessOutcome::kNotAllowed || row.outcome == ProcessOutcome::kOther) {
    // GRIN will not convert it: dead, skipped by rule (not allowed) or failed (unknown).
    Status s = store->Fail(w, ErrorClass::kPermanent, reason, d.dump());
    if (!s.ok() && s.code() != StatusCode::kConflict) StateStoreFailed(s);
    Tally(stats.check, "skipped", reason);
    if (s.ok()) {
      std::lock_guard<std::mutex> g(mu);
      ++stats.dead;
    }
    Finished(false);
    return;
  }
  if (row.outcome == ProcessOutcome::kRequested) {
    std::lock_guard<std::mutex> g(mu);
    ++stats.conversion_requested;
  }
  AwaitConversion(w, reason, d);
}

void SyncPipeline::Impl::AwaitConversion(const WorkItem& w, const std::string& reason,
                                         const json& detail) {
  Status s = store->Await(w, reason, detail.empty() ? "" : detail.dump());
  if (!s.ok() && s.code() != StatusCode::kConflict) {
    StateStoreFailed(s);
    return;
  }
  if (!s.ok()) return;  // lease lost: someone else owns the book now
  Tally(stats.check, "skipped", reason);
  log->Log(LogLevel::kInfo, "book.awaiting_conversion",
           {{"barcode", w.barcode}, {"reason", reason}});
  {
    std::lock_guard<std::mutex> g(mu);
    ++stats.awaiting_conversion;
  }
  Finished(false);
}

void SyncPipeline::Impl::CompleteChecked(const WorkItem& w, const CheckedArchive& archive) {
  Completion c;
  c.to = Stage::kChecked;
  c.carry = EncodeCheckpoint(JobCheckpoint{archive, std::nullopt});
  c.detail_json = c.carry;  // the event's detail: the same {etag, size}
  c.book_fields = {{"last_etag_check", NowIso()}};
  CompleteItem(w, c, stats.check, "completed", "");
}

SyncPipeline::Impl::Slot SyncPipeline::Impl::StreamRightAway(int64_t size) {
  return Streamable(size) ? TakeSlot(kDownload) : Slot();
}

bool SyncPipeline::Impl::GetWithoutHead(const WorkItem& w) const {
  if (!inventory || inventory->count(RawArchiveLocation(opt.layout, w.barcode).key) != 0) {
    return false;
  }
  return true;
}

SyncPipeline::Impl::Slot SyncPipeline::Impl::WaitForDownloadSlot() {
  for (;;) {
    if (Slot s = TakeSlot(kDownload)) return s;
    if (Stopping()) return Slot();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void SyncPipeline::Impl::CheckBook(const WorkItem& w, Slot& slot) {
  StreamMemory mem;
  Slot download;
  if (GetWithoutHead(w)) {
    // A new book: its GET answers "converted?", "which ETag?" and "how large?" at once, so the
    // check waits for a download slot rather than spend a second GRIN request on a HEAD (GRIN's
    // request rate bounds a real run). Where the bytes go (memory or staging) is decided from
    // the GET's response head (StreamBook), without waiting for memory.
    download = WaitForDownloadSlot();
    if (!download) {
      (void)store->Release(w);  // stopping: the next run picks it up
      return;
    }
    if (StagingFull()) {
      // Staging is full, so the GET's bytes can only go to memory: memory for a book like the
      // last one is taken first, without waiting (StreamBook adjusts it to the response's
      // Content-Length). None free: the HEAD path, which waits for memory without a slot.
      const int64_t last = last_archive_size.load();
      const uint64_t reserve = StreamReserve(last);
      if (Streamable(last) && budget->Acquire(reserve, [] { return true; })) {
        mem.reserved = reserve;
      } else {
        download.Release();
      }
    }
  }
  if (download) {
    slot = std::move(download);  // the check's slot is given back
    // The job's own checkpoint: an upload an interrupted run recorded at `pending` resumes, and
    // a partial file an earlier staged GET left is continued (Range + If-Range on its ETag).
    const JobCheckpoint cp = DecodeCheckpoint(w.checkpoint);
    std::error_code ec;
    const auto partial = std::filesystem::file_size(GpgPath(w.barcode), ec);
    if (!ec && partial > 0 && !cp.archive.etag.empty() && cp.archive.size > 0) {
      FreeStreamMemory(&mem);
      Tally(stats.check, "completed", "");
      Download(w, cp, slot);
      return;
    }
    grin_client::ArchiveHead head;
    StreamOutcome r = StreamBook(w, cp, slot, &mem, &head);
    FreeStreamMemory(&mem);
    if (r == StreamOutcome::kHandled) return;
    if (r == StreamOutcome::kDeferred) {
      CompleteChecked(w, CheckedArchive{head.etag, head.size});
      return;
    }
    // GRIN did not send an archive (not converted, auth, an error): the HEAD path decides.
    slot.MoveTo(kCheck);
  }
  std::optional<StreamNow> now;
  {
    CpuScope account(this, "check");
    now = Check(w);
  }
  if (now) {  // Check took a download slot for us: stream it under the same claim
    slot = std::move(now->download);  // the check's slot is given back
    DownloadOrStream(w, JobCheckpoint{std::move(now->archive), std::nullopt}, slot);
  }
}

}  // namespace grin::pipeline
