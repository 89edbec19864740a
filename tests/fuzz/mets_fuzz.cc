// Fuzz target: a book's METS member and the MARC record inside it (engine/archive/marc,
// ParseMets), as the extractor hands it over, then the record's column mapping.

#include "engine/archive/marc.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto doc = grin::archive::ParseMets(grin::fuzz::AsView(data, size));
  if (doc.ok() && doc->marc) (void)doc->marc->Columns();
  return 0;
}
