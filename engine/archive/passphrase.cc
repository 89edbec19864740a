#include "engine/archive/passphrase.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "engine/base/subprocess.h"
#include "engine/base/private_file.h"

namespace grin::archive {

PassphraseSearch PassphraseSearch::FromEnvironment(std::string explicit_path,
                                                   std::string secrets_dir) {
  PassphraseSearch s;
  s.explicit_path = std::move(explicit_path);
  s.secrets_dir = std::move(secrets_dir);
  if (const char* c = std::getenv("GRIN_CREDENTIALS_DIR")) s.credentials_dir = c;
  if (const char* h = std::getenv("HOME")) s.home = h;
  return s;
}

std::vector<std::string> PassphraseSearch::Candidates() const {
  if (!explicit_path.empty()) return {explicit_path};
  std::vector<std::string> dirs;
  if (!credentials_dir.empty()) dirs.push_back(credentials_dir);
  if (!secrets_dir.empty()) {
    dirs.push_back(secrets_dir);
  } else if (!home.empty()) {
    dirs.push_back(home + "/.config/grin-transfer");
  }
  if (!home.empty()) {
    dirs.push_back(home);
    dirs.push_back(home + "/.grin");
    dirs.push_back(home + "/.config");
  }
  std::vector<std::string> out;
  for (const auto& d : dirs) out.push_back(d + "/" + kPassphraseFileName);
  return out;
}

Result<std::string> FindPassphraseFile(const PassphraseSearch& search) {
  std::vector<std::string> candidates = search.Candidates();
  std::string tried;
  for (const auto& c : candidates) {
    struct stat st;
    if (::stat(c.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return c;
    tried += (tried.empty() ? "" : ", ") + c;
  }
  return Status::NotFound("no passphrase file found (looked for " + tried + ")");
}

Result<Secret> ReadPassphraseFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return Status::PermissionDenied("cannot read passphrase file " + path + ": " +
                                    strerror(errno));
  }
  // Like GRIN's credentials.json: a secret others can read is refused, checked on the file read.
  GRIN_RETURN_IF_ERROR(CheckPrivateFd(fd.get(), path, "passphrase file"));
  Secret content;
  std::string buf(4097, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return Status::PermissionDenied("cannot read passphrase file " + path + ": " +
                                      strerror(errno));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  if (got > 4096) {
    Secret wipe(std::move(buf));
    return Status::InvalidArgument("passphrase file " + path + " is larger than 4 KiB");
  }
  size_t end = 0;
  while (end < got && buf[end] != '\n' && buf[end] != '\r') ++end;
  Secret line(buf.substr(0, end));
  Secret wipe(std::move(buf));
  if (line.empty()) return Status::InvalidArgument("passphrase file " + path + " is empty");
  return line;
}

}  // namespace grin::archive
