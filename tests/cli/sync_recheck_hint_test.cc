// A sync rerun with nothing to do says when the stored books' GRIN ETags were last checked and
// the command that checks them again (--recheck); that command does check them.
#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

// The line of `out` holding `part` ("" if none).
std::string LineWith(const std::string& out, const std::string& part) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(part) != std::string::npos) return line;
  }
  return "";
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

TEST_CASE("sync: nothing to do says when ETags were last checked and how to check them again") {
  SyncEnv env(16, 0.5);
  auto first = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(first.out << first.err);
  REQUIRE(first.code == 0);
  const int64_t stored = env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'");
  REQUIRE(stored >= 3);
  const std::string checked = env.SqlText(
      "SELECT max(last_etag_check) FROM books JOIN jobs USING (barcode) WHERE stage = 'uploaded'");
  REQUIRE(checked.size() == 20);  // 2026-12-05T03:45:00Z

  // The same command again: nothing to do; when the ETags were checked; add --recheck.
  auto same = Cli(env.SyncArgs({"--queue", "converted"}));
  INFO(same.out << same.err);
  REQUIRE(same.code == 0);
  CHECK(!LineWith(same.out, "nothing to do").empty());
  std::string hint = LineWith(same.out, "ETags of the ");
  CAPTURE(hint);
  CHECK(hint.rfind("ETags of the " + std::to_string(stored) + " stored books were last checked " +
                       checked + " (",
                   0) == 0);
  CHECK(hint.find(" ago)") != std::string::npos);
  CHECK(hint.find("rerun the same command with --recheck") != std::string::npos);

  // No selection: the hint names a whole command that checks them.
  auto bare = Cli(env.SyncArgs());
  INFO(bare.out << bare.err);
  REQUIRE(bare.code == 0);
  hint = LineWith(bare.out, "ETags of the ");
  const std::string lead = "grin-jobs sync --run-dir " + env.run + " --queue converted --recheck";
  REQUIRE(hint.size() > lead.size());
  CHECK(hint.substr(hint.size() - lead.size()) == lead);

  // Running it checks every stored book's ETag again (a HEAD each, nothing downloaded).
  const int64_t matched_before =
      env.Sql("SELECT count(*) FROM events WHERE outcome = 'skipped_etag_match'");
  auto args = Words(lead);
  args.erase(args.begin());  // "grin-jobs"
  auto recheck = Cli(args);
  INFO(recheck.out << recheck.err);
  REQUIRE(recheck.code == 0);
  CHECK(env.Sql("SELECT count(*) FROM events WHERE outcome = 'skipped_etag_match'") ==
        matched_before + stored);
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'") == stored);
  for (const auto& b : env.Uploaded()) CHECK(env.Gets(b) == 1);
}

TEST_CASE("sync: the nothing-to-do hint with old, partial and missing ETag checks") {
  SyncEnv env(12, 0.5);
  REQUIRE(Cli(env.SyncArgs({"--queue", "converted"})).code == 0);
  const int64_t stored = env.Sql("SELECT count(*) FROM jobs WHERE stage = 'uploaded'");
  REQUIRE(stored >= 2);
  auto set_checks = [&](const std::string& sql) {
    SQLite::Database db(env.run + "/books.db", SQLite::OPEN_READWRITE, 10000);
    db.exec(sql);
  };
  set_checks("UPDATE books SET last_etag_check = '2026-01-01T00:00:00Z'");
  set_checks("UPDATE books SET last_etag_check = '2025-06-30T12:00:00Z' WHERE barcode = "
             "(SELECT min(barcode) FROM jobs WHERE stage = 'uploaded')");
  set_checks("UPDATE books SET last_etag_check = NULL WHERE barcode = "
             "(SELECT max(barcode) FROM jobs WHERE stage = 'uploaded')");
  auto r = Cli(env.SyncArgs());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  std::string hint = LineWith(r.out, "ETags of the ");
  CAPTURE(hint);
  CHECK(hint.find("were last checked 2026-01-01T00:00:00Z (") != std::string::npos);
  CHECK(hint.find("; the oldest check 2025-06-30T12:00:00Z; 1 never checked.") !=
        std::string::npos);

  set_checks("UPDATE books SET last_etag_check = NULL");
  auto none = Cli(env.SyncArgs());
  INFO(none.out);
  CHECK(!LineWith(none.out, "No ETag check is recorded for the " + std::to_string(stored) +
                                " stored books.")
             .empty());
  CHECK(!LineWith(none.out, "--queue converted --recheck").empty());
}

TEST_CASE("sync: no hint when nothing is stored") {
  SyncEnv env(10, 0.0);  // nothing converted: nothing to store
  auto r = Cli(env.SyncArgs());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(!LineWith(r.out, "nothing to do").empty());
  CHECK(LineWith(r.out, "ETag").empty());
}

}  // namespace
}  // namespace grin::pipeline::testing
