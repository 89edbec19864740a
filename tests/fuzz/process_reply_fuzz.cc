// Fuzz target: the _process reply, text (TSV) or HTML (engine/grin/text_formats,
// ParseProcessReply), as `request` and sync parse it. Checks the contract: barcodes come back
// non-empty, without the space padding GRIN may add, and the outcome is the status classified.

#include <cstdlib>

#include "engine/grin/text_formats.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::grin_client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto rows = ParseProcessReply(grin::fuzz::AsView(data, size), "fuzz _process reply");
  if (rows.ok()) {
    for (const auto& row : *rows) {
      if (row.barcode.empty()) std::abort();
      if (row.barcode.front() == ' ' || row.barcode.back() == ' ') std::abort();  // padding
      if (row.outcome != ClassifyProcessStatus(row.status)) std::abort();
      (void)ProcessOutcomeName(row.outcome);
    }
  }
  return 0;
}
