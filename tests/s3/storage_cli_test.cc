// `grin-jobs storage` run in-process against a local folder store (and its run-config defaults).

#include <doctest/doctest.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/run_config.h"
#include "tests/support/temp_dir.h"

namespace grin::cli {
int RunStorage(const std::vector<std::string>&, std::ostream&, std::ostream&);
}

namespace grin {
namespace {

using grin::testing::TempDir;

struct Run {
  int code;
  std::string out, err;
};

Run Storage(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = cli::RunStorage(args, out, err);
  return {code, out.str(), err.str()};
}

TEST_CASE("storage cli: cp, ls, head, cp back, rm with --dry-run and --yes (local)") {
  TempDir dir;
  const std::string store = dir.file("store");
  grin::testing::WriteFile(dir.path() / "book.tar.gz", std::string(100'000, 'b'));
  const std::vector<std::string> base = {"--storage", "local", "--storage-path", store};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return Storage(a);
  };
  auto up = with({"cp", dir.file("book.tar.gz"), "raw:B1/B1.tar.gz", "--meta", "barcode=B1"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(std::filesystem::exists(store + "/raw/B1/B1.tar.gz"));
  auto ls = with({"ls", "raw:"});
  CHECK(ls.code == 0);
  CHECK(ls.out.find("B1/B1.tar.gz") != std::string::npos);
  CHECK(ls.out.find("1 objects, 100000 bytes") != std::string::npos);
  auto head = with({"head", "raw:B1/B1.tar.gz"});
  CHECK(head.code == 0);
  CHECK(head.out.find("meta.barcode: B1") != std::string::npos);
  auto down = with({"cp", "raw:B1/B1.tar.gz", dir.file("back")});
  CHECK(down.code == 0);
  CHECK(grin::testing::ReadFile(dir.path() / "back") == std::string(100'000, 'b'));

  auto dry = with({"rm", "raw:B1/B1.tar.gz", "--dry-run"});
  CHECK(dry.code == 0);
  CHECK(dry.out.find("would delete raw/B1/B1.tar.gz") != std::string::npos);
  CHECK(std::filesystem::exists(store + "/raw/B1/B1.tar.gz"));
  // Without --yes, answering "n" deletes nothing.
  std::istringstream answer_no("n\n");
  std::streambuf* saved = std::cin.rdbuf(answer_no.rdbuf());
  auto refused = with({"rm", "raw:B1/B1.tar.gz"});
  std::cin.rdbuf(saved);
  CHECK(refused.code == 1);
  CHECK(std::filesystem::exists(store + "/raw/B1/B1.tar.gz"));
  auto yes = with({"rm", "raw:B1/B1.tar.gz", "--yes"});
  CHECK(yes.code == 0);
  CHECK(!std::filesystem::exists(store + "/raw/B1/B1.tar.gz"));

  auto escape = with({"cp", dir.file("book.tar.gz"), "raw:../../outside"});
  CHECK(escape.code == 1);
  CHECK(escape.err.find("segment") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.path() / "outside"));
  CHECK(with({"frobnicate"}).code == 2);
  CHECK(with({"cp", "a", "b"}).code == 2);
  CHECK(Storage({"--help"}).code == 0);
  auto missing = with({"head", "raw:nope"});
  CHECK(missing.code == 1);
  CHECK(missing.err.find("no such key") != std::string::npos);
}

TEST_CASE("storage cli: defaults from the run's run_config.json storage block") {
  TempDir dir;
  cli::RunConfig rc;
  rc.run_name = "r";
  rc.storage = {{"type", "local"}, {"base_path", dir.file("cfgstore")},
                {"bucket_raw", "my-raw"}, {"prefix", "lib"}};
  std::filesystem::create_directories(dir.path() / "run");
  REQUIRE(cli::SaveRunConfig(dir.file("run"), rc).ok());
  grin::testing::WriteFile(dir.path() / "f", "data");
  auto up = Storage({"--run-dir", dir.file("run"), "cp", dir.file("f"), "raw:X/X.tar.gz"});
  REQUIRE_MESSAGE(up.code == 0, up.err);
  CHECK(std::filesystem::exists(dir.file("cfgstore") + "/my-raw/lib/X/X.tar.gz"));
  // A flag overrides the run config.
  auto over = Storage({"--run-dir", dir.file("run"), "--bucket-raw", "other", "ls", "raw:"});
  CHECK(over.code == 1);  // no such bucket "other"
}

}  // namespace
}  // namespace grin
