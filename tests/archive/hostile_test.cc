// Hostile and broken archives: every one fails the book with a clear reason, nothing is written
// anywhere (extraction never touches the filesystem), and nothing crashes.

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "engine/archive/book.h"
#include "engine/archive/ocr.h"
#include "tests/archive/fixtures.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
int RunExtract(const std::vector<std::string>&, std::ostream&, std::ostream&);
}

namespace grin::archive {
namespace {

using testing::Member;

// One ustar header block for a regular file of a claimed size (base-256 above 8 GiB), without
// data: libarchive's writer would pad the claimed size with real zeros.
std::string RawTarHeader(const std::string& name, uint64_t size) {
  std::string h(512, '\0');
  std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 99));
  std::memcpy(h.data() + 100, "0000644", 7);
  std::memcpy(h.data() + 108, "0000000", 7);
  std::memcpy(h.data() + 116, "0000000", 7);
  h[124] = static_cast<char>(0x80);  // base-256 size
  for (int i = 0; i < 8; ++i) h[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
  std::memcpy(h.data() + 136, "00000000000", 11);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memset(h.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  std::memcpy(h.data() + 148, chk, 7);
  return h;
}

Status Run(const std::string& tar_gz, const ExtractLimits& limits = {},
           const std::string& barcode = "39015012345678") {
  BookOptions o;
  o.barcode = barcode;
  o.encrypted = false;
  o.extract_options.limits = limits;
  auto book = BookProcessor::Open(o, nullptr);
  if (!book.ok()) return book.status();
  for (size_t pos = 0; pos < tar_gz.size(); pos += 32768) {
    if (!(*book)->Write(reinterpret_cast<const uint8_t*>(tar_gz.data()) + pos,
                        std::min<size_t>(32768, tar_gz.size() - pos))
             .ok()) {
      break;
    }
  }
  return (*book)->Finish().status();
}

// A minimal valid book plus the hostile member.
std::string BookWith(const Member& hostile) {
  testing::BookSpec spec;
  spec.pages = 2;
  spec.checksum = false;
  auto members = testing::BookMembers(spec);
  members.insert(members.begin() + 1, hostile);
  return testing::TarGz(members);
}

struct HostileCase {
  const char* name;
  std::string tar_gz;
  const char* reason;
};

TEST_CASE("hostile: names, links, devices, bombs, XML and corruption fail cleanly") {
  std::vector<HostileCase> cases;
  cases.push_back({"parent dir", BookWith({"../escape.txt", "x"}), "escapes the archive"});
  cases.push_back({"nested parent", BookWith({"a/../../b.txt", "x"}), "escapes the archive"});
  cases.push_back({"absolute", BookWith({"/tmp/grin-evil-abs.txt", "x"}), "absolute path"});
  cases.push_back({"symlink", BookWith({"link", "", Member::kSymlink, "/etc/passwd"}),
                   "symbolic link"});
  cases.push_back({"hard link", BookWith({"hl", "", Member::kHardlink, "00000001.txt"}),
                   "hard link"});
  cases.push_back({"device", BookWith({"null", "", Member::kCharDevice}), "device member"});
  cases.push_back({"fifo", BookWith({"fifo", "", Member::kFifo}), "FIFO"});
  cases.push_back({"duplicate", BookWith({"00000001.jp2", "again"}), "duplicate member"});
  {
    testing::BookSpec spec;
    spec.pages = 1;
    spec.mets = false;
    spec.extra = {{"TEST_39015012345678.xml", "<mets:mets xmlns:mets='x'><oops>"}};
    cases.push_back({"malformed METS", testing::BookTarGz(spec), "malformed XML"});
  }
  std::string lol = "<?xml version='1.0'?><!DOCTYPE m [<!ENTITY a 'aaaaaaaaaa'>"
                    "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
                    "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
                    "<mets:mets xmlns:mets='http://www.loc.gov/METS/'>&c;</mets:mets>";
  // The spec's own METS would be a second candidate; this book has only the hostile one.
  {
    testing::BookSpec spec;
    spec.pages = 1;
    spec.mets = false;
    spec.extra = {{"TEST_39015012345678.xml", lol}};
    cases.push_back({"entity expansion", testing::BookTarGz(spec), "entity declarations"});
  }
  {
    std::string raw = RawTarHeader("00000001.jp2", 100ull << 30);
    raw += std::string(1024, '\0');
    auto gz = GzipCompress(raw, 6);
    cases.push_back({"enormous member", *gz, "bytes (limit"});
  }
  {
    // 128 MiB of zeros compresses ~1000:1.
    testing::BookSpec spec;
    spec.pages = 1;
    spec.checksum = false;
    spec.extra = {{"00000009.jp2", std::string(128u << 20, '\0')}};
    cases.push_back({"decompression bomb", testing::TarGz(testing::BookMembers(spec), 9),
                     "decompression bomb"});
  }
  std::string good = testing::BookTarGz(testing::BookSpec{});
  cases.push_back({"truncated", good.substr(0, good.size() / 2), "truncated"});
  std::string garbage(4096, '\0');
  testing::FillRandom(5, reinterpret_cast<uint8_t*>(garbage.data()), garbage.size());
  cases.push_back({"not an archive", garbage, "archive"});
  cases.push_back({"empty input", "", "archive"});

  for (const auto& c : cases) {
    CAPTURE(std::string(c.name));
    Status s = Run(c.tar_gz);
    CHECK(!s.ok());
    CHECK_MESSAGE(s.message().find(c.reason) != std::string::npos, s.ToString());
    CHECK(s.message().rfind("extraction: ", 0) == 0);
  }
  CHECK(!std::filesystem::exists("/tmp/grin-evil-abs.txt"));
}

TEST_CASE("hostile: configured limits are enforced") {
  testing::BookSpec spec;
  spec.pages = 3;
  spec.image_bytes = 200000;
  const std::string book = testing::BookTarGz(spec);
  CHECK(Run(book).ok());
  ExtractLimits total;
  total.max_total_bytes = 300000;
  CHECK(Run(book, total).message().find("expands beyond") != std::string::npos);
  ExtractLimits member;
  member.max_member_bytes = 100000;
  CHECK(Run(book, member).message().find("(limit 100000)") != std::string::npos);
  ExtractLimits page;
  page.max_text_page_bytes = 50;
  CHECK(Run(book, page).message().find("(limit 50)") != std::string::npos);
  ExtractLimits count;
  count.max_members = 4;
  CHECK(Run(book, count).message().find("more than 4 members") != std::string::npos);
  ExtractLimits ocr;
  ocr.max_ocr_bytes = 150;
  CHECK_MESSAGE(Run(book, ocr).message().find("OCR text exceeds") != std::string::npos, Run(book, ocr).ToString());
}

TEST_CASE("hostile: the CLI writes nothing outside its output dir and nothing for bad books") {
  grin::testing::TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "staging" / "out");
  grin::testing::WriteFile(tmp.path() / "staging" / "EVIL1.tar.gz",
                           BookWith({"../../escaped.txt", "pwned"}));
  grin::testing::WriteFile(tmp.path() / "staging" / "EVIL2.tar.gz",
                           BookWith({"00000009.txt", "", Member::kSymlink, "../../target"}));
  std::ostringstream out, err;
  int rc = grin::cli::RunExtract({tmp.file("staging/EVIL1.tar.gz"), tmp.file("staging/EVIL2.tar.gz"),
                                  "-o", tmp.file("staging/out")},
                                 out, err);
  CHECK(rc == 1);
  CHECK(err.str().find("EVIL1.tar.gz: extraction: member name escapes the archive") !=
        std::string::npos);
  CHECK(err.str().find("EVIL2.tar.gz: extraction: symbolic link member refused") !=
        std::string::npos);
  CHECK(std::filesystem::is_empty(tmp.path() / "staging" / "out"));
  size_t entries = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(tmp.path());
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    ++entries;
  }
  CHECK(entries == 4);  // staging/, staging/out/, the two inputs
  CHECK(!std::filesystem::exists(tmp.path().parent_path() / "escaped.txt"));
}

}  // namespace
}  // namespace grin::archive
