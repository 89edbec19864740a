// `grin-jobs help [COMMAND]`, `-V` / `--version`: in-process, through RunCli.
#include <doctest/doctest.h>

#include <cctype>

#include "cli/cli.h"
#include "cli/command.h"
#include "tests/cli/cli_harness.h"

namespace grin::cli {
namespace {

using testing::Cli;
using testing::OneLine;

TEST_CASE("help COMMAND prints that command's help, the same as COMMAND --help") {
  const std::string top = Cli({"--help"}).out;
  REQUIRE(!Commands().empty());
  for (const auto& c : Commands()) {
    CAPTURE(c.name);
    auto own = Cli({c.name, "--help"});
    auto via_help = Cli({"help", c.name});
    CHECK(via_help.code == kExitOk);
    CHECK(via_help.err.empty());
    CHECK(via_help.out == own.out);
    CHECK(via_help.out != top);
    CHECK(via_help.out.find(std::string("grin-jobs ") + c.name) != std::string::npos);
  }
}

TEST_CASE("help alone is the top-level help, help of an unknown command is a usage error") {
  auto top = Cli({"--help"});
  auto help = Cli({"help"});
  CHECK(help.code == kExitOk);
  CHECK(help.out == top.out);
  CHECK(help.out.find("help COMMAND") != std::string::npos);
  auto help_help = Cli({"help", "help"});
  CHECK(help_help.code == kExitOk);
  CHECK(help_help.out == top.out);

  auto unknown = Cli({"help", "frobnicate"});
  CHECK(unknown.code == kExitUsage);
  CHECK(unknown.out.empty());
  CHECK(OneLine(unknown.err));
  CHECK(unknown.err.find("'frobnicate'") != std::string::npos);

  auto two = Cli({"help", "sync", "status"});
  CHECK(two.code == kExitUsage);
  CHECK(two.out.empty());
  CHECK(OneLine(two.err));

  auto option = Cli({"help", "--run-dir"});
  CHECK(option.code == kExitUsage);
  CHECK(OneLine(option.err));
}

TEST_CASE("-V prints the version, the same line as --version") {
  auto longform = Cli({"--version"});
  auto shortform = Cli({"-V"});
  CHECK(longform.code == kExitOk);
  CHECK(shortform.code == kExitOk);
  CHECK(shortform.err.empty());
  CHECK(shortform.out == longform.out);
  // "grin-jobs MAJOR.MINOR.PATCH\n"
  const std::string prefix = "grin-jobs ";
  REQUIRE(shortform.out.rfind(prefix, 0) == 0);
  REQUIRE(OneLine(shortform.out));
  std::string v = shortform.out.substr(prefix.size(), shortform.out.size() - prefix.size() - 1);
  int dots = 0;
  for (char ch : v) {
    if (ch == '.') {
      ++dots;
    } else {
      CHECK(std::isdigit(static_cast<unsigned char>(ch)));
    }
  }
  CHECK(dots == 2);
  // Not a command-line option of a command: `sync -V` stays sync's own usage error.
  CHECK(Cli({"status", "-V"}).code == kExitUsage);
}

}  // namespace
}  // namespace grin::cli
