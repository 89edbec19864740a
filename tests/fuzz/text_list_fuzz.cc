// Fuzz target: GRIN's plain-text lists (_converted, _in_process, _failed, _available, _all_books
// ?format=text) through the production LineSplitter (fed in input-derived chunks) and
// BarcodeOfListEntry for each list, plus GrinDateToIso on every line and TsvTable on the first.
// Checks the contract: a barcode taken from a line is plausible.

#include <cstdlib>

#include "engine/grin/text_formats.h"
#include "tests/fuzz/fuzz_util.h"

using grin::Status;
using namespace grin::grin_client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TsvTable table;
  LineSplitter splitter([&](std::string_view line) {
    for (const char* list : {"converted", "in_process", "failed", "available", "all_books"}) {
      for (const char* dir : {"", "TEST"}) {
        std::string b = BarcodeOfListEntry(list, line, dir);
        if (!b.empty() && !PlausibleBarcode(b)) std::abort();
      }
    }
    (void)BarcodeFromListLine(line, "TEST");
    (void)GrinDateToIso(line);
    if (!table.has_header()) {
      (void)table.SetHeader(line, "fuzz input");
    } else {
      std::vector<std::string> cells = table.Split(line);
      if (cells.size() != table.names().size()) std::abort();
      (void)MapEnrichmentRow(table, cells);
    }
    return Status::Ok();
  });
  bool ok = true;
  grin::fuzz::FeedChunked(data, size, [&](const uint8_t* p, size_t n) {
    ok = splitter.Feed(reinterpret_cast<const char*>(p), n).ok();
    return ok;
  });
  if (ok) (void)splitter.Finish();
  return 0;
}
