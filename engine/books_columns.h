#pragma once
// The books table's columns: the one place their names are written in code. Each entry says what
// the column is for, so the CSV export, enrichment, the sync's book writes and MARC extraction
// all derive their lists from here. schema/migrations create the table (SQL cannot include this
// header); tests/storage checks that the two agree column for column.
//
// The order is the CSV's, which is the reference tool's (docs/compatibility.md, The books table
// and its CSV); grin-jobs' own columns come after its columns.
//
// Thread safety: immutable data; safe from any thread.

#include <string_view>
#include <vector>

namespace grin {

struct BooksColumn {
  std::string_view name;          // SQL column name
  std::string_view csv_header;    // the CSV export's header text
  std::string_view grin_label;    // _barcode_search header it is enriched from; "" if none
  bool grin_date = false;         // a GRIN date: ISO 8601 in the DB, GRIN's form in the CSV
  bool sync_writes = false;       // a sync may set it with a completion (IsWritableBookColumn)
  bool marc_field = false;        // one of MarcRecord's fields (engine/archive/marc.h)
};

// Every column of `books`, in CSV order.
const std::vector<BooksColumn>& BooksColumns();

// The entry named `name`, or null.
const BooksColumn* FindBooksColumn(std::string_view name);

// The enrichment columns (those with a grin_label), in BooksColumns() order.
const std::vector<const BooksColumn*>& EnrichmentColumns();

// The names of the MARC fields' columns (marc_field), in BooksColumns() order.
const std::vector<std::string_view>& MarcFieldColumns();

}  // namespace grin
