// Extraction from real-looking books (this directory's generator), encrypted by real gpg and fed
// through BookProcessor as a download would be; and the extract command end to end.

#include <doctest/doctest.h>

#include <filesystem>
#include <sstream>

#include "engine/archive/book.h"
#include "engine/base/digest.h"
#include "engine/archive/gzip_inflater.h"
#include "engine/archive/ocr.h"
#include "tests/archive/fixtures.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
int RunExtract(const std::vector<std::string>&, std::ostream&, std::ostream&);
}

namespace grin::archive {
namespace {

using testing::BookSpec;

Result<BookResult> Process(const std::string& bytes, bool encrypted, const std::string& barcode,
                           DecryptBackend backend = DecryptBackend::kAuto,
                           StringSink* archive_out = nullptr, size_t chunk = 65536) {
  BookOptions o;
  o.barcode = barcode;
  o.encrypted = encrypted;
  o.decrypt.backend = backend;
  o.archive_sink = archive_out;
  Secret pass(testing::kPassphrase);
  auto book = BookProcessor::Open(o, encrypted ? &pass : nullptr);
  if (!book.ok()) return book.status();
  for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
    Status s = (*book)->Write(reinterpret_cast<const uint8_t*>(bytes.data()) + pos,
                              std::min(chunk, bytes.size() - pos));
    if (!s.ok()) break;
  }
  return (*book)->Finish();
}

// Independent expectation for one JSONL line: Python's json.dumps of the repaired text, written
// out by hand for the fixture's PageText.
std::string ExpectedLine(uint32_t page) {
  std::string s = "\"Page " + std::to_string(page) +
                  " \xE2\x80\x94 \\\"Gr\xC3\xBC\xC3\x9F" "e\\\" aus M\xC3\xBCnchen \\\\ caf\xC3\xA9 "
                  "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\\ttab\\nsecond line\\r\\nthird \\u0001 "
                  "ctrl \xF0\x9F\x93\x96\\n";
  if (page % 4 == 0) s += "bad bytes: \xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\\n";
  return s + "\"";
}

std::vector<std::string> Lines(const std::string& gz) {
  auto text = GzipDecompress(gz, 64 << 20);
  REQUIRE(text.ok());
  std::vector<std::string> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST_CASE("extract: a real-looking encrypted book, every backend, one pass") {
  BookSpec spec;
  spec.pages = 9;
  spec.missing_text = {2, 7};
  spec.extra.push_back({"notes.txt", "not a page"});
  spec.extra.push_back({"other_metadata.xml", "<other/>"});
  const std::string plain = testing::BookTarGz(spec);
  auto ct = testing::CachedGpgEncrypt(plain, testing::GpgParams{});
  REQUIRE(ct.ok());
  for (DecryptBackend b : {DecryptBackend::kNative, DecryptBackend::kGpg, DecryptBackend::kRnp}) {
    CAPTURE(BackendName(b));
    StringSink archive;
    auto r = Process(*ct, true, spec.barcode, b, &archive, 10000);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(r->backend == b);
    CHECK(archive.data() == plain);
    CHECK(r->archive_bytes == plain.size());
    CHECK(r->sha256_hex == testing::Sha256Hex(plain));
    Hasher md5(Hasher::Kind::kMd5);
    md5.Update(reinterpret_cast<const uint8_t*>(plain.data()), plain.size());
    CHECK(r->md5_hex == md5.FinalHex());
    CHECK(r->sha256_base64.size() == 44);
    CHECK(r->md5_base64.size() == 24);
    const Extraction& x = *r->extraction;
    CHECK(x.page_count == 9);
    CHECK(x.ocr_pages_present == 7);
    CHECK(x.mets_member == "TEST_39015012345678.xml");
    CHECK(x.checksums.present);
    CHECK(x.checksums.verified == x.checksums.listed);
    CHECK(x.checksums.listed == 9 * 3 - 2 + 1 + 2);
    CHECK(x.members == x.checksums.listed + 1);
    REQUIRE(x.marc.has_value());
    CHECK(x.marc->control_number == "ocm12345678");
    CHECK(x.marc->title == "Die Geschichte :");
    auto lines = Lines(x.ocr_jsonl_gz);
    REQUIRE(lines.size() == 9);
    for (uint32_t p = 1; p <= 9; ++p) {
      CAPTURE(p);
      CHECK(lines[p - 1] == (spec.missing_text.count(p) ? "\"\"" : ExpectedLine(p)));
    }
    bool warned = false;
    for (const auto& w : x.warnings) warned |= w.find("notes.txt") != std::string::npos;
    CHECK(warned);
  }
}

TEST_CASE("extract: compute_md5 = false skips only the MD5") {
  BookSpec spec;
  spec.pages = 3;
  const std::string plain = testing::BookTarGz(spec);
  auto ct = testing::CachedGpgEncrypt(plain, testing::GpgParams{});
  REQUIRE(ct.ok());
  for (bool md5 : {true, false}) {
    CAPTURE(md5);
    BookOptions o;
    o.barcode = spec.barcode;
    o.compute_md5 = md5;
    Secret pass(testing::kPassphrase);
    auto book = BookProcessor::Open(o, &pass);
    REQUIRE(book.ok());
    REQUIRE((*book)->Write(reinterpret_cast<const uint8_t*>(ct->data()), ct->size()).ok());
    auto r = (*book)->Finish();
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(r->sha256_hex == testing::Sha256Hex(plain));
    CHECK(r->sha256_base64.size() == 44);
    CHECK(r->md5_hex.size() == (md5 ? 32u : 0u));
    CHECK(r->md5_base64.size() == (md5 ? 24u : 0u));
    CHECK(r->extraction->page_count == 3);
  }
}

TEST_CASE("extract: JSONL is byte-identical to Python's json.dumps over the same archive") {
  // The reference tool's algorithm in Python (tarfile, errors="replace", ensure_ascii=False) as
  // an independent oracle.
  grin::testing::TempDir tmp;
  BookSpec spec;
  spec.pages = 12;
  spec.missing_text = {5, 11};
  const std::string tgz = testing::BookTarGz(spec);
  grin::testing::WriteFile(tmp.path() / "book.tar.gz", tgz);
  const std::string script =
      "import json, re, sys, tarfile\n"
      "pages = {}\n"
      "with tarfile.open(sys.argv[1], 'r:gz') as t:\n"
      "    for m in t.getmembers():\n"
      "        name = m.name.rsplit('/', 1)[-1]\n"
      "        if m.isfile() and re.fullmatch(r'\\d{8}\\.txt', name):\n"
      "            pages[int(name[:8])] = t.extractfile(m).read().decode('utf-8', errors='replace')\n"
      "out = ''.join(json.dumps(pages.get(i, ''), ensure_ascii=False) + '\\n'\n"
      "              for i in range(1, max(pages) + 1))\n"
      "sys.stdout.buffer.write(out.encode('utf-8'))\n";
  grin::testing::WriteFile(tmp.path() / "oracle.py", script);
  auto py = testing::RunProcess({"python3", tmp.file("oracle.py"), tmp.file("book.tar.gz")}, "", "");
  REQUIRE(py.ok());
  REQUIRE_MESSAGE(py->exit_code == 0, py->err);
  auto r = Process(tgz, false, spec.barcode);
  REQUIRE(r.ok());
  auto ours = GzipDecompress(r->extraction->ocr_jsonl_gz, 64 << 20);
  REQUIRE(ours.ok());
  CHECK(*ours == py->out);
  CHECK(py->out.find("\xEF\xBF\xBD") != std::string::npos);  // the oracle saw bad bytes too
}

TEST_CASE("extract: member order does not matter, plain tar.gz needs no passphrase") {
  BookSpec spec;
  spec.pages = 4;
  spec.reverse_order = true;
  auto r = Process(testing::BookTarGz(spec), false, spec.barcode);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->extraction->page_count == 4);
  auto lines = Lines(r->extraction->ocr_jsonl_gz);
  REQUIRE(lines.size() == 4);
  CHECK(lines[3] == ExpectedLine(4));
}

TEST_CASE("extract: checksum mismatch, missing METS, non-METS xml, no OCR fail per book") {
  BookSpec spec;
  spec.pages = 3;
  auto members = testing::BookMembers(spec);
  for (auto& m : members) {
    if (m.name == "00000002.txt") m.data += "tampered";
  }
  auto r = Process(testing::TarGz(members), false, spec.barcode);
  CHECK(r.status().code() == StatusCode::kDataLoss);
  CHECK(r.status().message().find("checksum.md5 mismatch for 00000002.txt") != std::string::npos);

  spec.mets = false;
  r = Process(testing::BookTarGz(spec), false, spec.barcode);
  CHECK(r.status().message().find("no METS file (<DIR>_39015012345678.xml)") != std::string::npos);

  // Named like the METS but not METS: not trusted (the reference tool would have used it).
  spec.extra = {{"TEST_39015012345678.xml", "<?xml version='1.0'?><catalog><x/></catalog>"}};
  r = Process(testing::BookTarGz(spec), false, spec.barcode);
  CHECK(r.status().message().find("no METS file") != std::string::npos);

  // A METS for another barcode is not this book's METS.
  spec.extra = {{"TEST_00000000000000.xml", testing::MetsXml("TEST", "00000000000000")}};
  r = Process(testing::BookTarGz(spec), false, spec.barcode);
  CHECK(r.status().message().find("no METS file") != std::string::npos);

  BookSpec no_text;
  no_text.pages = 2;
  no_text.missing_text = {1, 2};
  r = Process(testing::BookTarGz(no_text), false, no_text.barcode);
  CHECK(r.status().message().find("no OCR pages") != std::string::npos);

  // Listed in checksum.md5 but absent.
  members = testing::BookMembers(BookSpec{});
  members.erase(std::remove_if(members.begin(), members.end(),
                               [](const testing::Member& m) { return m.name == "00000003.jp2"; }),
                members.end());
  r = Process(testing::TarGz(members), false, BookSpec{}.barcode);
  CHECK(r.status().message().find("absent: 00000003.jp2") != std::string::npos);
}

TEST_CASE("extract: the gzip layer — members, trailers, truncation, trailing bytes") {
  // With ISA-L the extractor inflates itself and checks each member's CRC-32/length trailer.
  BookSpec spec;
  spec.pages = 4;
  const std::string tgz = testing::BookTarGz(spec);
  auto tar = GzipDecompress(tgz, 64 << 20);
  REQUIRE(tar.ok());
  auto first = GzipCompress(tar->substr(0, tar->size() / 3), 6);
  auto second = GzipCompress(tar->substr(tar->size() / 3), 1);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  auto ok = [&](const std::string& bytes) {
    auto r = Process(bytes, false, spec.barcode, DecryptBackend::kAuto, nullptr, 1000);
    CHECK_MESSAGE(r.ok(), r.status().ToString());
    if (r.ok()) CHECK(r->extraction->page_count == 4);
  };
  ok(tgz);
  ok(*first + *second);  // two gzip members
  ok(tgz + std::string(700, '\0'));  // trailing zeros after the last member are ignored
  ok(*tar);  // a plain tar goes to libarchive as before
  // libarchive's own gzip filter (builds without ISA-L) does not check the trailer here.
  if (!GzipInflater::Available()) return;
  auto bad = [&](const std::string& bytes, const char* reason) {
    auto r = Process(bytes, false, spec.barcode, DecryptBackend::kAuto, nullptr, 777);
    REQUIRE(!r.ok());
    CHECK(r.status().code() == StatusCode::kDataLoss);
    CHECK_MESSAGE(r.status().message().find(reason) != std::string::npos, r.status().ToString());
  };
  // (libarchive's writer pads its output with zeros; zlib's gzip ends with the trailer.)
  const std::string gz = *GzipCompress(*tar, 6);
  ok(gz);
  std::string crc = gz;
  crc[crc.size() - 6] ^= 1;
  bad(crc, "gzip CRC-32 or length trailer mismatch");
  std::string len = gz;
  len[len.size() - 2] ^= 1;
  bad(len, "gzip CRC-32 or length trailer mismatch");
  bad(gz.substr(0, gz.size() - 3), "truncated gzip stream");
  std::string body = gz;
  body[body.size() / 2] ^= 0x55;
  bad(body, "gzip");
}

TEST_CASE("extract: the CLI writes outputs for good files and one line per bad file") {
  grin::testing::TempDir tmp;
  BookSpec spec;
  spec.pages = 3;
  const std::string plain = testing::BookTarGz(spec);
  auto ct = testing::CachedGpgEncrypt(plain, testing::GpgParams{});
  REQUIRE(ct.ok());
  grin::testing::WriteFile(tmp.path() / "39015012345678.tar.gz.gpg", *ct);
  BookSpec other;
  other.barcode = "39015099999999";
  grin::testing::WriteFile(tmp.path() / "39015099999999.tar.gz", testing::BookTarGz(other));
  std::string bad = *ct;
  bad[bad.size() / 2] ^= 1;
  grin::testing::WriteFile(tmp.path() / "BAD1.tar.gz.gpg", bad);
  grin::testing::WriteFile(tmp.path() / "pass.asc", std::string(testing::kPassphrase) + "\n");
  std::filesystem::permissions(tmp.path() / "pass.asc", std::filesystem::perms::owner_read |
                                                            std::filesystem::perms::owner_write);
  std::ostringstream out, err;
  int rc = grin::cli::RunExtract(
      {tmp.file("39015012345678.tar.gz.gpg"), tmp.file("39015099999999.tar.gz"),
       tmp.file("BAD1.tar.gz.gpg"), tmp.file("missing.tar.gz"), "-o", tmp.file("out"),
       "--passphrase-file", tmp.file("pass.asc"), "--backend", "rnp"},
      out, err);
  CHECK(rc == 1);
  std::string e = err.str();
  CHECK(std::count(e.begin(), e.end(), '\n') == 2);
  CHECK(e.find("BAD1.tar.gz.gpg: decryption:") != std::string::npos);
  CHECK(e.find("missing.tar.gz: cannot open") != std::string::npos);
  CHECK(e.find(testing::kPassphrase) == std::string::npos);
  auto gz = grin::testing::ReadFile(tmp.path() / "out" / "39015012345678_ocr.jsonl.gz");
  CHECK(Lines(gz).size() == 3);
  std::string meta = grin::testing::ReadFile(tmp.path() / "out" / "39015012345678_metadata.json");
  CHECK(meta.find("\"marc_title\": \"Die Geschichte :\"") != std::string::npos);
  CHECK(meta.find("\"page_count\": 3") != std::string::npos);
  CHECK(meta.find("\"decryption_backend\": \"rnp\"") != std::string::npos);
  CHECK(meta.find("\"archive_sha256\": \"" + testing::Sha256Hex(plain) + "\"") != std::string::npos);
  CHECK(std::filesystem::exists(tmp.path() / "out" / "39015099999999_metadata.json"));
  CHECK(!std::filesystem::exists(tmp.path() / "out" / "BAD1_ocr.jsonl.gz"));
  CHECK(!std::filesystem::exists(tmp.path() / "out" / "BAD1_metadata.json"));
  size_t files = 0;
  for (auto it = std::filesystem::directory_iterator(tmp.path() / "out");
       it != std::filesystem::directory_iterator(); ++it) {
    ++files;
  }
  CHECK(files == 4);  // no .part leftovers

  std::ostringstream hout, herr;
  CHECK(grin::cli::RunExtract({"--help"}, hout, herr) == 0);
  CHECK(hout.str().find("--passphrase-file") != std::string::npos);
  CHECK(grin::cli::RunExtract({}, hout, herr) == 2);
  CHECK(grin::cli::RunExtract({"x.tar.gz", "--backend", "pgp"}, hout, herr) == 2);
}

}  // namespace
}  // namespace grin::archive
