// Issue 16 item 10: dates are ISO 8601 in the database and, by default, in the CSV;
// `export --date-format grin` writes GRIN's dates as GRIN shows them ("YYYY/MM/DD HH:MM"), while
// grin-jobs' own timestamps stay ISO.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <fstream>
#include <map>
#include <sstream>

#include "engine/grin/text_formats.h"
#include "storage/books_export.h"
#include "tests/grin/cli_env.h"

namespace grin::cli {
namespace {

using testing::FakeRun;

// Splits a CSV line written by ExportBooksCsv (quoted fields with doubled quotes).
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

// barcode -> (header -> value) of a CSV file.
std::map<std::string, std::map<std::string, std::string>> ReadCsv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = SplitCsv(line);
  std::map<std::string, std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    auto cells = SplitCsv(line);
    REQUIRE(cells.size() == header.size());
    auto& row = rows[cells[0]];
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = cells[i];
  }
  return rows;
}

TEST_SUITE("unit") {

TEST_CASE("dates: ISO to GRIN's text and back") {
  CHECK(storage::IsoToGrinDate("2009-12-23T18:41:00") == "2009/12/23 18:41");
  CHECK(storage::IsoToGrinDate("2009-12-23T18:41:07") == "2009/12/23 18:41:07");
  CHECK(storage::IsoToGrinDate("2009-12-23T00:00:00") == "2009/12/23 00:00");
  // Not an ISO date: as stored.
  CHECK(storage::IsoToGrinDate("") == "");
  CHECK(storage::IsoToGrinDate("sometime in 2009") == "sometime in 2009");
  CHECK(storage::IsoToGrinDate("2026-12-05T03:44:15Z") == "2026-12-05T03:44:15Z");
  CHECK(storage::IsoToGrinDate("2009/12/23 18:41") == "2009/12/23 18:41");
  for (const char* grin : {"2009/12/23 18:41", "1999/01/01 00:00", "2024/02/29 23:59"}) {
    CHECK(storage::IsoToGrinDate(grin_client::GrinDateToIso(grin)) == grin);
  }
}

}  // TEST_SUITE

TEST_SUITE("integration") {

TEST_CASE("cli: export keeps ISO dates by default and writes GRIN's text with --date-format grin") {
  FakeRun env(25);
  REQUIRE(testing::Cli({"collect", "--run-dir", env.run}).code == 0);
  REQUIRE(testing::Cli({"enrich", "--run-dir", env.run}).code == 0);
  const std::string iso_csv = env.tmp.file("iso.csv"), grin_csv = env.tmp.file("grin.csv");
  auto r = testing::Cli({"export", "--run-dir", env.run, "--output", iso_csv});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  r = testing::Cli(
      {"export", "--run-dir", env.run, "--output", grin_csv, "--date-format", "grin"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  r = testing::Cli({"export", "--run-dir", env.run, "--date-format", "american"});
  CHECK(r.code == kExitUsage);

  auto iso = ReadCsv(iso_csv), grin = ReadCsv(grin_csv);
  REQUIRE(iso.size() == 25);
  REQUIRE(grin.size() == 25);
  fake::Corpus* corpus = env.server->corpus("TEST");
  int dated = 0;
  for (int64_t i = 0; i < 25; ++i) {
    const fake::BookRecord b = corpus->Get(i);
    CAPTURE(b.barcode);
    const auto& ri = iso.at(b.barcode);
    const auto& rg = grin.at(b.barcode);
    // What the fake GRIN showed, and what grin-jobs stored of it.
    const std::string shown = fake::FormatGrinDate(b.scanned);
    REQUIRE_FALSE(shown.empty());
    CHECK(rg.at("Scanned Date") == shown);
    CHECK(ri.at("Scanned Date") == grin_client::GrinDateToIso(shown));
    CHECK(ri.at("Scanned Date").find('T') == 10);
    CHECK(rg.at("GRIN Check-In Date") == fake::FormatGrinDate(b.check_in));
    CHECK(rg.at("OCR Date") == fake::FormatGrinDate(b.ocr));
    if (b.converted) {
      CHECK(rg.at("Converted Date") == fake::FormatGrinDate(b.converted));
      ++dated;
    }
    // grin-jobs' own timestamps: ISO UTC in both.
    CHECK(rg.at("Created At") == ri.at("Created At"));
    CHECK(rg.at("Enrichment Timestamp") == ri.at("Enrichment Timestamp"));
    CHECK(ri.at("Enrichment Timestamp").back() == 'Z');
    // Nothing else differs.
    for (const auto& [k, v] : ri) {
      if (k.find("Date") == std::string::npos || k.rfind("MARC", 0) == 0) {
        CHECK_MESSAGE(rg.at(k) == v, k);
      }
    }
  }
  CHECK(dated > 0);
  // The database itself keeps ISO 8601.
  SQLite::Database db(env.db(), SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT count(*) FROM books WHERE scanned_date NOT GLOB "
                          "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]'");
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getInt64() == 0);
}

}  // TEST_SUITE

}  // namespace
}  // namespace grin::cli
