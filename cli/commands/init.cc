// grin-jobs init: create a run directory with its database and run_config.json, or upgrade an
// existing run's database. The adapter over jobs::InitRun (cli/facade/run.cc): the flags become
// settings, checked and compared with an existing run's here; the facade makes the run.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <set>

#include "cli/cli.h"
#include "cli/object_store_factory.h"
#include "cli/commands/settings.h"
#include "cli/run_config.h"
#include "cli/facade/run_impl.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"

namespace grin::cli {
namespace {

const std::vector<std::string>& kStorageConfigKeys = StorageConfigKeys();  // the one list

// The settings init's flags give, as run_config.json stores them (cli/commands/settings.h):
// each checked by its setting's rule, kInvalidArgument naming the option, the value and what is
// allowed. Only flags given on the command line (and --storage, whose default is local).
Result<std::vector<std::pair<std::string, nlohmann::json>>> InitSettings(
    const cxxopts::ParseResult& parsed) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  auto add = [&](const char* flag, const std::string& key) -> Status {
    if (parsed.count(flag) == 0) return Status::Ok();
    const std::string v = parsed[flag].as<std::string>();
    GRIN_ASSIGN_OR_RETURN(nlohmann::json j,
                          ParseSetting(key, v, std::string("--") + flag + " '" +
                                                   v.substr(0, 200) + "'"));
    out.emplace_back(key, j);
    return Status::Ok();
  };
  GRIN_RETURN_IF_ERROR(add("library-directory", "library_directory"));
  GRIN_RETURN_IF_ERROR(add("grin-base-url", "grin_base_url"));
  GRIN_RETURN_IF_ERROR(add("credentials-dir", "credentials_dir"));
  GRIN_RETURN_IF_ERROR(add("storage", "storage.type"));
  GRIN_RETURN_IF_ERROR(add("storage-path", "storage.base_path"));
  GRIN_RETURN_IF_ERROR(add("endpoint-url", "storage.endpoint_url"));
  if (parsed.count("storage-config") == 0) return out;
  std::set<std::string> seen;
  for (const auto& kv : parsed["storage-config"].as<std::vector<std::string>>()) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--storage-config '" + kv.substr(0, 200) +
                                     "': expected key=value");
    }
    const std::string key = kv.substr(0, eq);
    if (std::find(std::begin(kStorageConfigKeys), std::end(kStorageConfigKeys), key) ==
        std::end(kStorageConfigKeys)) {
      std::string keys;
      for (const auto& k : kStorageConfigKeys) keys += (keys.empty() ? "" : ", ") + k;
      return Status::InvalidArgument("--storage-config '" + kv.substr(0, 200) +
                                     "': unknown key '" + key + "'; use one of " + keys);
    }
    Status value_ok = CheckStorageValue(key, kv.substr(eq + 1));
    if (!value_ok.ok()) return Status::InvalidArgument("--storage-config " + value_ok.message());
    if (!seen.insert(key).second) {
      return Status::InvalidArgument("--storage-config " + key + " is given twice; give it once");
    }
    if (key == "endpoint_url" && parsed.count("endpoint-url")) {
      return Status::InvalidArgument("--storage-config endpoint_url and --endpoint-url name the "
                                     "same setting; give one");
    }
    if (key == "base_path" && parsed.count("storage-path")) {
      return Status::InvalidArgument("--storage-config base_path and --storage-path name the same "
                                     "setting; give one");
    }
    GRIN_ASSIGN_OR_RETURN(
        nlohmann::json j,
        ParseSetting("storage." + key, kv.substr(eq + 1),
                     "--storage-config '" + kv.substr(0, 200) + "'"));
    out.emplace_back("storage." + key, j);
  }
  return out;
}

// Shell-quoted for a command the user can paste.
std::string Quoted(const std::string& v) {
  bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_./:=,@+", c) != nullptr;
  });
  if (plain) return v;
  std::string q = "'";
  for (char c : v) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string Text(const nlohmann::json& j) {
  if (j.is_null()) return "(not set)";
  return j.is_string() ? j.get<std::string>() : j.dump();
}

// The settings given that differ from the existing run's, as "KEY is 'NOW', not 'GIVEN':
// `grin-jobs config set ...`" joined by "; " ("" when none differ).
std::string Differences(const RunConfig& existing,
                        const std::vector<std::pair<std::string, nlohmann::json>>& settings,
                        const std::string& run_dir) {
  std::string differ;
  for (const auto& [key, value] : settings) {
    nlohmann::json now = GetSetting(existing, key);
    if (key == "storage.type" && now.is_null()) now = "local";
    if (now == value) continue;
    // A path stored as given by an older init (relative) names the same place.
    if (now.is_string() && value.is_string() &&
        std::filesystem::absolute(now.get<std::string>()).lexically_normal().string() ==
            value.get<std::string>()) {
      continue;
    }
    differ += std::string(differ.empty() ? "" : "; ") + key + " is '" + Text(now) + "', not '" +
              Text(value) + "': `grin-jobs config set --run-dir " + Quoted(run_dir) + " " + key +
              " " + Quoted(Text(value)) + "`";
  }
  return differ;
}

}  // namespace

