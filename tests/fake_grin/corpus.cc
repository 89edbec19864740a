#include "tests/fake_grin/corpus.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace grin::fake {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashString(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

double Unit(uint64_t h) { return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0); }

// Titles mix ASCII, non-ASCII and characters HTML must escape, so parsers meet all three.
constexpr const char* kWords[] = {
    "History", "of", "the", "Natural", "Philosophy", "Essays", "Treatise", "Letters",
    "Poems", "Voyage", "Grammar", "Antiquities", "Sermons", "Memoirs", "Études", "Über",
    "Łódź", "Smith & Sons", "<Revised>", "\"Collected\"", "Journal", "Annals", "Society",
    "Proceedings", "Survey", "Flora", "Chronicle", "Dictionary", "Atlas", "Reports"};
constexpr int kWordCount = sizeof(kWords) / sizeof(kWords[0]);

constexpr const char* kViewability[] = {"VIEW_FULL", "VIEW_METADATA", "VIEW_NONE",
                                        "VIEW_SNIPPET"};
constexpr const char* kMethods[] = {"NON_DESTRUCTIVE", "SHEETFED", "DIGIFEED"};

}  // namespace

std::string FormatGrinDate(int64_t unix_s) {
  if (unix_s <= 0) return "";
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y/%m/%d %H:%M", &tm);
  return buf;
}

Corpus::Corpus(std::string dir, CorpusOptions options, int64_t now_s)
    : dir_(std::move(dir)),
      options_(options),
      dir_salt_(SplitMix(options.seed ^ HashString(dir_))),
      dyn_(static_cast<size_t>(std::max<int64_t>(options.size, 0))) {
  for (int64_t i = 0; i < options_.size; ++i) {
    double u = Unit(Hash(i, 1));
    ConvertStatus s = ConvertStatus::kAvailable;
    double c = options_.frac_converted;
    if (u < c) {
      s = ConvertStatus::kConverted;
    } else if (u < (c += options_.frac_in_process)) {
      s = ConvertStatus::kInProcess;
    } else if (u < (c += options_.frac_failed)) {
      s = ConvertStatus::kFailed;
    } else if (u < (c += options_.frac_not_allowed)) {
      s = ConvertStatus::kNotAllowed;
    }
    int64_t at = now_s - static_cast<int64_t>(Hash(i, 2) % (30 * 86400));
    // A book starts in process "just now" so conversions happen convert_delay after start-up.
    if (s == ConvertStatus::kInProcess) at = now_s;
    dyn_[static_cast<size_t>(i)] = Dyn{s, s == ConvertStatus::kConverted ? 1u : 0u, at};
  }
  last_tick_s_ = now_s;
}

uint64_t Corpus::Hash(int64_t index, uint64_t salt) const {
  return SplitMix(dir_salt_ ^ SplitMix(static_cast<uint64_t>(index) * 0x100000001b3ULL + salt));
}

std::string Corpus::BarcodeAt(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "39015%09lld", static_cast<long long>(index + 1));
  return buf;
}

std::optional<int64_t> Corpus::IndexOf(std::string_view barcode) const {
  if (barcode.size() != 14 || barcode.substr(0, 5) != "39015") return std::nullopt;
  int64_t n = 0;
  for (char c : barcode.substr(5)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 1 || n > options_.size) return std::nullopt;
  return n - 1;
}

