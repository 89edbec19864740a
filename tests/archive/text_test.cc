// Pure pieces: passphrase lookup, UTF-8 repair and JSON strings, gzip, METS/MARC parsing.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>

#include "engine/archive/marc.h"
#include "engine/archive/ocr.h"
#include "engine/archive/passphrase.h"
#include "tests/archive/fixtures.h"
#include "tests/support/temp_dir.h"

namespace grin::archive {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(&out, SanitizeUtf8(s));
  return out;
}

TEST_CASE("passphrase: search order as the reference tool, explicit path wins") {
  grin::testing::TempDir tmp;
  auto mk = [&](const std::string& dir, const std::string& content) {
    std::filesystem::create_directories(tmp.path() / dir);
    grin::testing::WriteFile(tmp.path() / dir / kPassphraseFileName, content);
    std::filesystem::permissions(tmp.path() / dir / kPassphraseFileName,
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write);
  };
  PassphraseSearch s;
  s.home = tmp.file("home");
  s.credentials_dir = tmp.file("creds");
  CHECK(FindPassphraseFile(s).status().code() == StatusCode::kNotFound);
  mk("home/.config", "config\n");
  CHECK(*FindPassphraseFile(s) == tmp.file("home/.config/gpg_passphrase.asc"));
  mk("home/.grin", "grin\n");
  CHECK(*FindPassphraseFile(s) == tmp.file("home/.grin/gpg_passphrase.asc"));
  mk("home", "home\n");
  CHECK(*FindPassphraseFile(s) == tmp.file("home/gpg_passphrase.asc"));
  mk("home/.config/grin-transfer", "gt\n");
  CHECK(*FindPassphraseFile(s) == tmp.file("home/.config/grin-transfer/gpg_passphrase.asc"));
  mk("secrets", "secrets\n");
  s.secrets_dir = tmp.file("secrets");
  CHECK(*FindPassphraseFile(s) == tmp.file("secrets/gpg_passphrase.asc"));
  mk("creds", "creds words here\r\nsecond line\n");
  auto path = FindPassphraseFile(s);
  REQUIRE(path.ok());
  CHECK(*path == tmp.file("creds/gpg_passphrase.asc"));
  auto secret = ReadPassphraseFile(*path);
  REQUIRE(secret.ok());
  CHECK(secret->reveal() == "creds words here");
  s.explicit_path = tmp.file("nowhere.asc");
  CHECK(FindPassphraseFile(s).status().code() == StatusCode::kNotFound);
  mk("empty", "\n");
  CHECK(ReadPassphraseFile(tmp.file("empty/gpg_passphrase.asc")).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(!ReadPassphraseFile(tmp.file("missing")).ok());
  mk("big", std::string(5000, 'a'));
  CHECK(!ReadPassphraseFile(tmp.file("big/gpg_passphrase.asc")).ok());
}

TEST_CASE("ocr: page names are exactly 8 digits .txt within 1..999999") {
  CHECK(OcrPageNumber("00000001.txt") == 1u);
  CHECK(OcrPageNumber("00999999.txt") == 999999u);
  CHECK(!OcrPageNumber("01000000.txt"));
  CHECK(!OcrPageNumber("00000000.txt"));
  CHECK(!OcrPageNumber("0000001.txt"));
  CHECK(!OcrPageNumber("000000001.txt"));
  CHECK(!OcrPageNumber("0000000a.txt"));
  CHECK(!OcrPageNumber("00000001.html"));
  CHECK(!OcrPageNumber("00000001.TXT"));
}

TEST_CASE("ocr: invalid UTF-8 becomes U+FFFD per maximal subpart, like Python") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(SanitizeUtf8("plain ascii") == "plain ascii");
  CHECK(SanitizeUtf8("caf\xC3\xA9 \xF0\x9F\x93\x96") == "caf\xC3\xA9 \xF0\x9F\x93\x96");
  CHECK(SanitizeUtf8("\xFF") == r);
  CHECK(SanitizeUtf8("a\xC3") == "a" + r);                 // truncated 2-byte
  CHECK(SanitizeUtf8("\xE2\x82z") == r + "z");             // truncated 3-byte: one U+FFFD
  CHECK(SanitizeUtf8("\xC0\x80") == r + r);                // overlong: two
  CHECK(SanitizeUtf8("\xED\xA0\x80") == r + r + r);        // surrogate: three
  CHECK(SanitizeUtf8("\xF4\x90\x80\x80") == r + r + r + r);  // > U+10FFFF
  CHECK(SanitizeUtf8("\xF0\x9F\x93") == r);                // truncated 4-byte
  CHECK(SanitizeUtf8(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("ocr: JSON strings as json.dumps(ensure_ascii=False)") {
  CHECK(Json("") == "\"\"");
  CHECK(Json("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(Json("l1\nl2\r\t\b\f") == "\"l1\\nl2\\r\\t\\b\\f\"");
  CHECK(Json(std::string("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\x7f\"");
  CHECK(Json(std::string("\0", 1)) == "\"\\u0000\"");
  CHECK(Json("M\xC3\xBCnchen \xE6\x97\xA5") == "\"M\xC3\xBCnchen \xE6\x97\xA5\"");
  CHECK(Json("x\xFFy") == "\"x\xEF\xBF\xBDy\"");
}

TEST_CASE("ocr: JSONL fills gaps and is gzip level 1") {
  OcrPages pages;
  CHECK(pages.Add(3, "three").ok());
  CHECK(pages.Add(1, "one\n").ok());
  CHECK(pages.Add(1, "again").code() == StatusCode::kDataLoss);
  CHECK(pages.page_count() == 3);
  CHECK(pages.present() == 2);
  CHECK(pages.BuildJsonl() == "\"one\\n\"\n\"\"\n\"three\"\n");
  auto gz = pages.BuildJsonlGz();
  REQUIRE(gz.ok());
  REQUIRE(gz->size() > 10);
  CHECK(static_cast<uint8_t>((*gz)[0]) == 0x1f);
  CHECK(static_cast<uint8_t>((*gz)[1]) == 0x8b);
  CHECK(static_cast<uint8_t>((*gz)[8]) == 4);  // XFL = 4: fastest compression (level 1)
  CHECK(*GzipDecompress(*gz, 1 << 20) == pages.BuildJsonl());
  CHECK(OcrPages().BuildJsonl().empty());
}

TEST_CASE("marc: fields from a METS record, repeats joined, dates as the data dictionary") {
  auto doc = ParseMets(testing::MetsXml("TEST", "39015012345678"));
  REQUIRE_MESSAGE(doc.ok(), doc.status().ToString());
  REQUIRE(doc->marc.has_value());
  const MarcRecord& m = *doc->marc;
  CHECK(m.control_number == "ocm12345678");
  CHECK(m.date_type == "m");
  CHECK(m.date_1 == "1999");  // the reference tool's "999" filter would have dropped both
  CHECK(m.date_2 == "1999");
  CHECK(m.language == "eng");
  CHECK(m.lccn == "85012345");
  CHECK(m.isbn == "0123456789, 9780123456786");
  CHECK(m.oclc_numbers == "(OCoLC)12345678, (OCoLC)ocm87654321");
  CHECK(m.lc_call_number == "QA76.73");
  CHECK(m.author_personal == "M\xC3\xBCller, Hans,");
  CHECK(m.author_corporate == "Acme & Sons");
  CHECK(!m.author_meeting.has_value());
  CHECK(m.title == "Die Geschichte :");
  CHECK(m.title_remainder == "ein Versuch /");
  CHECK(m.general_note == "Includes index., Bibliography: p. 300.");
  CHECK(m.subjects == "History, Germany");
  CHECK(m.genres == "Essays");
  auto cols = m.Columns();
  REQUIRE(cols.size() == 17);
  CHECK(cols.front().first == "marc_control_number");
  CHECK(cols.back().first == "marc_general_note");
}

std::string MetsWith008(const std::string& f008) {
  return R"(<mets:mets xmlns:mets="http://www.loc.gov/METS/"><mets:dmdSec><mets:mdWrap>
<mets:xmlData><record xmlns="http://www.loc.gov/MARC21/slim"><controlfield tag="008">)" +
         f008 + "</controlfield></record></mets:xmlData></mets:mdWrap></mets:dmdSec></mets:mets>";
}

TEST_CASE("marc: 008 dates keep 9999, drop non-digits") {
  auto a = ParseMets(MetsWith008("850101c19859999nyu           000 0 ger d"));
  REQUIRE(a.ok());
  CHECK(a->marc->date_type == "c");
  CHECK(a->marc->date_1 == "1985");
  CHECK(a->marc->date_2 == "9999");
  CHECK(a->marc->language == "ger");
  auto b = ParseMets(MetsWith008("850101s19uu    xx            000 0     d"));
  REQUIRE(b.ok());
  CHECK(!b->marc->date_1.has_value());
  CHECK(!b->marc->date_2.has_value());
  CHECK(!b->marc->language.has_value());
  auto c = ParseMets(MetsWith008("short"));
  REQUIRE(c.ok());
  CHECK(!c->marc->date_1.has_value());
}

TEST_CASE("marc: not METS, malformed, no MARC") {
  auto not_mets = ParseMets("<?xml version='1.0'?><root xmlns='urn:x'><a/></root>");
  CHECK(not_mets.status().code() == StatusCode::kNotFound);
  CHECK(not_mets.status().message().find("not a METS document") != std::string::npos);
  auto wrong_ns = ParseMets("<mets xmlns='http://example.com/METS/'/>");
  CHECK(wrong_ns.status().code() == StatusCode::kNotFound);
  auto broken = ParseMets("<mets:mets xmlns:mets='http://www.loc.gov/METS/'><unclosed>");
  CHECK(broken.status().code() == StatusCode::kDataLoss);
  CHECK(broken.status().message().find("malformed XML") != std::string::npos);
  CHECK(ParseMets("").status().code() == StatusCode::kDataLoss);
  auto no_marc = ParseMets("<mets:mets xmlns:mets='http://www.loc.gov/METS/'/>");
  REQUIRE(no_marc.ok());
  CHECK(!no_marc->marc.has_value());
}

TEST_CASE("marc: entity bombs and external entities fail cleanly and fast") {
  std::string lol = "<?xml version='1.0'?>\n<!DOCTYPE lolz [\n<!ENTITY lol 'lol'>\n";
  std::string prev = "lol";
  for (int i = 1; i <= 9; ++i) {
    std::string name = "lol" + std::to_string(i);
    lol += "<!ENTITY " + name + " '";
    for (int k = 0; k < 10; ++k) lol += "&" + prev + ";";
    lol += "'>\n";
    prev = name;
  }
  lol += "]>\n<mets:mets xmlns:mets='http://www.loc.gov/METS/'>&" + prev + ";</mets:mets>";
  auto t0 = std::chrono::steady_clock::now();
  auto bomb = ParseMets(lol);
  CHECK(bomb.status().code() == StatusCode::kDataLoss);
  CHECK(bomb.status().message().find("entity") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));

  auto xxe = ParseMets(
      "<?xml version='1.0'?><!DOCTYPE m [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
      "<mets:mets xmlns:mets='http://www.loc.gov/METS/'>&x;</mets:mets>");
  CHECK(xxe.status().code() == StatusCode::kDataLoss);
  // An external DTD is neither fetched nor loaded; the document itself is fine.
  auto ext_dtd = ParseMets(
      "<?xml version='1.0'?><!DOCTYPE m SYSTEM 'http://127.0.0.1:9/none.dtd'>"
      "<mets:mets xmlns:mets='http://www.loc.gov/METS/'/>");
  CHECK(ext_dtd.ok());
}

}  // namespace
}  // namespace grin::archive
