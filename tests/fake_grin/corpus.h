#pragma once
// Corpus: the fake GRIN server's books for one library directory (docs/grin-protocol.md, The fake GRIN server: Corpus).
//
// Static fields of book i (barcode, title, dates, GRIN enrichment fields) are pure functions of
// (seed, directory, i), so a 1M-book corpus costs ~16 bytes of mutable state per book rather
// than a record of strings. The mutable part is the conversion life cycle:
//   available -> in_process (via Process) -> converted | failed (via Tick, after convert_delay,
//   at most convert_per_day per virtual day) ; converted -> available on expiry (converted_ttl)
//   or pool eviction (converted_pool_max, oldest first). Re-conversion bumps the archive version,
//   which changes the ETag.
// Barcodes are "39015" + 9 digits (index + 1), so lookup is arithmetic.
//
// Thread safety: every method may be called from any thread; one mutex guards mutable state.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grin::fake {

enum class ConvertStatus : uint8_t { kAvailable, kInProcess, kConverted, kFailed, kNotAllowed };
inline constexpr int kConvertStatusCount = 5;

struct CorpusOptions {
  uint64_t seed = 1;
  int64_t size = 1000;
  // Initial mix; the rest is available.
  double frac_converted = 0.2;
  double frac_in_process = 0.05;
  double frac_failed = 0.05;
  double frac_not_allowed = 0.05;
  int64_t queue_max = 50'000;
  int64_t converted_pool_max = 0;   // 0 = unlimited
  int64_t convert_delay_s = 3600;   // in_process -> converted after this much virtual time
  int64_t convert_per_day = 0;      // 0 = unlimited
  double fail_fraction = 0.0;       // of conversions that end in failed
  int64_t converted_ttl_s = 0;      // 0 = converted archives never expire
  int pages_min = 2;                // archive pages per book, uniform in [min, max]
  int pages_max = 5;
};

// Everything the server publishes about one book.
struct BookRecord {
  int64_t index = 0;
  std::string barcode;
  std::string title;
  std::string google_books_link;
  std::string state;        // GRIN State vocabulary
  std::string viewability;
  std::string digitization_method;
  std::string conditions, scannable, opted_out, tagging, audit, material_error, overall_error;
  std::string bibkey, rubbish, claimed, ocr_gtd, ocr_analysis;
  // Unix seconds; 0 = none.
  int64_t check_in = 0, scanned = 0, processed = 0, analyzed = 0, converted = 0, downloaded = 0,
          ocr = 0, allow_download_updated = 0, viewability_updated = 0;
  ConvertStatus status = ConvertStatus::kAvailable;
  uint32_t version = 0;     // archive version (0 = never converted)
  int64_t status_at = 0;    // virtual time of the last status change
  int pages = 0;
  std::string failed_info, failed_detail;  // when status == kFailed
};

// One _process answer row.
struct ProcessRow {
  std::string barcode;
  std::string status;  // "Success", "Already being converted", ...
};

class Corpus {
 public:
  Corpus(std::string dir, CorpusOptions options, int64_t now_s);

  const std::string& dir() const { return dir_; }
  int64_t size() const { return options_.size; }

  static std::string BarcodeAt(int64_t index);
  // The index of a barcode of this corpus, or nullopt.
  std::optional<int64_t> IndexOf(std::string_view barcode) const;

  BookRecord Get(int64_t index) const;

  // Indices of books with status s, in index order, from position `first`, at most `count`
  // (count < 0 = all). *total receives the list length.
  std::vector<int64_t> List(ConvertStatus s, int64_t first, int64_t count, int64_t* total);
  int64_t Count(ConvertStatus s);

  // Requests conversion. Returns false (and changes nothing) if accepting the batch would push
  // the in-process count above queue_max; otherwise one row per barcode in request order.
  bool Process(const std::vector<std::string>& barcodes, int64_t now_s,
               std::vector<ProcessRow>* rows);

  // Runs due transitions up to now_s (conversions, failures, expiry, eviction).
  void Tick(int64_t now_s);

  // Admin: converts book `index` now (a new version, hence a new ETag). False if unknown.
  bool Reconvert(int64_t index, int64_t now_s);
  // Admin: sets a status directly.
  bool SetStatus(int64_t index, ConvertStatus s, int64_t now_s);

  // Admin: what _barcode_search says of book `index` from now on (issue 16 item 9: enrichment goes
  // stale). A non-empty state or viewability replaces the generated one (in every reply that
  // shows it); unknown = true makes _barcode_search leave the book out, as GRIN does for a
  // barcode it does not know (false brings it back). False if the index is unknown.
  bool SetSearchOverride(int64_t index, const std::string& state, const std::string& viewability);
  bool SetUnknownToSearch(int64_t index, bool unknown);
  bool UnknownToSearch(int64_t index) const;

  // Seconds since the epoch of a deterministic pseudo-random value; exposed for the archive
  // builder, which needs the same per-book randomness.
  uint64_t Hash(int64_t index, uint64_t salt) const;

 private:
  struct Dyn {
    ConvertStatus status;
    uint32_t version;
    int64_t status_at;
  };
  void RebuildListsLocked();
  void SetLocked(int64_t index, ConvertStatus s, int64_t now_s);

  const std::string dir_;
  const CorpusOptions options_;
  const uint64_t dir_salt_;

  mutable std::mutex mu_;
  std::vector<Dyn> dyn_;
  struct Override {
    std::string state, viewability;
    bool unknown = false;
  };
  std::map<int64_t, Override> overrides_;
  std::vector<uint32_t> lists_[kConvertStatusCount];
  int64_t counts_[kConvertStatusCount] = {0, 0, 0, 0, 0};
  bool lists_dirty_ = true;
  int64_t last_tick_s_ = 0;
  int64_t budget_day_ = -1;
  int64_t converted_today_ = 0;
};

// "YYYY/MM/DD HH:MM" (UTC) or "" for 0.
std::string FormatGrinDate(int64_t unix_s);

}  // namespace grin::fake