BookRecord Corpus::Get(int64_t i) const {
  BookRecord b;
  b.index = i;
  b.barcode = BarcodeAt(i);
  int words = 2 + static_cast<int>(Hash(i, 10) % 5);
  for (int w = 0; w < words; ++w) {
    if (w) b.title += ' ';
    b.title += kWords[Hash(i, 11 + static_cast<uint64_t>(w)) % kWordCount];
  }
  b.google_books_link = "http://books.google.com/books?id=" + std::to_string(Hash(i, 3) % 100000000);
  const int64_t base = 1'199'145'600;  // 2008-01-01
  b.scanned = base + static_cast<int64_t>(Hash(i, 4) % (12LL * 365 * 86400)) / 60 * 60;
  b.check_in = b.scanned - 86400 * static_cast<int64_t>(1 + Hash(i, 5) % 60);
  b.processed = b.scanned + 3600 * static_cast<int64_t>(1 + Hash(i, 6) % 48);
  b.analyzed = b.processed + 3600 * static_cast<int64_t>(1 + Hash(i, 7) % 48);
  b.ocr = b.analyzed + 3600;
  b.viewability = kViewability[Hash(i, 8) % 4];
  b.digitization_method = kMethods[Hash(i, 9) % 3];
  b.conditions = std::to_string(Hash(i, 20) % 40);
  b.scannable = Hash(i, 21) % 2 ? "true" : "false";
  b.opted_out = Hash(i, 22) % 50 == 0 ? "true" : "false";
  b.tagging = Hash(i, 23) % 2 ? "true" : "false";
  b.audit = Hash(i, 24) % 10 == 0 ? "missing pages" : "";
  b.material_error = std::to_string(Hash(i, 25) % 5) + "%";
  b.overall_error = std::to_string(Hash(i, 26) % 9) + "%";
  b.bibkey = Hash(i, 27) % 3 == 0 ? "" : "b" + std::to_string(Hash(i, 28) % 10000000);
  b.rubbish = "false";
  b.claimed = Hash(i, 29) % 4 == 0 ? "true" : "false";
  b.ocr_gtd = std::to_string(Hash(i, 30) % 101);
  b.ocr_analysis = std::to_string(Hash(i, 31) % 101);
  b.pages = options_.pages_min +
            static_cast<int>(Hash(i, 32) % static_cast<uint64_t>(
                                               std::max(1, options_.pages_max - options_.pages_min + 1)));
  {
    std::lock_guard<std::mutex> l(mu_);
    const Dyn& d = dyn_[static_cast<size_t>(i)];
    b.status = d.status;
    b.version = d.version;
    b.status_at = d.status_at;
  }
  switch (b.status) {
    case ConvertStatus::kConverted:
      b.state = "CONVERTED";
      b.converted = b.status_at;
      break;
    case ConvertStatus::kNotAllowed:
      b.state = "NOT_AVAILABLE_FOR_DOWNLOAD";
      break;
    case ConvertStatus::kInProcess:
    case ConvertStatus::kFailed:
    case ConvertStatus::kAvailable:
      b.state = Hash(i, 33) % 3 == 0 ? "CHECKED_IN" : "PREVIOUSLY_DOWNLOADED";
      if (b.state == "PREVIOUSLY_DOWNLOADED") b.downloaded = b.ocr + 86400 * 30;
      break;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = overrides_.find(i); it != overrides_.end()) {
      if (!it->second.state.empty()) b.state = it->second.state;
      if (!it->second.viewability.empty()) b.viewability = it->second.viewability;
    }
  }
  if (b.status == ConvertStatus::kFailed) {
    b.failed_info = "Conversion failed";
    b.failed_detail = "Missing page images " + std::to_string(1 + Hash(i, 34) % 200);
  }
  return b;
}

bool Corpus::SetSearchOverride(int64_t index, const std::string& state,
                               const std::string& viewability) {
  if (index < 0 || index >= options_.size) return false;
  std::lock_guard<std::mutex> l(mu_);
  Override& o = overrides_[index];
  o.state = state;
  o.viewability = viewability;
  return true;
}

bool Corpus::SetUnknownToSearch(int64_t index, bool unknown) {
  if (index < 0 || index >= options_.size) return false;
  std::lock_guard<std::mutex> l(mu_);
  overrides_[index].unknown = unknown;
  return true;
}

bool Corpus::UnknownToSearch(int64_t index) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = overrides_.find(index);
  return it != overrides_.end() && it->second.unknown;
}

void Corpus::RebuildListsLocked() {
  for (auto& l : lists_) l.clear();
  for (auto& c : counts_) c = 0;
  for (size_t i = 0; i < dyn_.size(); ++i) {
    int s = static_cast<int>(dyn_[i].status);
    lists_[s].push_back(static_cast<uint32_t>(i));
    ++counts_[s];
  }
  lists_dirty_ = false;
}

std::vector<int64_t> Corpus::List(ConvertStatus s, int64_t first, int64_t count, int64_t* total) {
  std::lock_guard<std::mutex> l(mu_);
  if (lists_dirty_) RebuildListsLocked();
  const auto& list = lists_[static_cast<int>(s)];
  if (total) *total = static_cast<int64_t>(list.size());
  std::vector<int64_t> out;
  if (first < 0) first = 0;
  int64_t end = count < 0 ? static_cast<int64_t>(list.size())
                          : std::min<int64_t>(static_cast<int64_t>(list.size()), first + count);
  for (int64_t k = first; k < end; ++k) out.push_back(list[static_cast<size_t>(k)]);
  return out;
}

int64_t Corpus::Count(ConvertStatus s) {
  std::lock_guard<std::mutex> l(mu_);
  if (lists_dirty_) RebuildListsLocked();
  return counts_[static_cast<int>(s)];
}

void Corpus::SetLocked(int64_t index, ConvertStatus s, int64_t now_s) {
  Dyn& d = dyn_[static_cast<size_t>(index)];
  if (s == ConvertStatus::kConverted) ++d.version;
  d.status = s;
  d.status_at = now_s;
  lists_dirty_ = true;
}

