#include "engine/base/private_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace grin {

Status CheckPrivateMode(unsigned mode, const std::string& path, std::string_view what) {
  if ((mode & 077) == 0) return Status::Ok();
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode & 07777);
  return Status::PermissionDenied(std::string(what) + " " + path +
                                  " is open to other users (mode " + octal + "); run `chmod 600 " +
                                  path + "`");
}

Status CheckPrivateFd(int fd, const std::string& path, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::PermissionDenied("cannot stat " + std::string(what) + " " + path + ": " +
                                    std::strerror(errno));
  }
  return CheckPrivateMode(st.st_mode, path, what);
}

Status CheckPrivateFile(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    std::string m = "cannot stat " + std::string(what) + " " + path + ": " + std::strerror(e);
    return e == ENOENT ? Status::NotFound(m) : Status::PermissionDenied(m);
  }
  return CheckPrivateMode(st.st_mode, path, what);
}

}  // namespace grin
