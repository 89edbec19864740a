#pragma once
// A run: a directory holding books.db, run_config.json, the lock, backups/ and staging/ (on a
// PostgreSQL run the job state is on the server that "state" names, and there is no books.db).
// run_config.json holds a run's settings: written by `init`, changed by `grin-jobs config set`
// (cli/commands/settings.h knows every key and its rule); later commands read it. "sync" holds
// sync's stored defaults (sync.workers, sync.queue, ...). Secrets never go in it (credentials are
// found by cli/credentials_search.h; the config only names paths).
//
// {
//   "run_name": "...", "library_directory": "Harvard",
//   "grin_base_url": "https://books.google.com/libraries/", "grin_token_url": "...",
//   "credentials_dir": "...", "ca_file": "...",
//   "storage": {"type": "local|s3|r2|minio", "base_path": "...", "endpoint_url": "...",
//               "region": "...", "path_style": true, "bucket_raw": "...", "bucket_meta": "...",
//               "bucket_full": "...", "prefix": "", "credentials_file": "...", "profile": "...",
//               "ca_file": "..."},
//   "sync": {"queue": ["converted"], "workers": 16, "grin_rate": 2.5, "durable": true, ...},
//   "state": "postgresql://grin@db.example.org:5432/grin_jobs?sslmode=verify-full"
// }
// "state" is where the job state lives: absent or "" = books.db in the run directory (SQLite);
// a postgresql:// (or postgres://) URI = a PostgreSQL run (cli/state_factory.h). Set by
// `grin-jobs init --state` only (not a `config set` key). Never a password: libpq finds it in
// PGPASSFILE / ~/.pgpass or PGPASSWORD.

#include <string>

#include <nlohmann/json.hpp>

#include "engine/base/result.h"

namespace grin::cli {

inline constexpr const char* kDefaultGrinBaseUrl = "https://books.google.com/libraries/";
inline constexpr const char* kDefaultGrinTokenUrl = "https://oauth2.googleapis.com/token";

struct RunConfig {
  std::string run_name;
  std::string library_directory;
  std::string grin_base_url = kDefaultGrinBaseUrl;
  std::string grin_token_url = kDefaultGrinTokenUrl;
  std::string credentials_dir;
  std::string ca_file;
  nlohmann::json storage = nlohmann::json::object();
  nlohmann::json sync = nlohmann::json::object();
  // Where the run's job state lives: "" (key absent) = <run_dir>/books.db (SQLite), else a
  // PostgreSQL connection string without a password (`migrate-state --to`).
  std::string state;
};

// True when the run's job state is on PostgreSQL (config.state is not empty).
inline bool IsPostgresRun(const RunConfig& config) { return !config.state.empty(); }

// Paths inside a run directory.
std::string DbPath(const std::string& run_dir);          // <run_dir>/books.db
std::string ConfigPath(const std::string& run_dir);      // <run_dir>/run_config.json

// Reads <run_dir>/run_config.json. kNotFound if absent; kInvalidArgument naming the field if a
// field has the wrong type or the file is not JSON.
Result<RunConfig> LoadRunConfig(const std::string& run_dir);

// Writes run_config.json atomically (temp file + rename), mode 0644.
Status SaveRunConfig(const std::string& run_dir, const RunConfig& config);

nlohmann::json ToJson(const RunConfig& config);

}  // namespace grin::cli
