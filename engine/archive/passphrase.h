#pragma once
// Finding and reading GRIN's passphrase file the way the reference tool does (grin-transfer):
// `gpg_passphrase.asc` in $GRIN_CREDENTIALS_DIR, then the secrets directory (default
// ~/.config/grin-transfer), ~, ~/.grin, ~/.config — or an explicit path, which wins.
// The passphrase is the file's first line. Its value is never logged or put in argv.

#include <optional>
#include <string>
#include <vector>

#include "engine/archive/decryptor.h"
#include "engine/base/result.h"

namespace grin::archive {

inline constexpr const char* kPassphraseFileName = "gpg_passphrase.asc";

struct PassphraseSearch {
  std::string explicit_path;    // --passphrase-file; used alone when set
  std::string credentials_dir;  // $GRIN_CREDENTIALS_DIR
  std::string secrets_dir;      // --secrets-dir; replaces ~/.config/grin-transfer
  std::string home;             // $HOME

  // Fills credentials_dir and home from the environment.
  static PassphraseSearch FromEnvironment(std::string explicit_path, std::string secrets_dir);
  // The candidate paths in search order.
  std::vector<std::string> Candidates() const;
};

// The first existing candidate; kNotFound naming the places searched.
Result<std::string> FindPassphraseFile(const PassphraseSearch& search);

// Reads the first line (without CR/LF). kInvalidArgument if empty, kPermissionDenied if
// unreadable or open to other users (group/other permission bits set, like a credentials.json:
// the message names the file and `chmod 600 FILE`), kInvalidArgument if larger than 4 KiB (not a
// passphrase file).
Result<Secret> ReadPassphraseFile(const std::string& path);

}  // namespace grin::archive
