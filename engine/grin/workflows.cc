#include "engine/grin/workflows.h"

#include <algorithm>
#include <future>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace grin::grin_client {
namespace {

enum class Field { kNone, kTitle, kScanned, kConverted, kDownloaded, kProcessed, kAnalyzed, kOcr,
                   kLink, kState };

// The reference tool's keyword mapping of _all_books labels (docs/grin-protocol.md, List pages), decided once per page.
Field FieldOfKey(const std::string& k) {
  if (k.empty() || k == "barcode") return Field::kNone;
  if (k.find("title") != std::string::npos) return Field::kTitle;
  if (k.find("scanned") != std::string::npos) return Field::kScanned;
  if (k.find("converted") != std::string::npos) return Field::kConverted;
  if (k.find("downloaded") != std::string::npos) return Field::kDownloaded;
  if (k.find("processed") != std::string::npos) return Field::kProcessed;
  if (k.find("analyzed") != std::string::npos) return Field::kAnalyzed;
  if (k.find("ocr") != std::string::npos) return Field::kOcr;
  if (k.find("google") != std::string::npos) return Field::kLink;
  if (k == "state" || k == "status" || k.find("state") != std::string::npos) return Field::kState;
  return Field::kNone;
}

void SetField(CollectedBook* b, Field f, const std::string& v) {
  switch (f) {
    case Field::kTitle: b->title = v; break;
    case Field::kScanned: b->scanned_date = GrinDateToIso(v); break;
    case Field::kConverted: b->converted_date = GrinDateToIso(v); break;
    case Field::kDownloaded: b->downloaded_date = GrinDateToIso(v); break;
    case Field::kProcessed: b->processed_date = GrinDateToIso(v); break;
    case Field::kAnalyzed: b->analyzed_date = GrinDateToIso(v); break;
    case Field::kOcr: b->ocr_date = GrinDateToIso(v); break;
    case Field::kLink:
      if (v.rfind("http", 0) == 0) b->google_books_link = v;
      break;
    case Field::kState: b->grin_state = v; break;
    case Field::kNone: break;
  }
}

}  // namespace

Result<CollectedBook> BookFromRow(const ListRow& row, const std::string& page_url,
                                  const std::string& dir) {
  CollectedBook b;
  b.barcode = row.Barcode(dir);
  if (!PlausibleBarcode(b.barcode)) {
    return Status::DataLoss("malformed GRIN page " + page_url + ": implausible barcode '" +
                            b.barcode.substr(0, 60) + "'");
  }
  if (row.keys) {
    for (size_t i = 0; i < row.keys->size() && i < row.cells.size(); ++i) {
      const Field f = FieldOfKey((*row.keys)[i]);
      // The Google Books column is a link: its URL (http only), not its text ("View").
      const bool link = f == Field::kLink && i < row.hrefs.size() && !row.hrefs[i].empty();
      SetField(&b, f, link ? row.hrefs[i] : row.cells[i]);
    }
  }
  return b;
}

