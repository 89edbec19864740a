#pragma once
// Reading a Markdown guide as a test script (docs/real-grin.md, run by real_grin_guide_test.cc).
//
// The convention, for guide authors:
//   - A fenced block is "```LANG" ... "```". Every ```sh block is run, in document order, as one
//     bash script (`bash -eu -o pipefail`), unless a marker skips it.
//   - A marker is one line `<!-- guide-test: DIRECTIVES -->`, the last non-blank line before the
//     block's opening fence. DIRECTIVES, separated by ';':
//       skip REASON        not run (REASON is required and may contain anything, ';' too);
//       session A,B        run once in each named session (default: main);
//       exit N             the block must exit with N (default 0);
//       output TEXT        the block's output (stdout and stderr) must contain TEXT;
//       file NAME          a non-sh block that is a file the reader creates: NAME "crontab" is a
//                          crontab, NAME ending ".service" / ".timer" a systemd unit.
//   - A marker before anything but a fenced block, or an unknown directive, is an error.
// Parsing never throws; a malformed guide comes back as `errors`.

#include <map>
#include <set>
#include <string>
#include <vector>

namespace grin::guide {

struct Block {
  int line = 0;              // 1-based line of the opening fence
  std::string lang;          // the fence's info string up to the first space ("sh", "ini", ...)
  std::string text;          // the block's content, each line ending '\n'
  std::string section;       // the last "## " heading before it
  bool skip = false;
  std::string skip_reason;
  std::vector<std::string> sessions = {"main"};
  int exit_code = 0;
  std::string output;        // required substring ("" = none)
  std::string file;          // "file NAME" ("" = none)
};

struct Guide {
  std::vector<Block> blocks;
  std::vector<std::string> errors;  // "line N: what is wrong"
};

Guide ParseGuide(const std::string& markdown);

// Replaces every occurrence of each key by its value, longest keys first.
std::string Substitute(std::string text, const std::map<std::string, std::string>& subs);

// Shell logical lines of a script: lines ending in '\' joined with the next (the backslash and
// newline kept), so a command spread over several lines is one entry.
std::vector<std::string> LogicalLines(const std::string& script);

// The words of a simple command line (split on blanks; '...' and "..." quoting removed; stops at
// the first of ; & | < > #). Enough for the guide's grin-jobs lines.
std::vector<std::string> Words(const std::string& line);

// A crontab's entries. Blank lines and comments are ignored, NAME=VALUE lines are environment.
struct CronEntry {
  std::string schedule;  // the five fields (or @daily etc.)
  std::string command;
};
struct Crontab {
  std::map<std::string, std::string> env;
  std::vector<CronEntry> entries;
  std::vector<std::string> errors;
};
Crontab ParseCrontab(const std::string& text);

// A systemd unit file: section -> key -> values in order (a key may repeat, e.g. ExecStart).
using Unit = std::map<std::string, std::multimap<std::string, std::string>>;
Unit ParseUnit(const std::string& text);
std::vector<std::string> UnitValues(const Unit& unit, const std::string& section,
                                    const std::string& key);

// The exit codes a C++ header defines as `inline constexpr int kExitNAME = N;`: NAME -> N.
std::map<std::string, int> ExitCodesInHeader(const std::string& header_text);

// The codes listed in the first column of the Markdown table under the heading that contains
// `heading` (rows "| N | ..."). Also returns, in *bad, first cells that are not a number.
std::set<int> ExitCodesInGuide(const std::string& markdown, const std::string& heading,
                               std::vector<std::string>* bad);

}  // namespace grin::guide
