// grin-jobs init: create a run directory with its database and run_config.json.
#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "cli/cli.h"
#include "cli/object_store_factory.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "storage/database.h"
#include "storage/run_lock.h"

namespace grin::cli {
namespace {

const std::vector<std::string>& kStorageConfigKeys = StorageConfigKeys();  // the one list

// --library-directory, --grin-base-url and each --storage-config: kInvalidArgument naming the
// option, the value and what is allowed.
Status CheckInitValues(const cxxopts::ParseResult& parsed) {
  if (parsed.count("library-directory")) {
    const std::string dir = parsed["library-directory"].as<std::string>();
    bool ok = !dir.empty() && dir.size() <= 100 && dir != "." && dir != ".." &&
              std::all_of(dir.begin(), dir.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                       c == '.';
              });
    if (!ok) {
      return Status::InvalidArgument("--library-directory '" + dir.substr(0, 100) +
                                     "': use GRIN's directory name (letters, digits, '-', '_', "
                                     "'.'), e.g. Harvard");
    }
  }
  const std::string url = parsed["grin-base-url"].as<std::string>();
  if ((url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) ||
      url.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument("--grin-base-url '" + url.substr(0, 200) +
                                   "': use an http:// or https:// URL");
  }
  if (parsed.count("endpoint-url")) {
    Status e = CheckStorageValue("endpoint_url", parsed["endpoint-url"].as<std::string>());
    if (!e.ok()) return Status::InvalidArgument("--endpoint-url: " + e.message());
  }
  if (parsed.count("storage-config") == 0) return Status::Ok();
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
  }
  return Status::Ok();
}

}  // namespace

int RunInit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs init",
                           "Create a run: a directory holding books.db (the job state) and "
                           "run_config.json (settings later commands read). Running it again on "
                           "an existing run upgrades its database schema and changes nothing "
                           "else.");
  AddRunOptions(options);
  options.add_options()("library-directory", "GRIN library directory (e.g. Harvard)",
                        cxxopts::value<std::string>())(
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
      cxxopts::value<std::string>());
  OptionRules rules;
  rules.OneOf("storage", {"local", "s3", "r2", "minio"}).DirOrAbsent("storage-path");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "init", run_dir.status());
  // Every value is checked before the run directory, its lock or its database are touched.
  Status checked = CheckInitValues(parsed);
  if (!checked.ok()) return ReportError(err, "init", checked);

  std::error_code ec;
  std::filesystem::create_directories(*run_dir, ec);
  if (ec) {
    return ReportError(err, "init", Status::PermissionDenied(*run_dir + ": cannot create the run "
                                                             "directory (" + ec.message() + ")"));
  }
  // Take the run lock so init never races a running sync.
  auto lock = storage::RunLock::Acquire(DbPath(*run_dir));
  if (!lock.ok()) return ReportError(err, "init", lock.status());
  bool existed = std::filesystem::exists(ConfigPath(*run_dir));
  // A new run may turn an empty books.db into a database; an existing run's empty books.db is
  // refused (it lost its data: restore a backup, or remove it to start the run's state anew).
  storage::DatabaseOptions dbo;
  dbo.init_empty = !existed;
  auto db = storage::OpenDatabase(DbPath(*run_dir), dbo);
  if (!db.ok()) return ReportError(err, "init", db.status());
  if (existed) {
    out << "run " << *run_dir << " already exists; its database is up to date\n";
    return kExitOk;
  }
  RunConfig config;
  config.run_name = std::filesystem::path(*run_dir).filename().string();
  if (parsed.count("library-directory")) {
    config.library_directory = parsed["library-directory"].as<std::string>();
  }
  config.grin_base_url = parsed["grin-base-url"].as<std::string>();
  std::string type = parsed["storage"].as<std::string>();
  config.storage["type"] = type;
  if (parsed.count("storage-path")) config.storage["base_path"] = parsed["storage-path"].as<std::string>();
  if (parsed.count("storage-config")) {
    for (const auto& kv : parsed["storage-config"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');  // CheckInitValues made sure there is one
      config.storage[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  if (parsed.count("endpoint-url")) {
    config.storage["endpoint_url"] = parsed["endpoint-url"].as<std::string>();
  }
  if (type == "local" && !config.storage.contains("base_path")) {
    config.storage["base_path"] = (std::filesystem::path(*run_dir) / "storage").string();
  }
  Status s = SaveRunConfig(*run_dir, config);
  if (!s.ok()) return ReportError(err, "init", s);
  out << "created run " << *run_dir << " (" << DbPath(*run_dir) << ", " << ConfigPath(*run_dir)
      << ")\n";
  return kExitOk;
}

}  // namespace grin::cli
