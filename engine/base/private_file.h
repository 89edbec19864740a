#pragma once
// Secret files (GRIN credentials, the GPG passphrase) must be open to their owner only: a file
// group or others may read, write or execute is refused, with one line naming it and the fix.
// One rule for every secret file, so they are checked alike.

#include <string>
#include <string_view>

#include "engine/base/status.h"

namespace grin {

// Ok if `mode` (st_mode) gives group and others nothing (mode & 077 == 0). Otherwise
// kPermissionDenied: "<what> <path> is open to other users (mode 0644); run `chmod 600 <path>`".
Status CheckPrivateMode(unsigned mode, const std::string& path, std::string_view what);

// The same for an open file (fstat), so the file checked is the file read.
Status CheckPrivateFd(int fd, const std::string& path, std::string_view what);

// The same by path (stat). kNotFound if the path does not exist.
Status CheckPrivateFile(const std::string& path, std::string_view what);

}  // namespace grin
