#include "cli/commands/doctor_capture.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <nlohmann/json.hpp>

#include "cli/credentials_search.h"
#include "engine/archive/decryptor.h"
#include "engine/archive/message_outline.h"
#include "engine/archive/passphrase.h"
#include "engine/archive/tar_listing.h"
#include "engine/base/clock.h"
#include "engine/base/encoding.h"
#include "engine/grin/client.h"
#include "engine/grin/text_formats.h"

namespace grin::cli::doctor {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kTextSampleBytes = 64 * 1024;
constexpr int kListPageSize = 100;
const char* const kLists[] = {"all_books", "converted", "in_process", "failed"};

bool SecretParam(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* s : {"sig", "token", "key", "auth", "credential", "code", "session", "policy",
                        "secret", "password", "pass"}) {
    if (name.find(s) != std::string::npos) return true;
  }
  return false;
}

bool SecretHeader(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return name == "authorization" || name == "proxy-authorization" || name == "cookie" ||
         name == "set-cookie" || name == "x-goog-authenticated-user-email" ||
         name.find("token") != std::string::npos || name.find("secret") != std::string::npos;
}

Status WriteFile(const fs::path& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) return Status::Internal(path.string() + ": cannot write");
  return Status::Ok();
}

json HopJson(const net::Response& r) {
  json headers = json::array();
  for (const auto& [k, v] : RedactHeaders(r.headers)) headers.push_back({k, v});
  json j = {{"status", r.http_status},
            {"http_version", r.http_version},
            {"url", RedactUrl(r.effective_url)},
            {"headers", headers}};
  if (!r.transport_status.ok()) j["transport_error"] = r.transport_status.message();
  return j;
}

// "HTTP/1.1 200\nName: value\n..." for each hop, blank line between.
std::string HopsText(const std::vector<net::Response>& hops) {
  std::string out;
  for (const auto& r : hops) {
    if (!out.empty()) out += "\n";
    out += "# " + RedactUrl(r.effective_url) + "\n";
    out += (r.http_version.empty() ? "HTTP/?" : r.http_version) + " " +
           std::to_string(r.http_status) + "\n";
    for (const auto& [k, v] : RedactHeaders(r.headers)) out += k + ": " + v + "\n";
  }
  return out;
}

class Pack {
 public:
  Pack(TransferStack& stack, fs::path dir) : stack_(stack), dir_(std::move(dir)) {}

  // GETs url (capped at `cap` body bytes, 0 = whole), writes the body to `file` and records it.
  // Returns the body written ("" on failure, recorded as an error).
  std::string Fetch(const std::string& file, const std::string& url, size_t cap, bool list) {
    auto body = std::make_shared<std::string>();
    auto cut = std::make_shared<bool>(false);
    net::Request q;
    q.url = url;
    q.label = "doctor.capture";
    q.sink = net::ResponseSink::Callback(
        [body, cut, cap](const char* d, size_t n) -> size_t {
          if (cap != 0 && body->size() + n > cap) {
            body->append(d, cap - body->size());
            *cut = true;
            return net::kBodyAbort;
          }
          body->append(d, n);
          return n;
        },
        [body] {
          body->clear();
          return true;
        });
    if (list) q.low_speed_time_seconds = 600;  // text lists can take minutes to start
    std::vector<net::Response> hops;
    auto r = stack_.client->Send(std::move(q), &hops);
    json entry = {{"url", RedactUrl(url)}, {"hops", json::array()}};
    for (const auto& h : hops) entry["hops"].push_back(HopJson(h));
    if (!hops.empty()) {
      entry["status"] = hops.back().http_status;
      entry["http_version"] = hops.back().http_version;
    }
    if (!*cut && (!r.ok() || (r->http_status < 200 || r->http_status >= 300))) {
      Status s = r.ok() ? r->ToStatus() : r.status();
      // A non-2xx reply's body is kept too: that is what a parser would have met.
      if (r.ok() && body->empty()) *body = r->body;
      entry["error"] = s.message();
      errors_.push_back(file + ": " + s.message());
    }
    std::string text = RedactBody(*body);
    entry["bytes"] = text.size();
    entry["truncated"] = *cut;
    if (Status w = WriteFile(dir_ / file, text); !w.ok()) errors_.push_back(w.message());
    files_[file] = entry;
    return entry.contains("error") ? "" : text;
  }

  void Record(const std::string& file, json entry) { files_[file] = std::move(entry); }
  void Error(std::string e) { errors_.push_back(std::move(e)); }
  const std::vector<std::string>& errors() const { return errors_; }
  Status Write(const std::string& file, const std::string& data) {
    return WriteFile(dir_ / file, data);
  }
  json Manifest(const json& extra) const {
    json j = extra;
    j["files"] = files_;
    j["errors"] = errors_;
    return j;
  }

