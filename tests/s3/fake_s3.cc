#include "tests/s3/fake_s3.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <regex>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "storage/s3/sigv4.h"

namespace grin::testing {


namespace {

std::string XmlEsc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o.push_back(c);
  }
  return o;
}

std::string XmlUnesc(std::string s) {
  const std::pair<const char*, const char*> kMap[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (auto [from, to] : kMap) {
    size_t p = 0;
    while ((p = s.find(from, p)) != std::string::npos) {
      s.replace(p, std::strlen(from), to);
      p += std::strlen(to);
    }
  }
  return s;
}

std::string HttpDate(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string IsoDate(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

int64_t ParseAmzDate(const std::string& s) {
  struct tm tm {};
  if (strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm) == nullptr) return -1;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

class FakeS3::Impl {
 public:
  Impl(FakeS3* owner, std::string key, std::string secret, std::string region)
      : owner_(owner), key_(std::move(key)), secret_(std::move(secret)), region_(std::move(region)),
        signer_(region_, "s3", s3::SigningFlavor::kS3) {
    srv_.set_tcp_nodelay(true);
    srv_.set_keep_alive_max_count(1000000);  // httplib closes after 5 requests by default
    srv_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    auto h = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
    srv_.Get(".*", h);
    srv_.Put(".*", h);
    srv_.Post(".*", h);
    srv_.Delete(".*", h);
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  ~Impl() {
    srv_.stop();
    thread_.join();
  }

  FakeS3* owner_;
  std::string key_, secret_, region_;
  s3::Signer signer_;
  httplib::Server srv_;
  std::thread thread_;
  int port_ = 0;

  struct Upload {
    std::string bucket, key;
    std::map<int, std::string> parts;
    std::map<std::string, std::string> meta;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Object>> buckets_;
  std::map<std::string, Upload> uploads_;
  int next_upload_ = 1;
  std::vector<Fault> faults_;
  std::map<std::string, int> counts_;
  std::map<std::string, FakeS3::Integrity> integrity_;
  std::vector<int> part_numbers_;

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count() +
           owner_->clock_offset_s_.load();
  }

  void Error(httplib::Response& res, int status, const std::string& code,
             const std::string& msg, const std::string& extra = "") {
    res.status = status;
    res.set_content("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                        "</Code><Message>" + XmlEsc(msg) + "</Message>" + extra +
                        "<RequestId>fake</RequestId></Error>",
                    "application/xml");
  }

  // Returns false (and fills res) if authentication fails.
  bool Authenticate(const httplib::Request& req, const std::string& raw_path,
                    const std::string& raw_query, const std::string& path,
                    httplib::Response& res) {
    std::string auth = req.get_header_value("Authorization");
    std::smatch m;
    static const std::regex kAuth(
        "AWS4-HMAC-SHA256 Credential=([^/]+)/(\\d{8})/([^/]+)/s3/aws4_request, "
        "SignedHeaders=([a-z0-9;_-]+), Signature=([0-9a-f]{64})");
    if (!std::regex_match(auth, m, kAuth)) {
      Error(res, 400, "AuthorizationHeaderMalformed", "bad Authorization header");
      return false;
    }
    if (m[1] != key_) {
      Error(res, 403, "InvalidAccessKeyId", "unknown access key");
      return false;
    }
    const int64_t t = ParseAmzDate(req.get_header_value("x-amz-date"));
    if (t < 0 || std::llabs(t - Now()) > 900) {
      res.set_header("Date", HttpDate(Now()));
      Error(res, 403, "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            "<RequestTime>" + req.get_header_value("x-amz-date") + "</RequestTime><ServerTime>" +
                IsoDate(Now()) + "</ServerTime><MaxAllowedSkewMilliseconds>900000"
                "</MaxAllowedSkewMilliseconds>");
      return false;
    }
    s3::SigningInput in;
    in.method = req.method;
    in.path = path;
    for (const auto& [k, v] : req.params) in.query.emplace_back(k, v);
    std::string signed_list = m[4];
    size_t i = 0;
    while (i <= signed_list.size()) {
      size_t j = signed_list.find(';', i);
      if (j == std::string::npos) j = signed_list.size();
      std::string name = signed_list.substr(i, j - i);
      size_t n = req.get_header_value_count(name);
      if (n == 0) {
        Error(res, 403, "SignatureDoesNotMatch", "signed header missing: " + name);
        ++owner_->sig_failures_;
        return false;
      }
      for (size_t k = 0; k < n; ++k) in.headers.emplace_back(name, req.get_header_value(name, k));
      i = j + 1;
    }
    in.payload_hash = req.get_header_value("x-amz-content-sha256");
    s3::SignedRequest s = signer_.Sign(in, {key_, secret_, ""}, t);
    if (s.signature != m[5] || s.signed_headers != signed_list || m[3] != region_) {
      ++owner_->sig_failures_;
      Error(res, 403, "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.");
      return false;
    }
    // The wire must carry exactly the canonical encoding the client signed.
    if (s3::EncodePath(path) != raw_path || s3::CanonicalQuery(in.query) != raw_query) {
      ++owner_->sig_failures_;
      Error(res, 400, "NonCanonicalRequest", "path or query not canonically encoded");
      return false;
    }
    return true;
  }

  bool CheckBody(const httplib::Request& req, httplib::Response& res) {
    std::string sha = req.get_header_value("x-amz-content-sha256");
    if (sha != "UNSIGNED-PAYLOAD" && sha != grin::Sha256Hex(req.body)) {
      Error(res, 400, "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.");
      return false;
    }
    if (req.has_header("Content-MD5") &&
        req.get_header_value("Content-MD5") != Base64Encode(grin::Md5(req.body))) {
      Error(res, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      return false;
    }
    return true;
  }

  // Returns the matching fault (consumed), if any.
  bool TakeFault(const std::string& op, int part, Fault* out) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if ((it->op == "*" || it->op == op) && (it->part_number == 0 || it->part_number == part)) {
        *out = *it;
        if (--it->count <= 0) faults_.erase(it);
        return true;
      }
    }
    return false;
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    const std::string& target = req.target;
    size_t q = target.find('?');
    std::string raw_path = target.substr(0, q);
    std::string raw_query = q == std::string::npos ? "" : target.substr(q + 1);
    std::string path = httplib::detail::decode_url(raw_path, false);
    std::string rest = path.substr(1);
    size_t slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string key = slash == std::string::npos ? "" : rest.substr(slash + 1);
    // Virtual-host style: "<bucket>.localhost:<port>" (libcurl resolves *.localhost to loopback).
    const std::string host = req.get_header_value("Host");
    if (size_t dot = host.find(".localhost"); dot != std::string::npos && dot > 0) {
      bucket = host.substr(0, dot);
      key = rest;
    }
    const bool is_head = req.method == "HEAD";
    std::string op;
    if (req.method == "GET" || is_head) {
      op = key.empty() ? (is_head ? "HeadBucket" : "List")
                       : (req.has_param("uploadId") ? "ListParts" : (is_head ? "HEAD" : "GET"));
    } else if (req.method == "PUT") {
      op = key.empty() ? "CreateBucket" : (req.has_param("partNumber") ? "UploadPart" : "PUT");
    } else if (req.method == "POST") {
      op = req.has_param("uploads") ? "Create"
           : req.has_param("uploadId") ? "Complete"
                                       : "Delete";
    } else {
      op = req.has_param("uploadId") ? "Abort" : "DeleteObject";
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      ++counts_[op];
      integrity_[op] = {req.get_header_value("x-amz-content-sha256"),
                        req.get_header_value("Content-MD5")};
    }
    if (!Authenticate(req, raw_path, raw_query, path, res)) return;
    if (req.method == "PUT" && !req.has_header("Content-Length")) {
      Error(res, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
      return;
    }
    if (!CheckBody(req, res)) return;
    int part = req.has_param("partNumber") ? std::atoi(req.get_param_value("partNumber").c_str()) : 0;
    Fault fault;
    bool faulted = TakeFault(op, part, &fault);
    if (faulted && !fault.truncate && !fault.error_in_200) {
      Error(res, fault.status, fault.code, "injected fault");
      return;
    }
    std::lock_guard<std::mutex> l(mu_);
    auto bit = buckets_.find(bucket);
    if (op == "CreateBucket") {
      if (bit != buckets_.end()) return Error(res, 409, "BucketAlreadyOwnedByYou", "yours");
      buckets_[bucket];
      return;
    }
    if (bit == buckets_.end()) return Error(res, 404, "NoSuchBucket", "no such bucket");
    auto& objects = bit->second;
    if (op == "HeadBucket") return;
    if (op == "PUT") {
      Object o{req.body, {}, HexEncode(grin::Md5(req.body))};
      for (const auto& [k, v] : req.headers) {
        std::string lk = k;
        for (char& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lk.rfind("x-amz-meta-", 0) == 0) o.meta[lk.substr(11)] = v;
      }
      if (req.get_header_value("If-None-Match") == "*" && objects.count(key)) {
        return Error(res, 412, "PreconditionFailed", "exists");
      }
      res.set_header("ETag", "\"" + o.etag + "\"");
      objects[key] = std::move(o);
      return;
    }
    if (op == "GET" || op == "HEAD") {
      auto it = objects.find(key);
      if (it == objects.end()) {
        res.status = 404;
        if (!is_head) Error(res, 404, "NoSuchKey", "no such key");
        return;
      }
      const Object& o = it->second;
      res.set_header("ETag", "\"" + o.etag + "\"");
      res.set_header("Last-Modified", HttpDate(Now()));
      for (const auto& [k, v] : o.meta) res.set_header("x-amz-meta-" + k, v);
      // httplib itself answers Range requests (206, Content-Range, 416) from the full body.
      std::string body = o.data;
      if (faulted && fault.truncate && !is_head) {
        auto shared = std::make_shared<std::string>(body);
        res.set_content_provider(shared->size(), "application/octet-stream",
                                 [shared](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset >= shared->size() / 2) return false;  // cut
                                   sink.write(shared->data(), shared->size() / 2);
                                   return true;
                                 });
        return;
      }
      res.set_content(body, "application/octet-stream");
      return;
    }
    if (op == "DeleteObject") {
      objects.erase(key);
      res.status = 204;
      return;
    }
    if (op == "List") {
      std::string prefix = req.get_param_value("prefix");
      int max = req.has_param("max-keys") ? std::atoi(req.get_param_value("max-keys").c_str()) : 1000;
      std::string after;
      if (req.has_param("continuation-token")) {
        std::string tok = req.get_param_value("continuation-token");  // "t/<hex>+="
        grin::HexDecode(tok.substr(2, tok.size() - 4), &after);
      }
      std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
                        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>" + bucket +
                        "</Name>";
      int n = 0;
      std::string last;
      bool truncated = false;
      for (auto it = after.empty() ? objects.begin() : objects.upper_bound(after);
           it != objects.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) continue;
        if (n == max) {
          truncated = true;
          break;
        }
        xml += "<Contents><Key>" + XmlEsc(it->first) + "</Key><Size>" +
               std::to_string(it->second.data.size()) + "</Size><ETag>&quot;" + it->second.etag +
               "&quot;</ETag></Contents>";
        last = it->first;
        ++n;
      }
      xml += "<KeyCount>" + std::to_string(n) + "</KeyCount><IsTruncated>" +
             (truncated ? "true" : "false") + "</IsTruncated>";
      if (truncated) xml += "<NextContinuationToken>t/" + HexEncode(last) + "+=</NextContinuationToken>";
      xml += "</ListBucketResult>";
      res.set_content(xml, "application/xml");
      return;
    }
    if (op == "Delete") {
      if (!req.has_header("Content-MD5")) return Error(res, 400, "InvalidRequest", "Content-MD5 required");
      static const std::regex kKey("<Key>([^<]*)</Key>");
      for (auto it = std::sregex_iterator(req.body.begin(), req.body.end(), kKey);
           it != std::sregex_iterator(); ++it) {
        objects.erase(XmlUnesc((*it)[1]));
      }
      res.set_content("<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
                      "application/xml");
      return;
    }
    if (op == "Create") {
      std::string id = "up-" + std::to_string(next_upload_++) + "/a+b=";  // needs encoding
      Upload u{bucket, key, {}, {}};
      for (const auto& [k, v] : req.headers) {
        std::string lk = k;
        for (char& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lk.rfind("x-amz-meta-", 0) == 0) u.meta[lk.substr(11)] = v;
      }
      uploads_[id] = u;
      res.set_content("<InitiateMultipartUploadResult><Bucket>" + bucket + "</Bucket><Key>" +
                          XmlEsc(key) + "</Key><UploadId>" + XmlEsc(id) +
                          "</UploadId></InitiateMultipartUploadResult>",
                      "application/xml");
      return;
    }
    auto uit = uploads_.find(req.get_param_value("uploadId"));
    if (uit == uploads_.end()) return Error(res, 404, "NoSuchUpload", "no such upload");
    Upload& up = uit->second;
    if (op == "UploadPart") {
      up.parts[part] = req.body;
      part_numbers_.push_back(part);
      res.set_header("ETag", "\"" + HexEncode(grin::Md5(req.body)) + "\"");
      return;
    }
    if (op == "ListParts") {
      std::string xml = "<ListPartsResult><IsTruncated>false</IsTruncated>";
      for (const auto& [n, d] : up.parts) {
        xml += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>\"" +
               HexEncode(grin::Md5(d)) + "\"</ETag><Size>" + std::to_string(d.size()) +
               "</Size></Part>";
      }
      res.set_content(xml + "</ListPartsResult>", "application/xml");
      return;
    }
    if (op == "Abort") {
      uploads_.erase(uit);
      res.status = 204;
      return;
    }
    // Complete.
    if (faulted && fault.error_in_200) {
      res.status = 200;
      res.set_content("<Error><Code>InternalError</Code><Message>injected</Message></Error>",
                      "application/xml");
      return;
    }
    static const std::regex kPart("<PartNumber>(\\d+)</PartNumber><ETag>\"?([0-9a-f]+)\"?</ETag>");
    std::vector<int> numbers;
    std::string md5s, data;
    for (auto it = std::sregex_iterator(req.body.begin(), req.body.end(), kPart);
         it != std::sregex_iterator(); ++it) {
      int n = std::atoi((*it)[1].str().c_str());
      auto p = up.parts.find(n);
      if (p == up.parts.end() || HexEncode(grin::Md5(p->second)) != (*it)[2].str()) {
        return Error(res, 400, "InvalidPart", "part missing or ETag mismatch");
      }
      numbers.push_back(n);
      md5s += grin::Md5(p->second);
      data += p->second;
    }
    for (size_t i = 0; i + 1 < numbers.size(); ++i) {
      const std::string& p = up.parts[numbers[i]];
      if (numbers[i] != static_cast<int>(i) + 1 || p.size() < 5 * 1024 * 1024) {
        return Error(res, 400, "EntityTooSmall", "part too small or out of order");
      }
      if (p.size() != up.parts[numbers[0]].size()) {
        return Error(res, 400, "InvalidPart", "All non-trailing parts must have the same length.");
      }
    }
    Object o{data, up.meta, HexEncode(grin::Md5(md5s)) + "-" + std::to_string(numbers.size())};
    res.set_content("<CompleteMultipartUploadResult><ETag>\"" + o.etag +
                        "\"</ETag></CompleteMultipartUploadResult>",
                    "application/xml");
    buckets_[up.bucket][up.key] = std::move(o);
    uploads_.erase(uit);
  }
};

FakeS3::FakeS3(std::string access_key, std::string secret, std::string region)
    : impl_(std::make_unique<Impl>(this, std::move(access_key), std::move(secret),
                                   std::move(region))) {}
FakeS3::~FakeS3() = default;

std::string FakeS3::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port_);
}

