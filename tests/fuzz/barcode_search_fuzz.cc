// Fuzz target: the _barcode_search mode=full TSV reply (engine/grin/text_formats,
// ParseBarcodeSearchReply), as enrich parses it. Checks the contract: every row kept has a
// plausible barcode.

#include <cstdlib>

#include "engine/grin/text_formats.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::grin_client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto reply = ParseBarcodeSearchReply(std::string(grin::fuzz::AsView(data, size)), "fuzz batch");
  if (reply.ok()) {
    for (const auto& row : reply->rows) {
      if (!PlausibleBarcode(row.barcode)) std::abort();
    }
  }
  return 0;
}
