// grin-jobs init: create a run directory with its database and run_config.json.
#include <SQLiteCpp/Database.h>

#include <filesystem>

#include "cli/cli.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "storage/database.h"
#include "storage/run_lock.h"

namespace grin::cli {

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
      "storage-config", "Storage setting key=value (repeatable): endpoint_url, region, "
      "bucket_raw, bucket_meta, bucket_full, prefix, credentials_file, profile, ca_file",
      cxxopts::value<std::vector<std::string>>());
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code)) return code;
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "init", run_dir.status());

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
  if (type != "local" && type != "s3" && type != "r2" && type != "minio") {
    return ReportError(err, "init", Status::InvalidArgument(
                                        "--storage '" + type + "': use local, s3, r2 or minio"));
  }
  config.storage["type"] = type;
  if (parsed.count("storage-path")) config.storage["base_path"] = parsed["storage-path"].as<std::string>();
  if (parsed.count("storage-config")) {
    for (const auto& kv : parsed["storage-config"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return ReportError(err, "init", Status::InvalidArgument("--storage-config '" + kv +
                                                                "': expected key=value"));
      }
      config.storage[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
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
