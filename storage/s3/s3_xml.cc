#include "storage/s3/s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "engine/base/fn_deleter.h"

namespace grin::s3 {

namespace {

using XmlDoc = std::unique_ptr<xmlDoc, FnDeleter<xmlFreeDoc>>;

XmlDoc Parse(const std::string& body) {
  if (body.empty()) return nullptr;
  // No network access, no entity expansion, no DTD loading: the body comes from a server.
  return XmlDoc(xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

bool Is(const xmlNode* n, const char* name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE &&
         xmlStrcmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

std::string Text(const xmlNode* n) {
  if (n == nullptr) return "";
  xmlChar* c = xmlNodeGetContent(n);
  if (c == nullptr) return "";
  std::string s(reinterpret_cast<const char*>(c));
  xmlFree(c);
  return s;
}

const xmlNode* Child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n ? n->children : nullptr; c != nullptr; c = c->next) {
    if (Is(c, name)) return c;
  }
  return nullptr;
}

std::string ChildText(const xmlNode* n, const char* name) { return Text(Child(n, name)); }

template <typename Fn>
void ForEach(const xmlNode* n, const char* name, Fn fn) {
  for (const xmlNode* c = n ? n->children : nullptr; c != nullptr; c = c->next) {
    if (Is(c, name)) fn(c);
  }
}

Result<const xmlNode*> Root(const XmlDoc& doc, const char* name) {
  if (!doc) return Status::DataLoss("S3 response is not XML");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (Is(root, "Error")) {
    return Status::Unavailable("S3 error in a 200 response: " + ChildText(root, "Code") + ": " +
                               ChildText(root, "Message"));
  }
  if (!Is(root, name)) return Status::DataLoss(std::string("S3 response is not ") + name);
  return root;
}

uint64_t ToU64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

}  // namespace

void InitXml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

std::optional<S3ErrorBody> ParseErrorXml(const std::string& body) {
  XmlDoc doc = Parse(body);
  if (!doc) return std::nullopt;
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!Is(root, "Error")) return std::nullopt;
  S3ErrorBody e;
  e.code = ChildText(root, "Code");
  e.message = ChildText(root, "Message");
  e.request_id = ChildText(root, "RequestId");
  e.server_time = ChildText(root, "ServerTime");
  return e;
}

Result<ListV2Result> ParseListObjectsV2(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "ListBucketResult"));
  ListV2Result r;
  r.truncated = ChildText(root, "IsTruncated") == "true";
  r.next_token = ChildText(root, "NextContinuationToken");
  ForEach(root, "Contents", [&](const xmlNode* c) {
    ObjectInfo o;
    o.key = ChildText(c, "Key");
    o.size = ToU64(ChildText(c, "Size"));
    o.etag = Unquote(ChildText(c, "ETag"));
    o.last_modified = ChildText(c, "LastModified");
    r.objects.push_back(std::move(o));
  });
  if (r.truncated && r.next_token.empty()) {
    return Status::DataLoss("truncated listing without a continuation token");
  }
  return r;
}

Result<std::string> ParseInitiateMultipart(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "InitiateMultipartUploadResult"));
  std::string id = ChildText(root, "UploadId");
  if (id.empty()) return Status::DataLoss("CreateMultipartUpload returned no UploadId");
  return id;
}

Result<ListPartsResult> ParseListParts(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "ListPartsResult"));
  ListPartsResult r;
  r.truncated = ChildText(root, "IsTruncated") == "true";
  r.next_marker = ChildText(root, "NextPartNumberMarker");
  ForEach(root, "Part", [&](const xmlNode* p) {
    r.parts.push_back({static_cast<int>(ToU64(ChildText(p, "PartNumber"))),
                       ToU64(ChildText(p, "Size")), Unquote(ChildText(p, "ETag"))});
  });
  return r;
}

Result<ListUploadsResult> ParseListMultipartUploads(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "ListMultipartUploadsResult"));
  ListUploadsResult r;
  r.truncated = ChildText(root, "IsTruncated") == "true";
  r.next_key_marker = ChildText(root, "NextKeyMarker");
  r.next_upload_id_marker = ChildText(root, "NextUploadIdMarker");
  ForEach(root, "Upload", [&](const xmlNode* u) {
    r.uploads.push_back({ChildText(u, "Key"), ChildText(u, "UploadId")});
  });
  return r;
}

Result<std::string> ParseCompleteMultipart(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "CompleteMultipartUploadResult"));
  return Unquote(ChildText(root, "ETag"));
}

Result<std::vector<DeleteErrorEntry>> ParseDeleteResult(const std::string& body) {
  XmlDoc doc = Parse(body);
  GRIN_ASSIGN_OR_RETURN(const xmlNode* root, Root(doc, "DeleteResult"));
  std::vector<DeleteErrorEntry> out;
  ForEach(root, "Error", [&](const xmlNode* e) {
    out.push_back({ChildText(e, "Key"), ChildText(e, "Code"), ChildText(e, "Message")});
  });
  return out;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string BuildCompleteMultipartXml(const std::vector<UploadedPart>& parts) {
  std::string x = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& p : parts) {
    x += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" +
         XmlEscape(p.etag) + "\"</ETag></Part>";
  }
  x += "</CompleteMultipartUpload>";
  return x;
}

std::string BuildDeleteXml(const std::vector<std::string>& keys, bool quiet) {
  std::string x = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  if (quiet) x += "<Quiet>true</Quiet>";
  for (const auto& k : keys) x += "<Object><Key>" + XmlEscape(k) + "</Key></Object>";
  x += "</Delete>";
  return x;
}

}  // namespace grin::s3
