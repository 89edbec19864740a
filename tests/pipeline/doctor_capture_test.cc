// grin-jobs doctor --capture against the fake GRIN: the pack holds every part the guide
// promises, no secret, and parses with the production parsers. The same pack check runs on a
// pack from the real GRIN when GRIN_CAPTURE_PACK names one. Plus the redaction rules.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/commands/doctor_capture.h"
#include "engine/grin/html_list.h"
#include "engine/grin/text_formats.h"
#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {
namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct PackFacts {
  int64_t html_rows = 0;           // rows over every list's first HTML page
  int64_t converted_entries = 0;   // entries in _converted's text sample
  int64_t searched_rows = 0;       // _barcode_search reply rows
  std::string archive_etag;        // from the GET's final hop
  int64_t tar_members = 0;
  bool mets_member = false;
  bool page_text_member = false;
  std::string packets;
};

// Parses a capture pack with the production parsers; every failure is a test failure naming
// the file.
PackFacts CheckPack(const fs::path& dir) {
  PackFacts f;
  REQUIRE(fs::exists(dir / "manifest.json"));
  auto manifest = nlohmann::json::parse(Slurp(dir / "manifest.json"));
  const std::string library = manifest.value("library_directory", "");
  for (const char* list : {"all_books", "converted", "in_process", "failed"}) {
    CAPTURE(list);
    const fs::path html = dir / "lists" / (std::string(list) + ".html");
    const fs::path text = dir / "lists" / (std::string(list) + ".txt");
    REQUIRE(fs::exists(html));
    REQUIRE(fs::exists(text));
    grin_client::ParsedListPage page;
    Status s = grin_client::ParseListPage(Slurp(html), "https://grin.invalid/" + library + "/_" +
                                                            list, &page);
    CHECK_MESSAGE(s.ok(), (html.string() + ": " + s.ToString()));
    f.html_rows += static_cast<int64_t>(page.rows.size());
    std::istringstream lines(Slurp(text));
    std::string line;
    const bool cut = manifest["files"]["lists/" + std::string(list) + ".txt"].value("truncated",
                                                                                     false);
    while (std::getline(lines, line)) {
      if (cut && lines.peek() == EOF) break;  // the cut line
      if (std::string(list) == "converted" &&
          !grin_client::BarcodeOfListEntry(list, line, library).empty()) {
        ++f.converted_entries;
      }
    }
  }
  if (fs::exists(dir / "barcode_search.tsv")) {
    auto reply = grin_client::ParseBarcodeSearchReply(Slurp(dir / "barcode_search.tsv"),
                                                      "barcode_search.tsv");
    CHECK_MESSAGE(reply.ok(), reply.status().ToString());
    if (reply.ok()) f.searched_rows = static_cast<int64_t>(reply->rows.size());
  }
  const auto& get = manifest["files"]["archive/get.txt"];
  if (get.is_object() && !get["hops"].empty()) {
    for (const auto& h : get["hops"].back()["headers"]) {
      std::string k = h[0];
      for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (k == "etag") f.archive_etag = grin_client::UnquoteETag(h[1].get<std::string>());
    }
  }
  if (fs::exists(dir / "archive" / "tar.txt")) {
    std::istringstream lines(Slurp(dir / "archive" / "tar.txt"));
    std::string line;
    const std::string barcode = manifest.value("archive_barcode", "");
    while (std::getline(lines, line)) {
      if (line.empty() || line[0] == '#') continue;
      ++f.tar_members;
      if (line.size() > 4 && line.compare(line.size() - 4, 4, ".xml") == 0 &&
          line.find("_" + barcode + ".xml") != std::string::npos) {
        f.mets_member = true;
      }
      if (line.size() > 4 && line.compare(line.size() - 4, 4, ".txt") == 0) {
        f.page_text_member = true;
      }
    }
  }
  if (fs::exists(dir / "archive" / "packets.txt")) f.packets = Slurp(dir / "archive" / "packets.txt");
  return f;
}