Result<CollectStats> CollectAllBooks(GrinClient& client, BookCatalog& catalog,
                                     const CollectOptions& options) {
  const std::string dir = client.options().directory;
  CollectStats stats;
  std::string start = client.ListUrl("all_books", options.page_size);
  CollectCursor cursor;
  cursor.library_directory = dir;
  cursor.refresh = options.refresh;
  if (options.restart) {
    GRIN_RETURN_IF_ERROR(catalog.ClearCollectCursor(dir));
  } else {
    GRIN_ASSIGN_OR_RETURN(auto saved, catalog.LoadCollectCursor(dir));
    if (saved) {
      start = saved->next_url;
      cursor = *saved;
      cursor.refresh = options.refresh || saved->refresh;
      stats.resumed = true;
    }
  }
  std::vector<CollectedBook> books;
  const auto on_page = [&](const ListPage& page) -> Status {
    books.clear();
    books.reserve(page.rows.size());
    int64_t odd = 0;
    for (const auto& row : page.rows) {
      Result<CollectedBook> b = BookFromRow(row, page.url, dir);
      if (!b.ok()) {
        // One odd row never fails a page: skip it, count it, say which.
        ++odd;
        client.logger()->Log(LogLevel::kWarning, "grin.list.row_skipped",
                             {{"page", page.url}, {"reason", b.status().message()},
                              {"row", row.Text()}});
        continue;
      }
      books.push_back(std::move(b).value());
    }
    if (books.empty() && !page.rows.empty()) {
      return Status::DataLoss("malformed GRIN page " + page.url + ": none of its " +
                              std::to_string(page.rows.size() + page.skipped_rows) +
                              " rows has a plausible barcode");
    }
    stats.skipped_rows += page.skipped_rows + odd;
    cursor.next_url = page.next_url;
    cursor.pages_done += 1;
    cursor.rows_seen += static_cast<int64_t>(page.rows.size());
    GRIN_ASSIGN_OR_RETURN(UpsertCounts c,
                          catalog.ApplyCollectedPage(books, cursor.refresh, cursor));
    stats.counts.inserted += c.inserted;
    stats.counts.updated += c.updated;
    stats.counts.unchanged += c.unchanged;
    stats.pages += 1;
    stats.rows += static_cast<int64_t>(page.rows.size());
    stats.finished = page.next_url.empty();
    if (options.progress) options.progress(stats.pages, stats.rows);
    return Status::Ok();
  };
  Status s = client.ForEachListPage(start, on_page, options.max_pages);
  if (!s.ok() && s.code() == StatusCode::kUnavailable && stats.resumed && stats.pages == 0 &&
      start.find("ctoken=") != std::string::npos) {
    // The saved continuation token has most likely expired. The saved cursor stays until a page
    // of the new pass is written, so a real outage loses no progress.
    const bool refresh = cursor.refresh;
    cursor = CollectCursor{};
    cursor.library_directory = dir;
    cursor.refresh = refresh;
    stats.restarted = true;
    s = client.ForEachListPage(client.ListUrl("all_books", options.page_size), on_page,
                               options.max_pages);
  }
  if (!s.ok()) return s;
  return stats;
}

Result<EnrichStats> EnrichBooks(GrinClient& client, BookCatalog& catalog,
                                const EnrichOptions& options, Logger* logger) {
  if (!logger) logger = NullLogger::Default();
  EnrichStats stats;
  if (options.convert_failures) {
    Result<std::map<std::string, FailedBook>> failed = client.LoadKnownFailures();
    if (!failed.ok()) {
      if (failed.status().code() == StatusCode::kPermissionDenied) return failed.status();
      logger->Log(LogLevel::kWarning, "grin.enrich.failed_list_unread",
                  {{"error", failed.status().message()}});
    } else {
      std::vector<ConvertFailure> rows;
      rows.reserve(failed->size());
      for (const auto& [bc, f] : *failed) rows.push_back({bc, f.date, f.info, f.detail});
      GRIN_ASSIGN_OR_RETURN(stats.convert_failures, catalog.ReplaceConvertFailures(rows));
    }
  }
  std::string after;
  const int concurrency = std::max(1, options.concurrency);
  while (options.limit == 0 || stats.asked < options.limit) {
    int want = options.db_batch;
    if (options.limit > 0) want = static_cast<int>(std::min<int64_t>(want, options.limit - stats.asked));
    BookCatalog::EnrichSelection selection;
    selection.refresh = options.refresh;
    selection.refresh_before = options.refresh_before;
    GRIN_ASSIGN_OR_RETURN(std::vector<BookCatalog::EnrichCandidate> candidates,
                          catalog.EnrichmentCandidates(after, want, selection));
    if (candidates.empty()) break;
    after = candidates.back().barcode;
    std::vector<std::string> pending;
    std::unordered_map<std::string, BookCatalog::EnrichKind> kind;
    pending.reserve(candidates.size());
    for (auto& c : candidates) {
      if (c.kind == BookCatalog::EnrichKind::kRefresh) ++stats.refresh_asked;
      if (c.kind == BookCatalog::EnrichKind::kMissingAgain) ++stats.missing_asked;
      if (c.kind != BookCatalog::EnrichKind::kNew) kind[c.barcode] = c.kind;
      pending.push_back(std::move(c.barcode));
    }
    auto kind_of = [&kind](const std::string& bc) {
      auto it = kind.find(bc);
      return it == kind.end() ? BookCatalog::EnrichKind::kNew : it->second;
    };
    stats.asked += static_cast<int64_t>(pending.size());
    auto groups = client.SplitForSearch(pending);
    Status fatal;
    for (size_t g = 0; g < groups.size(); g += static_cast<size_t>(concurrency)) {
      std::vector<std::future<Result<EnrichmentResult>>> inflight;
      const size_t end = std::min(groups.size(), g + static_cast<size_t>(concurrency));
      for (size_t k = g; k < end; ++k) {
        inflight.push_back(std::async(std::launch::async,
                                      [&client, &groups, k] { return client.BarcodeSearch(groups[k]); }));
      }
      for (size_t k = g; k < end; ++k) {
        Result<EnrichmentResult> r = inflight[k - g].get();
        ++stats.requests;
        if (!r.ok()) {
          ++stats.failed_groups;
          stats.failed_barcodes += static_cast<int64_t>(groups[k].size());
          logger->Log(LogLevel::kWarning, "grin.enrich.batch_failed",
                      {{"barcodes", std::to_string(groups[k].size())},
                       {"error", r.status().message()}});
          GRIN_RETURN_IF_ERROR(catalog.RecordEnrichmentFailure(groups[k], r.status().message()));
          // Auth refusals will not heal by themselves: stop instead of failing every group.
          if (r.status().code() == StatusCode::kPermissionDenied && fatal.ok()) fatal = r.status();
          continue;
        }
        std::vector<EnrichedBook> found;
        found.reserve(r->found.size());
        for (auto& row : r->found) found.push_back(EnrichedBook{row.barcode, std::move(row.columns)});
        GRIN_RETURN_IF_ERROR(catalog.ApplyEnrichment(found, r->missing));
        for (const auto& b : found) {
          const auto bk = kind_of(b.barcode);
          if (bk == BookCatalog::EnrichKind::kRefresh) ++stats.refreshed;
          if (bk == BookCatalog::EnrichKind::kMissingAgain) ++stats.missing_found;
        }
        for (const auto& bc : r->missing) {
          if (kind_of(bc) == BookCatalog::EnrichKind::kMissingAgain) ++stats.still_missing;
        }
        stats.found += static_cast<int64_t>(found.size());
        stats.missing += static_cast<int64_t>(r->missing.size());
        stats.skipped_rows += r->skipped_rows;
      }
      if (!fatal.ok()) return fatal;
    }
  }
  return stats;
}

