#include "cli/run_context.h"

#include <algorithm>
#include <filesystem>

#include "cli/cli.h"
#include "cli/log_setup.h"

namespace grin::cli {

void AddRunOptions(cxxopts::Options& options) {
  options.add_options("run")(
      "run-dir", "Run directory (holds books.db and run_config.json)",
      cxxopts::value<std::string>())(
      "run-name", "Run name; same as --run-dir output/NAME", cxxopts::value<std::string>());
}

Result<std::string> ResolveRunDir(const cxxopts::ParseResult& parsed) {
  bool has_dir = parsed.count("run-dir") > 0;
  bool has_name = parsed.count("run-name") > 0;
  if (has_dir && has_name) {
    return Status::InvalidArgument("give --run-dir or --run-name, not both");
  }
  if (has_dir) return parsed["run-dir"].as<std::string>();
  if (has_name) {
    std::string name = parsed["run-name"].as<std::string>();
    bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
    if (!ok) {
      return Status::InvalidArgument("--run-name '" + name +
                                     "' must be letters, digits, '-' or '_' only");
    }
    return (std::filesystem::path("output") / name).string();
  }
  return Status::InvalidArgument("which run? give --run-dir DIR or --run-name NAME");
}

int ReportError(std::ostream& err, const char* command, const Status& status) {
  err << "grin-jobs " << command << ": " << status.message() << "\n";
  switch (status.code()) {
    case StatusCode::kBusy: return kExitLocked;
    case StatusCode::kDataLoss:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
    case StatusCode::kResourceExhausted: return kExitDatabase;
    case StatusCode::kInvalidArgument: return kExitUsage;
    default: return kExitFailure;
  }
}

bool ParseArgs(cxxopts::Options& options, const std::vector<std::string>& args,
               std::ostream& out, std::ostream& err, cxxopts::ParseResult* parsed,
               int* exit_code, const OptionRules* rules) {
  options.add_options()("h,help", "Show this help");
  AddLogOptions(options);
  std::vector<std::string> storage;
  storage.push_back(options.program());
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  try {
    *parsed = options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const std::exception& e) {
    std::string why = rules != nullptr ? rules->ExplainParseError(args) : "";
    if (why.empty()) why = LogRules().ExplainParseError(args);
    err << options.program() << ": " << (why.empty() ? e.what() + std::string("; see --help") : why)
        << "\n";
    *exit_code = kExitUsage;
    return false;
  }
  if (parsed->count("help")) {
    out << options.help();
    *exit_code = kExitOk;
    return false;
  }
  if (Status s = CheckLogOptions(*parsed); !s.ok()) {
    err << options.program() << ": " << s.message() << "\n";
    *exit_code = kExitUsage;
    return false;
  }
  if (rules != nullptr) {
    Status s = rules->Check(*parsed);
    if (!s.ok()) {
      err << options.program() << ": " << s.message() << "\n";
      *exit_code = kExitUsage;
      return false;
    }
  }
  return true;
}

}  // namespace grin::cli
