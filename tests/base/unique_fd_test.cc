// engine/base/unique_fd.h and errno_status.h: a descriptor is closed exactly once by its last
// owner; errno values map to the codes the pipeline's stop-or-fail decisions rely on.
#include "engine/base/errno_status.h"
#include "engine/base/unique_fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace grin {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST_CASE("UniqueFd closes on destruction and hands ownership on move") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    UniqueFd a(raw);
    CHECK(a.valid());
    UniqueFd b = std::move(a);
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    CHECK(IsOpen(raw));
    UniqueFd c;
    c = std::move(b);
    CHECK(IsOpen(raw));
  }
  CHECK_FALSE(IsOpen(raw));
}

TEST_CASE("UniqueFd Reset closes and Release gives the descriptor up") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  UniqueFd a(raw);
  a.Reset();
  CHECK_FALSE(a.valid());
  CHECK_FALSE(IsOpen(raw));

  raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    UniqueFd b(raw);
    CHECK(b.Release() == raw);
  }
  CHECK(IsOpen(raw));
  ::close(raw);
}

TEST_CASE("ErrnoStatus maps disk-full, missing and permission errors") {
  CHECK(IsNoSpaceErrno(ENOSPC));
  CHECK(IsNoSpaceErrno(EDQUOT));
  CHECK_FALSE(IsNoSpaceErrno(EIO));
  CHECK(ErrnoStatus(ENOSPC, "write x").code() == StatusCode::kNoSpace);
  CHECK(ErrnoStatus(EDQUOT, "write x").code() == StatusCode::kNoSpace);
  CHECK(ErrnoStatus(ENOENT, "open x").code() == StatusCode::kNotFound);
  CHECK(ErrnoStatus(EACCES, "open x").code() == StatusCode::kPermissionDenied);
  CHECK(ErrnoStatus(EPERM, "open x").code() == StatusCode::kPermissionDenied);
  CHECK(ErrnoStatus(EROFS, "open x").code() == StatusCode::kPermissionDenied);
  CHECK(ErrnoStatus(EIO, "read x").code() == StatusCode::kInternal);
  CHECK(ErrnoStatus(EIO, "read x", StatusCode::kUnavailable).code() == StatusCode::kUnavailable);
  const Status s = ErrnoStatus(ENOENT, "open /nope");
  CHECK(s.message().rfind("open /nope: ", 0) == 0);
  CHECK(s.message().size() > std::string("open /nope: ").size());
}

}  // namespace
}  // namespace grin