 private:
  TransferStack& stack_;
  fs::path dir_;
  json files_ = json::object();
  std::vector<std::string> errors_;
};

// Decrypts the archive at path natively (recording its packets) into plain_path and lists it.
void DescribeArchive(Pack& pack, const std::string& path, const std::string& plain_path,
                     const archive::Secret& passphrase) {
  archive::MessageOutline outline;
  archive::DecryptOptions o;
  o.backend = archive::DecryptBackend::kNative;
  o.outline = &outline;
  Status s;
  {
    std::ofstream plain(plain_path, std::ios::binary | std::ios::trunc);
    class OfSink final : public archive::ByteSink {
     public:
      explicit OfSink(std::ofstream* f) : f_(f) {}
      Status Write(const uint8_t* d, size_t n) override {
        f_->write(reinterpret_cast<const char*>(d), static_cast<std::streamsize>(n));
        return *f_ ? Status::Ok() : Status::Internal("cannot write the decrypted archive");
      }

     private:
      std::ofstream* f_;
    } sink(&plain);
    auto d = archive::NewDecryptor(o, passphrase, &sink);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    if (!d.ok()) {
      s = d.status();
    } else {
      while (s.ok() && in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (in.gcount() > 0) {
          s = (*d)->Write(reinterpret_cast<const uint8_t*>(buf.data()),
                          static_cast<size_t>(in.gcount()));
        }
      }
      Status f = (*d)->Finish();
      if (s.ok()) s = f;
    }
  }
  std::string packets = archive::DescribeOutline(outline);
  if (!s.ok()) {
    packets += "# the native decryptor stopped: " + s.message() + "\n";
    pack.Error("archive/packets.txt: " + s.message());
  }
  (void)pack.Write("archive/packets.txt", packets);
  if (!s.ok()) {
    ::unlink(plain_path.c_str());
    return;
  }
  auto listing = archive::ListTarFile(plain_path);
  ::unlink(plain_path.c_str());
  if (!listing.ok()) {
    pack.Error("archive/tar.txt: " + listing.status().message());
    (void)pack.Write("archive/tar.txt", "# " + listing.status().message() + "\n");
    return;
  }
  (void)pack.Write("archive/tar.txt", archive::FormatTarListing(*listing));
}

const char kReadme[] =
    "A sample of what this GRIN account's server sent to grin-jobs (`grin-jobs doctor "
    "--capture`).\n\n"
    "lists/       the first HTML page and the first 64 KiB of the text form of each list\n"
    "barcode_search.tsv  the _barcode_search reply for up to three books\n"
    "archive/     one converted archive: HEAD and GET response headers (every redirect hop),\n"
    "             its OpenPGP packets and its tar member list (no archive bytes are kept)\n"
    "manifest.json  URLs, HTTP status and version, headers, sizes, errors met\n\n"
    "Redacted: Authorization, Cookie and Set-Cookie values and other credential headers;\n"
    "signature, token, key and code parameters in URLs; e-mail addresses in pages. Book\n"
    "titles and barcodes are kept. Look through the files before sending them.\n";

}  // namespace

std::string RedactUrl(const std::string& url) {
  size_t q = url.find('?');
  if (q == std::string::npos) return url;
  size_t hash = url.find('#', q);
  std::string query = url.substr(q + 1, hash == std::string::npos ? std::string::npos : hash - q - 1);
  std::string out = url.substr(0, q + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string part = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = part.find('=');
    if (eq != std::string::npos && SecretParam(part.substr(0, eq))) {
      part = part.substr(0, eq + 1) + "REDACTED";
    }
    if (start != 0) out += '&';
    out += part;
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;  // a fragment is dropped: never sent to a server anyway
}

net::Headers RedactHeaders(const net::Headers& headers) {
  net::Headers out;
  for (const auto& [k, v] : headers) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (SecretHeader(k)) {
      out.emplace_back(k, "REDACTED");
    } else if (lower == "location" || lower == "content-location") {
      out.emplace_back(k, RedactUrl(v));
    } else {
      out.emplace_back(k, v);
    }
  }
  return out;
}

std::string RedactBody(std::string body) {
  static const std::regex kEmail(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)");
  return std::regex_replace(body, kEmail, "REDACTED@example.invalid");
}

