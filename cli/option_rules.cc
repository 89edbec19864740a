#include "cli/option_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace grin::cli {
namespace {

// The values args give --NAME: "--NAME VALUE" and "--NAME=VALUE".
std::vector<std::string> RawValues(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> out;
  const std::string flag = "--" + name;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i] == flag && i + 1 < args.size()) {
      out.push_back(args[i + 1]);
    } else if (args[i].rfind(flag + "=", 0) == 0) {
      out.push_back(args[i].substr(flag.size() + 1));
    }
  }
  return out;
}

std::string Shown(const std::string& value) {
  return value.empty() ? "''" : value.size() > 200 ? value.substr(0, 200) + "..." : value;
}

std::string FormatNumber(double v) {
  std::ostringstream s;
  s << std::setprecision(15) << v;
  return s.str();
}

// "a, b or c".
std::string JoinOr(const std::vector<std::string>& items) {
  std::string list;
  for (size_t i = 0; i < items.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  }
  return list;
}

}  // namespace

std::string DescribeIntRange(int64_t min, int64_t max, const char* note) {
  std::string s = max == kNoMax ? "a whole number of at least " + std::to_string(min)
                                : "a whole number from " + std::to_string(min) + " to " +
                                      std::to_string(max);
  if (note != nullptr) s += std::string(" (") + note + ")";
  return s;
}

OptionRules& OptionRules::Add(Rule rule) {
  rules_.push_back(std::move(rule));
  return *this;
}

OptionRules& OptionRules::Number(const char* name, double min, double max, const char* note) {
  std::string allowed = "use a number from " + FormatNumber(min) + " to " + FormatNumber(max);
  if (note != nullptr) allowed += std::string(" (") + note + ")";
  std::string n = name;
  return Add(Rule{n, allowed,
                  ParsesAs<double>(),
                  [n, allowed, min, max](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0 && !p[n].has_default()) return Status::Ok();
                    double v = p[n].as<double>();
                    if (std::isfinite(v) && v >= min && v <= max) return Status::Ok();
                    return Status::InvalidArgument("--" + n + " " + FormatNumber(v) + ": " +
                                                   allowed);
                  }});
}

OptionRules& OptionRules::ReadableFile(const char* name) {
  std::string n = name;
  return Add(Rule{n, "", nullptr, [n](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    const std::string path = p[n].as<std::string>();
                    const std::string head = "--" + n + " " + Shown(path) + ": ";
                    struct stat st {};
                    if (path.empty()) return Status::InvalidArgument(head + "give a file name");
                    if (::stat(path.c_str(), &st) != 0) {
                      return Status::InvalidArgument(
                          head + (errno == ENOENT ? std::string("no such file")
                                                  : std::string(std::strerror(errno))) +
                          "; give an existing, readable file");
                    }
                    if (!S_ISREG(st.st_mode)) {
                      return Status::InvalidArgument(head + "not a regular file; give a file");
                    }
                    if (::access(path.c_str(), R_OK) != 0) {
                      return Status::InvalidArgument(head + "cannot be read (" +
                                                     std::strerror(errno) +
                                                     "); give a readable file");
                    }
                    return Status::Ok();
                  }});
}

OptionRules& OptionRules::ExistingDir(const char* name) {
  std::string n = name;
  return Add(Rule{n, "", nullptr, [n](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    const std::string path = p[n].as<std::string>();
                    std::error_code ec;
                    if (!path.empty() && std::filesystem::is_directory(path, ec)) {
                      return Status::Ok();
                    }
                    return Status::InvalidArgument("--" + n + " " + Shown(path) +
                                                   ": not an existing directory; give one");
                  }});
}

OptionRules& OptionRules::DirOrAbsent(const char* name) {
  std::string n = name;
  return Add(Rule{n, "", nullptr, [n](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    const std::string path = p[n].as<std::string>();
                    std::error_code ec;
                    auto st = std::filesystem::status(path, ec);
                    if (path.empty()) {
                      return Status::InvalidArgument("--" + n + " '': give a directory");
                    }
                    if (!std::filesystem::exists(st) || std::filesystem::is_directory(st)) {
                      return Status::Ok();
                    }
                    return Status::InvalidArgument("--" + n + " " + Shown(path) +
                                                   ": exists and is not a directory; give a "
                                                   "directory");
                  }});
}

OptionRules& OptionRules::WritableFile(const char* name) {
  std::string n = name;
  return Add(Rule{n, "", nullptr, [n](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    const std::string path = p[n].as<std::string>();
                    const std::string head = "--" + n + " " + Shown(path) + ": ";
                    namespace fs = std::filesystem;
                    std::error_code ec;
                    if (path.empty()) return Status::InvalidArgument(head + "give a file name");
                    if (fs::is_directory(path, ec)) {
                      return Status::InvalidArgument(head + "is a directory; give a file name");
                    }
                    fs::path parent = fs::path(path).parent_path();
                    if (!parent.empty() && !fs::is_directory(parent, ec)) {
                      return Status::InvalidArgument(head + "directory " + parent.string() +
                                                     " does not exist; create it first");
                    }
                    return Status::Ok();
                  }});
}

OptionRules& OptionRules::OneOf(const char* name, std::vector<std::string> allowed) {
  std::string n = name;
  std::string text = "use " + JoinOr(allowed);
  return Add(Rule{n, text, nullptr, [n, text, allowed](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0 && !p[n].has_default()) return Status::Ok();
                    const std::string v = p[n].as<std::string>();
                    for (const auto& a : allowed) {
                      if (v == a) return Status::Ok();
                    }
                    return Status::InvalidArgument("--" + n + " " + Shown(v) + ": " + text);
                  }});
}

OptionRules& OptionRules::EachOneOf(const char* name, std::vector<std::string> allowed) {
  std::string n = name;
  std::string text = "use " + JoinOr(allowed);
  return Add(Rule{n, text, nullptr, [n, text, allowed](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    for (const auto& v : p[n].as<std::vector<std::string>>()) {
                      bool ok = false;
                      for (const auto& a : allowed) ok |= v == a;
                      if (!ok) {
                        return Status::InvalidArgument("--" + n + " " + Shown(v) + ": " + text);
                      }
                    }
                    return Status::Ok();
                  }});
}

OptionRules& OptionRules::Satisfies(const char* name,
                                    std::function<Status(const std::string&)> check) {
  std::string n = name;
  return Add(Rule{n, "", nullptr, [n, check](const cxxopts::ParseResult& p) {
                    if (p.count(n) == 0) return Status::Ok();
                    Status s = check(p[n].as<std::string>());
                    return s.ok() ? s : Status::InvalidArgument(s.message());
                  }});
}

Status OptionRules::Check(const cxxopts::ParseResult& parsed) const {
  for (const auto& r : rules_) {
    Status s = r.check(parsed);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::string OptionRules::ExplainParseError(const std::vector<std::string>& args) const {
  for (const auto& r : rules_) {
    if (!r.parses) continue;
    for (const auto& v : RawValues(args, r.name)) {
      if (!r.parses(v)) return "--" + r.name + " " + Shown(v) + ": " + r.allowed;
    }
  }
  return "";
}

}  // namespace grin::cli
