// Fuzz target: the XML bodies S3-compatible servers send (storage/s3/s3_xml): error documents,
// ListObjectsV2, the multipart replies (initiate, list parts, list uploads, complete) and the
// multi-object delete result. Every parser sees every input, as a server may answer any request
// with any document.

#include "storage/s3/s3_xml.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::s3;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool init = (InitXml(), true);
  (void)init;
  const std::string body(grin::fuzz::AsView(data, size));
  (void)ParseErrorXml(body);
  (void)ParseListObjectsV2(body);
  (void)ParseInitiateMultipart(body);
  (void)ParseListParts(body);
  (void)ParseListMultipartUploads(body);
  (void)ParseCompleteMultipart(body);
  (void)ParseDeleteResult(body);
  auto etag = ParseCompleteMultipart(body);
  if (etag.ok()) (void)Unquote(*etag);
  return 0;
}
