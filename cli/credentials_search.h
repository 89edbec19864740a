#pragma once
// One search order for every secret file grin-jobs reads, used by every command:
//
//   1. --credentials-dir DIR (the command's flag), else the run's credentials_dir
//      (run_config.json; `grin-jobs config set credentials_dir DIR`)
//   2. $GRIN_JOBS_CONFIG_DIR
//   3. $GRIN_CREDENTIALS_DIR (the reference tool's variable)
//   4. ~/.config/grin-jobs
//   5. ~/.config/grin-transfer (the reference tool's directory: a migrating user's files)
//
// Each secret is looked up on its own: the first directory holding its file wins. The secrets:
// the OAuth client (client_secret.json, or the reference tool's secrets.json), the GRIN token
// (credentials.json), the GPG passphrase (gpg_passphrase.asc; --passphrase-file wins over the
// search) and R2 keys (r2_credentials.json, for `storage.type r2` runs without
// storage.credentials_file). A found file's path and the step that found it can be reported;
// its contents never are. When nothing is found, the error lists every path tried and the fix.
// Reading a found file keeps its own checks (credentials.json and the passphrase must be 0600,
// engine/base/private_file.h).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/run_config.h"
#include "engine/base/result.h"

namespace grin::cli {

enum class SecretKind { kClientSecret, kToken, kPassphrase, kR2Keys };

// "client_secret.json", "credentials.json", "gpg_passphrase.asc", "r2_credentials.json".
const char* SecretFileName(SecretKind kind);

struct SearchDir {
  std::string path;
  std::string source;  // "--credentials-dir", "run config credentials_dir", "$GRIN_JOBS_CONFIG_DIR", ...
};

struct FoundSecret {
  std::string path;
  std::string source;  // the SearchDir's source, or "--passphrase-file"
};

class CredentialsSearch {
 public:
  using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

  // The process environment.
  static EnvLookup ProcessEnv();

  // `flag_dir`: the command's --credentials-dir ("" = not given); `config`: the run's config or
  // null (no run). `env` is injected by tests (HOME, GRIN_JOBS_CONFIG_DIR, GRIN_CREDENTIALS_DIR).
  CredentialsSearch(const std::string& flag_dir, const RunConfig* config,
                    const EnvLookup& env = ProcessEnv());

  // The directories in search order (steps that are unset are left out; duplicates once).
  const std::vector<SearchDir>& dirs() const { return dirs_; }

  // The first existing regular file for `kind`. kNotFound: "no <file> found (looked for A, B,
  // ...); <what to do>" — the paths tried and the fix, one line.
  Result<FoundSecret> Find(SecretKind kind) const;

  // The passphrase: `explicit_path` (--passphrase-file) when given, alone; else Find.
  Result<FoundSecret> FindPassphrase(const std::string& explicit_path) const;

  // Where `auth setup` writes credentials.json: the first directory of the order that is not the
  // reference tool's (~/.config/grin-transfer is read, never written).
  SearchDir WriteDir() const;

 private:
  std::vector<SearchDir> dirs_;
};

// "PATH (from SOURCE)": safe to print (a path, never contents).
std::string Describe(const FoundSecret& found);

// The run's storage block as OpenObjectStore should see it: for an r2 run without
// storage.credentials_file, r2_credentials.json found by `search` becomes its credentials_file
// (*found says which, if any). Other storage types and an explicit credentials_file are unchanged
// (AWS's own chain then applies: environment, ~/.aws/credentials).
nlohmann::json WithStorageCredentials(const nlohmann::json& storage,
                                      const CredentialsSearch& search,
                                      std::optional<FoundSecret>* found = nullptr);

}  // namespace grin::cli
