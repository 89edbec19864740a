#include "cli/credentials_search.h"

#include <sys/stat.h>

#include <cstdlib>

namespace grin::cli {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The file names tried in each directory, in order.
std::vector<std::string> FileNames(SecretKind kind) {
  switch (kind) {
    case SecretKind::kClientSecret: return {"client_secret.json", "secrets.json"};
    case SecretKind::kToken: return {"credentials.json"};
    case SecretKind::kPassphrase: return {"gpg_passphrase.asc"};
    case SecretKind::kR2Keys: return {"r2_credentials.json"};
  }
  return {};
}

std::string Fix(SecretKind kind) {
  switch (kind) {
    case SecretKind::kClientSecret:
      return "download the Google OAuth client (Desktop app) JSON to "
             "~/.config/grin-jobs/client_secret.json, or give --client-secret FILE";
    case SecretKind::kToken:
      return "run `grin-jobs auth setup` (or name the directory holding credentials.json with "
             "--credentials-dir or `grin-jobs config set credentials_dir DIR`)";
    case SecretKind::kPassphrase:
      return "put the library's GRIN passphrase on the first line of "
             "~/.config/grin-jobs/gpg_passphrase.asc (chmod 600), or give --passphrase-file, or "
             "`grin-jobs config set sync.passphrase_file FILE`";
    case SecretKind::kR2Keys:
      return "put r2_credentials.json in ~/.config/grin-jobs, or `grin-jobs config set "
             "storage.credentials_file FILE`";
  }
  return "";
}

}  // namespace

const char* SecretFileName(SecretKind kind) {
  switch (kind) {
    case SecretKind::kClientSecret: return "client_secret.json";
    case SecretKind::kToken: return "credentials.json";
    case SecretKind::kPassphrase: return "gpg_passphrase.asc";
    case SecretKind::kR2Keys: return "r2_credentials.json";
  }
  return "";
}

CredentialsSearch::EnvLookup CredentialsSearch::ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

CredentialsSearch::CredentialsSearch(const std::string& flag_dir, const RunConfig* config,
                                     const EnvLookup& env) {
  auto add = [this](const std::string& path, const std::string& source) {
    if (path.empty()) return;
    for (const auto& d : dirs_) {
      if (d.path == path) return;
    }
    dirs_.push_back({path, source});
  };
  if (!flag_dir.empty()) {
    add(flag_dir, "--credentials-dir");
  } else if (config != nullptr && !config->credentials_dir.empty()) {
    add(config->credentials_dir, "run config credentials_dir");
  }
  add(env("GRIN_JOBS_CONFIG_DIR").value_or(""), "$GRIN_JOBS_CONFIG_DIR");
  add(env("GRIN_CREDENTIALS_DIR").value_or(""), "$GRIN_CREDENTIALS_DIR");
  const std::string home = env("HOME").value_or("");
  if (!home.empty()) {
    add(home + "/.config/grin-jobs", "~/.config/grin-jobs");
    add(home + "/.config/grin-transfer", "~/.config/grin-transfer");
  }
}

Result<FoundSecret> CredentialsSearch::Find(SecretKind kind) const {
  std::string tried;
  for (const auto& d : dirs_) {
    for (const auto& name : FileNames(kind)) {
      const std::string path = d.path + "/" + name;
      if (IsRegularFile(path)) return FoundSecret{path, d.source};
      tried += (tried.empty() ? "" : ", ") + path;
    }
  }
  if (tried.empty()) tried = "nowhere: HOME is not set and no directory was given";
  return Status::NotFound("no " + std::string(SecretFileName(kind)) + " found (looked for " +
                          tried + "); " + Fix(kind));
}

Result<FoundSecret> CredentialsSearch::FindPassphrase(const std::string& explicit_path) const {
  if (explicit_path.empty()) return Find(SecretKind::kPassphrase);
  if (!IsRegularFile(explicit_path)) {
    return Status::NotFound("passphrase file " + explicit_path +
                            " (--passphrase-file) does not exist; give an existing file");
  }
  return FoundSecret{explicit_path, "--passphrase-file"};
}

SearchDir CredentialsSearch::WriteDir() const {
  for (const auto& d : dirs_) {
    if (d.source != "~/.config/grin-transfer") return d;
  }
  return {"./.config/grin-jobs", "the current directory (HOME is not set)"};
}

std::string Describe(const FoundSecret& found) {
  return found.path + " (from " + found.source + ")";
}

nlohmann::json WithStorageCredentials(const nlohmann::json& storage,
                                      const CredentialsSearch& search,
                                      std::optional<FoundSecret>* found) {
  if (found != nullptr) found->reset();
  nlohmann::json out = storage;
  auto type = storage.find("type");
  if (type == storage.end() || !type->is_string() || type->get<std::string>() != "r2") return out;
  auto file = storage.find("credentials_file");
  if (file != storage.end() && file->is_string() && !file->get<std::string>().empty()) return out;
  auto r2 = search.Find(SecretKind::kR2Keys);
  if (!r2.ok()) return out;  // AWS's chain (environment, ~/.aws/credentials) decides
  out["credentials_file"] = r2->path;
  if (found != nullptr) *found = *r2;
  return out;
}

}  // namespace grin::cli