CheckResult CaptureSamplePack(TransferStack& stack, const RunConfig& config,
                              const std::string& passphrase_file, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return {"capture", Level::kFail, dir + " is not empty",
            "give --capture a new or empty directory"};
  }
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    return {"capture", Level::kFail, dir + ": cannot create the directory",
            "give --capture a directory you can write"};
  }
  Pack pack(stack, dir);
  const std::string base = stack.client->DirectoryUrl();
  for (const char* list : kLists) {
    const std::string name = list;
    pack.Fetch("lists/" + name + ".html", stack.client->ListUrl(name, kListPageSize), 0, true);
    pack.Fetch("lists/" + name + ".txt", base + "_" + name + "?format=text", kTextSampleBytes,
               true);
  }
  // Three converted books (else any three books) for _barcode_search and the archive.
  std::vector<std::string> barcodes;
  for (const char* list : {"converted", "all_books"}) {
    std::ifstream f(fs::path(dir) / "lists" / (std::string(list) + ".txt"));
    std::string line;
    while (barcodes.size() < 3 && std::getline(f, line)) {
      std::string b = grin_client::BarcodeOfListEntry(list, line, config.library_directory);
      if (!b.empty() && std::find(barcodes.begin(), barcodes.end(), b) == barcodes.end()) {
        barcodes.push_back(b);
      }
    }
    if (!barcodes.empty() && std::string(list) == "converted") break;
  }
  std::string archive_barcode;
  {
    std::ifstream f(fs::path(dir) / "lists" / "converted.txt");
    std::string line;
    while (archive_barcode.empty() && std::getline(f, line)) {
      archive_barcode = grin_client::BarcodeOfListEntry("converted", line, config.library_directory);
    }
  }
  if (barcodes.empty()) {
    pack.Error("barcode_search.tsv: no barcode in the lists' first lines to search for");
  } else {
    std::string url = base + "_barcode_search?execute_query=true&format=text&mode=full&barcodes=";
    for (size_t i = 0; i < barcodes.size(); ++i) url += (i ? "+" : "") + PercentEncode(barcodes[i]);
    pack.Fetch("barcode_search.tsv", url, 0, false);
  }
  bool have_archive = false;
  if (archive_barcode.empty()) {
    pack.Error("archive: no converted book in _converted's first lines");
  } else {
    // HEAD and GET of the archive as GRIN sends them, every hop.
    for (bool head : {true, false}) {
      const std::string tmp = (fs::path(dir) / ".archive.part").string();
      net::Request q = stack.client->ArchiveRequest(
          archive_barcode, head ? net::ResponseSink::Discard() : net::ResponseSink::File(tmp));
      if (head) q.method = net::Method::kHead;
      q.label = "doctor.capture.archive";
      std::vector<net::Response> hops;
      auto r = stack.client->Send(std::move(q), &hops);
      const std::string file = head ? "archive/head.txt" : "archive/get.txt";
      (void)pack.Write(file, HopsText(hops));
      json entry = {{"barcode", archive_barcode}, {"hops", json::array()}};
      for (const auto& h : hops) entry["hops"].push_back(HopJson(h));
      if (!r.ok() || r->http_status != 200) {
        Status s = r.ok() ? r->ToStatus() : r.status();
        entry["error"] = s.message();
        pack.Error(file + ": " + s.message());
      } else if (!head) {
        have_archive = true;
        entry["bytes"] = r->bytes_down;
      }
      pack.Record(file, entry);
    }
  }
  if (have_archive) {
    const std::string tmp = (fs::path(dir) / ".archive.part").string();
    // The one credentials search every command uses (cli/credentials_search.h).
    auto found = CredentialsSearch("", &config).FindPassphrase(passphrase_file);
    auto secret = found.ok() ? archive::ReadPassphraseFile(found->path)
                             : Result<archive::Secret>(found.status());
    if (!secret.ok()) {
      pack.Error("archive/packets.txt, archive/tar.txt: left out: " + secret.status().message());
    } else {
      DescribeArchive(pack, tmp, (fs::path(dir) / ".archive.tar.gz.part").string(), *secret);
    }
    ::unlink(tmp.c_str());
  }
  json extra = {{"format", "grin-jobs-capture/1"},
                {"captured_at", FormatIsoUtc(SystemClock::Default()->NowMicros())},
                {"grin_directory_url", RedactUrl(base)},
                {"library_directory", config.library_directory},
                {"barcodes_searched", barcodes},
                {"archive_barcode", archive_barcode}};
  (void)pack.Write("manifest.json", pack.Manifest(extra).dump(2) + "\n");
  (void)pack.Write("README.txt", kReadme);
  if (!pack.errors().empty()) {
    return {"capture", Level::kWarn,
            dir + " written, with " + std::to_string(pack.errors().size()) +
                " part(s) missing (first: " + pack.errors().front() + ")",
            "see manifest.json's errors; fix the failing checks above and capture again"};
  }
  return {"capture", Level::kPass, dir + " holds the sample pack (see its README.txt)", ""};
}

}  // namespace grin::cli::doctor
