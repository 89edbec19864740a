#include "engine/base/unique_fd.h"

#include <unistd.h>

namespace grin {

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace grin