TEST_CASE("doctor --capture: a sample pack of every part, parsed back, secrets left out") {
  SyncEnv env(20, 0.6, 5, 20'000);
  const std::string pack = (env.tmp.path() / "pack").string();
  auto r = Cli({"doctor", "--run-dir", env.run, "--staging-limit-mb", "16", "--capture", pack});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("pass  capture: ") != std::string::npos);
  for (const char* f : {"README.txt", "manifest.json", "lists/all_books.html",
                        "lists/all_books.txt", "lists/converted.html", "lists/converted.txt",
                        "lists/in_process.html", "lists/in_process.txt", "lists/failed.html",
                        "lists/failed.txt", "barcode_search.tsv", "archive/head.txt",
                        "archive/get.txt", "archive/packets.txt", "archive/tar.txt"}) {
    CHECK_MESSAGE(fs::exists(fs::path(pack) / f), f);
  }
  CHECK((fs::status(pack).permissions() & fs::perms::others_all) == fs::perms::none);
  // Nothing of the archive's bytes is kept.
  for (const auto& e : fs::recursive_directory_iterator(pack)) {
    CHECK_MESSAGE(e.path().filename().string().find(".part") == std::string::npos,
                  e.path().string());
  }
  PackFacts f = CheckPack(pack);
  CHECK(f.html_rows > 0);
  CHECK(f.converted_entries > 0);
  CHECK(f.searched_rows == 3);
  CHECK(!f.archive_etag.empty());
  CHECK(f.tar_members > 3);
  CHECK(f.mets_member);
  CHECK(f.page_text_member);
  CHECK(f.packets.find("symmetric-key packet (tag 3)") != std::string::npos);
  CHECK(f.packets.find("MDC verified") != std::string::npos);
  auto head = Slurp(fs::path(pack) / "archive" / "head.txt");
  CHECK(head.find(" 200\n") != std::string::npos);
  CHECK(head.find("HTTP/") != std::string::npos);
  // No secret anywhere: the bearer token, the passphrase, the refresh token.
  const std::string passphrase = env.server->passphrase("TEST");
  for (const auto& e : fs::recursive_directory_iterator(pack)) {
    if (!e.is_regular_file()) continue;
    const std::string text = Slurp(e.path());
    CAPTURE(e.path().string());
    CHECK(text.find("Bearer") == std::string::npos);
    CHECK(text.find(passphrase) == std::string::npos);
  }
  // A second capture into the same (now full) directory is refused, nothing overwritten.
  auto again = Cli({"doctor", "--run-dir", env.run, "--staging-limit-mb", "16", "--capture", pack});
  CHECK(again.code == 1);
  CHECK(again.out.find("fail  capture: " + pack + " is not empty") != std::string::npos);
}

TEST_CASE("capture pack from a real GRIN parses ($GRIN_CAPTURE_PACK)") {
  const char* dir = std::getenv("GRIN_CAPTURE_PACK");
  if (dir == nullptr || *dir == '\0') return;  // nothing given: only the fake's pack is checked
  PackFacts f = CheckPack(dir);
  CHECK(f.html_rows > 0);
  CHECK(!f.archive_etag.empty());
}

TEST_CASE("capture redaction: URL parameters, credential headers, e-mail addresses") {
  using cli::doctor::RedactBody;
  using cli::doctor::RedactHeaders;
  using cli::doctor::RedactUrl;
  CHECK(RedactUrl("https://h/p?X-Amz-Signature=abc&x=1&access_token=t#f") ==
        "https://h/p?X-Amz-Signature=REDACTED&x=1&access_token=REDACTED");
  CHECK(RedactUrl("https://h/TEST/_converted?format=text&result_count=100") ==
        "https://h/TEST/_converted?format=text&result_count=100");
  CHECK(RedactUrl("https://h/p") == "https://h/p");
  net::Headers h = {{"Content-Length", "5"},
                    {"Set-Cookie", "SID=secret"},
                    {"Authorization", "Bearer x"},
                    {"Location", "https://s/o?Signature=zz&Expires=9"}};
  auto red = RedactHeaders(h);
  REQUIRE(red.size() == 4);
  CHECK(red[0].second == "5");
  CHECK(red[1].second == "REDACTED");
  CHECK(red[2].second == "REDACTED");
  CHECK(red[3].second == "https://s/o?Signature=REDACTED&Expires=9");
  CHECK(RedactBody("Signed in as jane.doe@library.example.org | Sign out") ==
        "Signed in as REDACTED@example.invalid | Sign out");
}

}  // namespace
}  // namespace grin::pipeline::testing
