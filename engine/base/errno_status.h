#pragma once
// The one mapping from a failed system call's errno to a Status, so a full disk, a missing file
// or a permission problem gets the same code wherever it happens (the pipeline's stop-or-fail
// decisions key on these codes: kNoSpace and kPermissionDenied stop a run, see status.h).
//
// Pure functions; thread-safe.

#include <string_view>

#include "engine/base/status.h"

namespace grin {

// True for the errno values that mean a disk or a quota is full: ENOSPC, EDQUOT.
bool IsNoSpaceErrno(int err);

// "<what>: <strerror(err)>" with the code err calls for:
//   ENOSPC, EDQUOT       -> kNoSpace
//   ENOENT               -> kNotFound
//   EACCES, EPERM, EROFS -> kPermissionDenied
//   anything else        -> `otherwise`
// Callers with a sharper meaning for one errno (EEXIST from O_EXCL, say) test it first.
Status ErrnoStatus(int err, std::string_view what, StatusCode otherwise = StatusCode::kInternal);

}  // namespace grin
