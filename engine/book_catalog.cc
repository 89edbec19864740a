// BookCatalog is an interface; this file holds the input check its adapters share.
#include "engine/book_catalog.h"

#include "engine/books_columns.h"

namespace grin {

Status CheckEnrichment(const std::vector<EnrichedBook>& found) {
  for (const auto& b : found) {
    for (const auto& [col, value] : b.columns) {
      const BooksColumn* c = FindBooksColumn(col);
      if (c == nullptr || c->grin_label.empty()) {
        return Status::InvalidArgument("not an enrichment column: " + col);
      }
    }
  }
  return Status::Ok();
}

Status CheckCollectedPage(const std::vector<CollectedBook>& books) {
  for (const auto& b : books) {
    if (b.barcode.empty()) return Status::InvalidArgument("a collected row has no barcode");
  }
  return Status::Ok();
}

}  // namespace grin
