#pragma once
// Parsers for the XML bodies S3 sends (libxml2, no network, no state) and builders for the ones
// we send. Element names are matched by local name, so a namespace (or its absence, as some
// S3-compatible servers omit it) does not matter.
//
// Thread safety: plain functions. libxml2's parser is thread-safe once initialised; S3Client
// calls InitXml() once before its first request.

#include <optional>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/object_store.h"

namespace grin::s3 {

void InitXml();

// <Error><Code/><Message/><RequestId/>...</Error>. nullopt if body is not an S3 error document.
struct S3ErrorBody {
  std::string code;
  std::string message;
  std::string request_id;
  std::string server_time;  // <ServerTime> of RequestTimeTooSkewed, ISO 8601, or ""
};
std::optional<S3ErrorBody> ParseErrorXml(const std::string& body);

struct ListV2Result {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;
};
Result<ListV2Result> ParseListObjectsV2(const std::string& body);

Result<std::string> ParseInitiateMultipart(const std::string& body);  // the UploadId

struct ListPartsResult {
  std::vector<UploadedPart> parts;
  bool truncated = false;
  std::string next_marker;
};
Result<ListPartsResult> ParseListParts(const std::string& body);

// ListMultipartUploadsResult: the uploads (key, upload id) and the markers of the next page.
struct ListUploadsResult {
  std::vector<ObjectStore::PendingUpload> uploads;
  bool truncated = false;
  std::string next_key_marker, next_upload_id_marker;
};
Result<ListUploadsResult> ParseListMultipartUploads(const std::string& body);

// CompleteMultipartUploadResult's ETag (unquoted). A 200 whose body is an <Error> is an error.
Result<std::string> ParseCompleteMultipart(const std::string& body);

// DeleteResult: the <Error> entries (key, code, message).
struct DeleteErrorEntry {
  std::string key, code, message;
};
Result<std::vector<DeleteErrorEntry>> ParseDeleteResult(const std::string& body);

std::string BuildCompleteMultipartXml(const std::vector<UploadedPart>& parts);
std::string BuildDeleteXml(const std::vector<std::string>& keys, bool quiet);
std::string XmlEscape(const std::string& s);

// Strips one pair of surrounding quotes from an ETag.
std::string Unquote(std::string etag);

}  // namespace grin::s3
