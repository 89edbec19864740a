// The default --memory-limit-mb follows the machine: a quarter of the memory available, 64 to
// 512 MiB (cli/commands/sync_options.h), and `sync --help` shows the value this machine gets.
#include <doctest/doctest.h>

#include <sstream>

#include "cli/cli.h"
#include "cli/commands/sync_options.h"

namespace grin::cli {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST_CASE("memory default: a quarter of what is available, between 64 and 512 MiB") {
  CHECK(MemoryLimitMbFor(uint64_t{24} << 30) == 512);  // this VM: the rate-optimal budget
  CHECK(MemoryLimitMbFor(2048 * kMiB) == 512);         // 2 GiB to spare: still 512
  CHECK(MemoryLimitMbFor(2044 * kMiB) == 511);
  CHECK(MemoryLimitMbFor(1024 * kMiB) == 256);         // a 1 GiB container
  CHECK(MemoryLimitMbFor(600 * kMiB) == 150);
  CHECK(MemoryLimitMbFor(100 * kMiB) == 64);           // never below 64
  CHECK(MemoryLimitMbFor(0) == 64);
  CHECK(MemoryLimitMbFor(std::nullopt) == 512);        // unknown: the fixed default
}

TEST_CASE("memory default: this machine's figure is read and shown by sync --help") {
  auto available = AvailableMemoryBytes();
  REQUIRE(available.has_value());  // Linux: /proc/meminfo has MemAvailable
  CHECK(*available > 0);
  const uint64_t mb = MemoryLimitMbFor(available);
  std::ostringstream out, err;
  RunCli({"sync", "--help"}, out, err);
  // cxxopts wraps the help text: compare with every run of blanks as one space.
  std::string help;
  for (char c : out.str() + err.str()) {
    const bool blank = c == ' ' || c == '\n';
    if (!blank || help.empty() || help.back() != ' ') help += blank ? ' ' : c;
  }
  const auto at = help.find("--memory-limit-mb");
  REQUIRE(at != std::string::npos);
  const auto line_end = help.find("(default: " + std::to_string(mb) + ")", at);
  CHECK(line_end != std::string::npos);
  // The text of the option itself says how the default is chosen.
  CHECK(help.find("a quarter of the memory available", at) != std::string::npos);
}

}  // namespace
}  // namespace grin::cli
