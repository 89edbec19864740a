#include "engine/base/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace grin {

bool IsNoSpaceErrno(int err) { return err == ENOSPC || err == EDQUOT; }

Status ErrnoStatus(int err, std::string_view what, StatusCode otherwise) {
  std::string m = std::string(what) + ": " + std::strerror(err);
  if (IsNoSpaceErrno(err)) return Status::NoSpace(std::move(m));
  if (err == ENOENT) return Status::NotFound(std::move(m));
  if (err == EACCES || err == EPERM || err == EROFS) return Status::PermissionDenied(std::move(m));
  return Status(otherwise, std::move(m));
}

}  // namespace grin
