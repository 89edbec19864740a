#include "engine/state_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/books_columns.h"

namespace grin {

std::string_view StageName(Stage s) {
  switch (s) {
    case Stage::kPending: return "pending";
    case Stage::kChecked: return "checked";
    case Stage::kDownloaded: return "downloaded";
    case Stage::kUploaded: return "uploaded";
  }
  return "pending";
}

bool ParseStage(std::string_view name, Stage* out) {
  for (int i = 0; i < kStageCount; ++i) {
    if (StageName(static_cast<Stage>(i)) == name) {
      *out = static_cast<Stage>(i);
      return true;
    }
  }
  return false;
}

std::string_view ErrorClassName(ErrorClass c) {
  return c == ErrorClass::kRetryable ? "retryable" : "permanent";
}

Status StateStore::Complete(const WorkItem& item, Stage to, std::string outcome,
                            std::string detail_json) {
  std::vector<Completion> one;
  one.push_back(Completion{item, to, std::move(outcome), std::move(detail_json), {}, ""});
  auto r = CompleteMany(std::move(one));
  if (!r.ok()) return r.status();
  return r.value().front();
}

Status StateStore::SetScope(const std::vector<std::string>& barcodes) {
  if (barcodes.empty()) return Status::Ok();
  return Status::FailedPrecondition("this state store cannot restrict a run to named books");
}

Result<bool> StateStore::WaitForWork(const std::vector<Stage>& stages, int64_t timeout_micros,
                                     const std::function<bool()>& cancelled) {
  (void)stages;
  auto until = std::chrono::steady_clock::now() +
               std::chrono::microseconds(std::clamp<int64_t>(timeout_micros, 0, 200'000));
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled && cancelled()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        until - std::chrono::steady_clock::now(), std::chrono::milliseconds(20)));
  }
  return true;
}

int64_t BackoffMicros(int attempt, int64_t base_micros, int64_t max_micros, double unit_random) {
  if (attempt < 1) attempt = 1;
  double cap = static_cast<double>(base_micros) * std::pow(2.0, std::min(attempt - 1, 60));
  cap = std::min(cap, static_cast<double>(max_micros));
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  return static_cast<int64_t>(cap * unit_random);
}

bool IsWritableBookColumn(std::string_view c) {
  const BooksColumn* column = FindBooksColumn(c);
  return column != nullptr && column->sync_writes;
}

bool IsValidBarcode(std::string_view b) {
  if (b.size() < 3 || b.size() > 50) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

Status CheckBarcodes(const std::vector<std::string>& barcodes) {
  for (const auto& b : barcodes) {
    if (!IsValidBarcode(b)) {
      return Status::InvalidArgument("barcode '" + b.substr(0, 60) +
                                     "' is not 3-50 characters of A-Z a-z 0-9 _ -");
    }
  }
  return Status::Ok();
}

Status CheckJsonField(std::string_view json, const char* what) {
  if (json.empty() || nlohmann::json::accept(json)) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " is not valid JSON");
}

Status CheckCompletion(const Completion& c) {
  GRIN_RETURN_IF_ERROR(CheckJsonField(c.detail_json, "completion detail"));
  GRIN_RETURN_IF_ERROR(CheckJsonField(c.carry, "completion carry"));
  for (const auto& [column, value] : c.book_fields) {
    if (!IsWritableBookColumn(column)) {
      return Status::InvalidArgument("job " + c.item.barcode + ": books column '" + column +
                                     "' cannot be set by a completion");
    }
  }
  if (static_cast<int>(c.to) <= static_cast<int>(c.item.stage)) {
    return Status::InvalidArgument("job " + c.item.barcode + ": cannot complete from " +
                                   std::string(StageName(c.item.stage)) + " to " +
                                   std::string(StageName(c.to)));
  }
  return Status::Ok();
}

}  // namespace grin