void FakeS3::AddFault(const Fault& f) {
  std::lock_guard<std::mutex> l(impl_->mu_);
  impl_->faults_.push_back(f);
}

void FakeS3::CreateBucket(const std::string& b) {
  std::lock_guard<std::mutex> l(impl_->mu_);
  impl_->buckets_[b];
}

bool FakeS3::GetObject(const std::string& bucket, const std::string& key, Object* out) const {
  std::lock_guard<std::mutex> l(impl_->mu_);
  auto b = impl_->buckets_.find(bucket);
  if (b == impl_->buckets_.end()) return false;
  auto o = b->second.find(key);
  if (o == b->second.end()) return false;
  *out = o->second;
  return true;
}

int FakeS3::Count(const std::string& op) const {
  std::lock_guard<std::mutex> l(impl_->mu_);
  auto it = impl_->counts_.find(op);
  return it == impl_->counts_.end() ? 0 : it->second;
}

FakeS3::Integrity FakeS3::LastIntegrity(const std::string& op) const {
  std::lock_guard<std::mutex> l(impl_->mu_);
  auto it = impl_->integrity_.find(op);
  return it == impl_->integrity_.end() ? Integrity{} : it->second;
}

std::vector<int> FakeS3::uploaded_part_numbers() const {
  std::lock_guard<std::mutex> l(impl_->mu_);
  return impl_->part_numbers_;
}

}  // namespace grin::testing
