#include "tests/fuzz/fuzz_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace grin::fuzz {

void WriteFileOrDie(const std::string& path, std::string_view bytes, int mode) {
  unlink(path.c_str());  // a new file, not a truncated one (no flush on close)
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  fchmod(fd, static_cast<mode_t>(mode));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      std::perror(path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(w);
  }
  close(fd);
}

namespace {
struct Scratch {
  std::string dir;
  Scratch() {
    // Memory-backed if possible: each input is written (and run_config.json renamed over) once
    // per execution, and on a disk file system every truncate or rename flushes.
    const char* tmp = std::getenv("TMPDIR");
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
    std::string tmpl = base + "/grin-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};
}  // namespace

const std::string& ScratchDir() {
  static Scratch scratch;
  return scratch.dir;
}

}  // namespace grin::fuzz