Result<RequestStats> RequestConversions(GrinClient& client, BookCatalog& catalog,
                                        const RequestOptions& options) {
  RequestStats stats;
  std::unordered_set<std::string> in_process;
  GRIN_RETURN_IF_ERROR(client.ForEachTextLine("in_process", "", [&](const std::string& bc) {
    in_process.insert(bc);
    return Status::Ok();
  }));
  stats.in_process_before = static_cast<int64_t>(in_process.size());
  stats.free_before = std::max<int64_t>(0, kQueueCap - stats.in_process_before);
  stats.free_after = stats.free_before;
  const int64_t want = std::min(options.limit, stats.free_before);
  if (want <= 0) return stats;
  // Ask for extra candidates: some may already be in process.
  GRIN_ASSIGN_OR_RETURN(std::vector<std::string> cands,
                        catalog.ConversionCandidates(
                            static_cast<int>(
                                std::min<int64_t>(want + stats.in_process_before, 1'000'000)),
                            options.retry_refused));
  std::vector<std::string> todo;
  std::vector<ConversionRecord> already;
  for (const auto& bc : cands) {
    if (in_process.count(bc)) {
      already.push_back({bc, "in_process", "listed in _in_process"});
    } else if (static_cast<int64_t>(todo.size()) < want) {
      todo.push_back(bc);
    }
  }
  stats.candidates = static_cast<int64_t>(todo.size());
  if (options.dry_run) return stats;
  if (!already.empty()) GRIN_RETURN_IF_ERROR(catalog.RecordConversionRequests(already));
  for (const auto& batch : client.SplitForProcess(todo, std::max<size_t>(1, options.batch))) {
    GRIN_ASSIGN_OR_RETURN(ProcessResult r, client.Process(batch));
    if (r.queue_full) {
      stats.queue_full = true;
      break;
    }
    std::vector<ConversionRecord> records;
    for (const auto& row : r.rows) {
      const std::string outcome(ProcessOutcomeName(row.outcome));
      records.push_back({row.barcode, outcome, row.status, row.extra});
      ++stats.outcomes[outcome];
      if (row.outcome == ProcessOutcome::kRequested) --stats.free_after;
    }
    for (const auto& bc : r.unanswered) {
      records.push_back({bc, "unanswered", ""});
      ++stats.outcomes["unanswered"];
    }
    GRIN_RETURN_IF_ERROR(catalog.RecordConversionRequests(records));
  }
  if (stats.queue_full) stats.free_after = 0;
  return stats;
}

}  // namespace grin::grin_client