int RunInit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs init",
                           "Create a run: a directory holding books.db (the job state) and "
                           "run_config.json (settings later commands read). Running it again on "
                           "an existing run upgrades its database schema; flags that differ from "
                           "the run's settings are refused (exit 2): change a setting with "
                           "`grin-jobs config set KEY VALUE`, see them with `grin-jobs config "
                           "show`.");
  AddRunOptions(options);
  options.add_options()("library-directory", "GRIN library directory (e.g. Harvard)",
                        cxxopts::value<std::string>())(
      "credentials-dir", "Where this run's secret files are looked for first (stored as "
      "credentials_dir; then $GRIN_JOBS_CONFIG_DIR, $GRIN_CREDENTIALS_DIR, ~/.config/grin-jobs, "
      "~/.config/grin-transfer)", cxxopts::value<std::string>())(
      "grin-base-url", "GRIN base URL", cxxopts::value<std::string>()->default_value(
                                            kDefaultGrinBaseUrl))(
      "storage", "Storage type: local, s3, r2 or minio",
      cxxopts::value<std::string>()->default_value("local"))(
      "storage-path", "Base folder for local storage", cxxopts::value<std::string>())(
      "storage-config", "Storage setting key=value (repeatable; the value is taken whole, "
      "commas included). " + StorageConfigHelp() + ". Unset S3 settings come from AWS_REGION, "
      "AWS_ENDPOINT_URL_S3, AWS_CA_BUNDLE, AWS_PROFILE, ~/.aws/config and ~/.aws/credentials",
      cxxopts::value<std::vector<std::string>>())(
      "endpoint-url", "S3/R2/MinIO endpoint (same as --storage-config endpoint_url=URL)",
      cxxopts::value<std::string>())(
      "state", "Keep the run's job state on PostgreSQL instead of books.db: a "
      "postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full URI, without a password (it goes "
      "in ~/.pgpass, PGPASSFILE or PGPASSWORD). Fixed at init (docs/postgresql.md)",
      cxxopts::value<std::string>());
  OptionRules rules;
  rules.OneOf("storage", {"local", "s3", "r2", "minio"}).DirOrAbsent("storage-path");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "init", run_dir.status());
  // Every value is checked before the run directory, its lock or its database are touched.
  auto settings = InitSettings(parsed);
  if (!settings.ok()) return ReportError(err, "init", settings.status());
  const std::string state = parsed.count("state") ? parsed["state"].as<std::string>() : "";
  if (!state.empty()) {
    Status uri = CheckStateUri(state);
    if (!uri.ok()) return ReportError(err, "init", uri);
  }
  // An existing run keeps its settings: a flag that would change one is refused, naming the
  // command that changes it (never silently ignored).
  if (std::filesystem::exists(ConfigPath(*run_dir))) {
    auto existing = jobs::Run::Open({*run_dir, ""});
    if (!existing.ok()) return ReportError(err, "init", existing.status());
    std::string differ = Differences((*existing)->impl()->config, *settings, *run_dir);
    const std::string& now = (*existing)->impl()->config.state;
    if (parsed.count("state") && state != now) {
      differ += std::string(differ.empty() ? "" : "; ") + "state is '" +
                (now.empty() ? std::string("books.db (SQLite)")
                             : DescribeState(*run_dir, (*existing)->impl()->config)) +
                "', not '" + (state.empty() ? std::string("books.db (SQLite)") : state) +
                "': the state is fixed at init (a SQLite run moves with `grin-jobs "
                "migrate-state --to URI`)";
    }
    if (!differ.empty()) {
      err << "grin-jobs init: run " << *run_dir << " already exists with other settings (init "
          << "changes none): " << differ << "\n";
      return kExitUsage;
    }
  }
  RunConfig config;
  for (const auto& [key, value] : *settings) {
    Status set = SetSetting(&config, key, value);
    if (!set.ok()) return ReportError(err, "init", set);
  }
  config.state = state;
  auto created = jobs::InitRun(*run_dir, config);
  if (!created.ok()) return ReportError(err, "init", created.status());
  if (!*created) {
    out << "run " << *run_dir << " already exists; its database is up to date\n";
    return kExitOk;
  }
  out << "created run " << *run_dir << " (" << DescribeState(*run_dir, config) << ", "
      << ConfigPath(*run_dir) << ")\n";
  return kExitOk;
}

}  // namespace grin::cli
