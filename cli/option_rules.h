#pragma once
// What a command's option values may be, checked right after parsing and before any work (before
// the run's database is opened, its lock taken or the network touched). A bad value is refused
// with one line naming the option, the value given and what is allowed; the command exits 2.
//
//   OptionRules rules;
//   rules.Int<int>("workers", 1, 256).Int<int64_t>("limit", 1, kNoMax)
//        .Number("grin-rate", 0, 1e6, "0 = unlimited").ReadableFile("barcodes-file");
//   if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
//
// This header is also the only way cli/ includes cxxopts: it turns off cxxopts' splitting of
// vector option values at ',' (CXXOPTS_VECTOR_DELIMITER), so a repeated option or a positional
// list gets each argument whole (`storage rm 's3://b/a,b'` names one object; `--meta k=a,b` is
// one value). Include it before anything that includes <cxxopts.hpp>.

#ifndef CXXOPTS_VECTOR_DELIMITER
#define CXXOPTS_VECTOR_DELIMITER '\0'  // argv strings never hold a NUL: never split
#endif
#include <cxxopts.hpp>
static_assert(CXXOPTS_VECTOR_DELIMITER == '\0',
              "<cxxopts.hpp> was included before cli/option_rules.h: option values with a "
              "comma would be split");

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace grin::cli {

inline constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

class OptionRules {
 public:
  // --NAME is a whole number from min to max (T as the option was declared: int, int64_t,
  // uint64_t). `note` explains special values, e.g. "0 = no limit".
  template <typename T>
  OptionRules& Int(const char* name, int64_t min, int64_t max, const char* note = nullptr);

  // --NAME (double) is a finite number from min to max.
  OptionRules& Number(const char* name, double min, double max, const char* note = nullptr);

  // When given: --NAME (string) names an existing regular file this process can read.
  OptionRules& ReadableFile(const char* name);
  // When given: --NAME (string) names an existing directory.
  OptionRules& ExistingDir(const char* name);
  // When given: --NAME (string) is a directory or does not exist yet (it will be created).
  OptionRules& DirOrAbsent(const char* name);
  // When given: --NAME (string) is a file that can be created or replaced: its directory exists
  // and it is not itself a directory.
  OptionRules& WritableFile(const char* name);
  // --NAME (string, given or defaulted) is one of `allowed`.
  OptionRules& OneOf(const char* name, std::vector<std::string> allowed);
  // When given: `check(value)` of --NAME (string) is Ok; its error message is the refusal line.
  OptionRules& Satisfies(const char* name, std::function<Status(const std::string&)> check);
  // Every value of the repeatable --NAME (vector<string>) is one of `allowed`.
  OptionRules& EachOneOf(const char* name, std::vector<std::string> allowed);

  // The first rule broken, as kInvalidArgument "--NAME VALUE: <what is allowed>"; else Ok.
  Status Check(const cxxopts::ParseResult& parsed) const;

  // After cxxopts refused to parse a value: the rule's line for the first option in `args` whose
  // value does not parse as its declared type (e.g. "--staging-limit-mb -5: use a whole number
  // from 0 to 16777216 (0 = no limit)"). "" if no rule explains it.
  std::string ExplainParseError(const std::vector<std::string>& args) const;

 private:
  struct Rule {
    std::string name;
    std::string allowed;                                         // "use a whole number ..."
    std::function<bool(const std::string& text)> parses;         // null: not a typed value
    std::function<Status(const cxxopts::ParseResult&)> check;
  };
  OptionRules& Add(Rule rule);
  std::vector<Rule> rules_;
};

// Describes the range for messages: "a whole number from 1 to 256", "... of at least 1".
std::string DescribeIntRange(int64_t min, int64_t max, const char* note);

// The `parses` of a rule for a value of type T: whether the option parser can read `text` as T.
template <typename T>
std::function<bool(const std::string&)> ParsesAs() {
  return [](const std::string& text) {
    try {
      T v;
      cxxopts::values::parse_value(text, v);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
}

template <typename T>
OptionRules& OptionRules::Int(const char* name, int64_t min, int64_t max, const char* note) {
  std::string allowed = "use " + DescribeIntRange(min, max, note);
  std::string n = name;
  return Add(Rule{
      n, allowed,
      ParsesAs<T>(),
      [n, allowed, min, max](const cxxopts::ParseResult& p) {
        if (p.count(n) == 0 && !p[n].has_default()) return Status::Ok();
        T v = p[n].as<T>();
        bool ok;
        if constexpr (std::is_unsigned_v<T>) {
          ok = min <= 0 ? v <= static_cast<uint64_t>(max)
                        : v >= static_cast<uint64_t>(min) && v <= static_cast<uint64_t>(max);
        } else {
          ok = static_cast<int64_t>(v) >= min && static_cast<int64_t>(v) <= max;
        }
        if (ok) return Status::Ok();
        return Status::InvalidArgument("--" + n + " " + std::to_string(v) + ": " + allowed);
      }});
}

}  // namespace grin::cli