bool Corpus::Process(const std::vector<std::string>& barcodes, int64_t now_s,
                     std::vector<ProcessRow>* rows) {
  std::lock_guard<std::mutex> l(mu_);
  if (lists_dirty_) RebuildListsLocked();
  int64_t in_process = counts_[static_cast<int>(ConvertStatus::kInProcess)];
  int64_t would_add = 0;
  std::vector<std::optional<int64_t>> idx;
  idx.reserve(barcodes.size());
  for (const auto& bc : barcodes) {
    idx.push_back(IndexOf(bc));
    if (idx.back()) {
      ConvertStatus s = dyn_[static_cast<size_t>(*idx.back())].status;
      would_add += (s == ConvertStatus::kAvailable || s == ConvertStatus::kFailed);
    }
  }
  if (in_process + would_add > options_.queue_max) return false;
  rows->clear();
  for (size_t k = 0; k < barcodes.size(); ++k) {
    ProcessRow row{barcodes[k], "Other error"};
    if (idx[k]) {
      Dyn& d = dyn_[static_cast<size_t>(*idx[k])];
      switch (d.status) {
        case ConvertStatus::kAvailable:
        case ConvertStatus::kFailed:
          d.status = ConvertStatus::kInProcess;
          d.status_at = now_s;
          lists_dirty_ = true;
          row.status = "Success";
          break;
        case ConvertStatus::kInProcess:
          row.status = "Already being converted";
          break;
        case ConvertStatus::kConverted:
          row.status = "Already available for download";
          break;
        case ConvertStatus::kNotAllowed:
          row.status = "Not allowed to be downloaded";
          break;
      }
    }
    rows->push_back(std::move(row));
  }
  return true;
}

void Corpus::Tick(int64_t now_s) {
  std::lock_guard<std::mutex> l(mu_);
  if (now_s <= last_tick_s_) return;
  last_tick_s_ = now_s;
  if (lists_dirty_) RebuildListsLocked();
  const int64_t day = now_s / 86400;
  if (day != budget_day_) {
    budget_day_ = day;
    converted_today_ = 0;
  }
  bool changed = false;
  for (uint32_t i : lists_[static_cast<int>(ConvertStatus::kInProcess)]) {
    Dyn& d = dyn_[i];
    if (d.status_at + options_.convert_delay_s > now_s) continue;
    if (options_.convert_per_day > 0 && converted_today_ >= options_.convert_per_day) break;
    ++converted_today_;
    bool fail = Unit(Hash(i, 100 + d.version)) < options_.fail_fraction;
    if (fail) {
      d.status = ConvertStatus::kFailed;
    } else {
      d.status = ConvertStatus::kConverted;
      ++d.version;
    }
    d.status_at = now_s;
    changed = true;
  }
  if (options_.converted_ttl_s > 0) {
    for (uint32_t i : lists_[static_cast<int>(ConvertStatus::kConverted)]) {
      Dyn& d = dyn_[i];
      if (d.status == ConvertStatus::kConverted && d.status_at + options_.converted_ttl_s <= now_s) {
        d.status = ConvertStatus::kAvailable;
        d.status_at = now_s;
        changed = true;
      }
    }
  }
  if (changed) RebuildListsLocked();
  if (options_.converted_pool_max > 0 &&
      counts_[static_cast<int>(ConvertStatus::kConverted)] > options_.converted_pool_max) {
    std::vector<uint32_t> conv = lists_[static_cast<int>(ConvertStatus::kConverted)];
    std::sort(conv.begin(), conv.end(), [&](uint32_t a, uint32_t b) {
      return dyn_[a].status_at != dyn_[b].status_at ? dyn_[a].status_at < dyn_[b].status_at
                                                    : a < b;
    });
    size_t excess = conv.size() - static_cast<size_t>(options_.converted_pool_max);
    for (size_t k = 0; k < excess; ++k) {
      dyn_[conv[k]].status = ConvertStatus::kAvailable;
      dyn_[conv[k]].status_at = now_s;
    }
    RebuildListsLocked();
  }
}

bool Corpus::Reconvert(int64_t index, int64_t now_s) {
  if (index < 0 || index >= options_.size) return false;
  std::lock_guard<std::mutex> l(mu_);
  SetLocked(index, ConvertStatus::kConverted, now_s);
  return true;
}

bool Corpus::SetStatus(int64_t index, ConvertStatus s, int64_t now_s) {
  if (index < 0 || index >= options_.size) return false;
  std::lock_guard<std::mutex> l(mu_);
  SetLocked(index, s, now_s);
  return true;
}

}  // namespace grin::fake
