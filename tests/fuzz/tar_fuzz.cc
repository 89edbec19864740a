// Fuzz target: a book archive through the production extractor (engine/archive/extractor): tar
// headers and member names (the hostile-name checks, links, sparse and special members,
// duplicates), OCR pages, checksum.md5, and the gzip layer when the input starts with gzip's
// magic (ISA-L inflater) — otherwise libarchive reads the input as an uncompressed tar, so
// mutations hit the tar headers directly. Limits are lowered so a bomb ends fast.

#include "engine/archive/extractor.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::archive;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ExtractOptions options;
  options.barcode = "TEST001";
  options.limits.max_member_bytes = 4 << 20;
  options.limits.max_total_bytes = 16 << 20;
  options.limits.ratio_floor_bytes = 1 << 20;
  options.limits.max_text_page_bytes = 1 << 20;
  options.limits.max_ocr_bytes = 4 << 20;
  options.limits.max_xml_bytes = 1 << 20;
  options.limits.max_checksum_bytes = 1 << 20;
  options.limits.max_members = 10'000;
  options.require_ocr = (size & 1) == 0;
  options.require_marc = (size & 2) == 0;
  ArchiveExtractor extractor(options);
  bool ok = true;
  grin::fuzz::FeedChunked(data, size, [&](const uint8_t* p, size_t n) {
    ok = extractor.Write(p, n).ok();
    return ok;
  });
  auto result = extractor.Finish();
  if (result.ok() && result->marc) (void)result->marc->Columns();
  return 0;
}
