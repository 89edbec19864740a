// grin-jobs: global init, then RunCli. Everything else is in cli/cli.cc.
#include <malloc.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // Book-sized buffers (a decrypted archive held for its upload, download chunks) come and go
  // by the thousand. glibc serves blocks over 128 KiB with a fresh mmap and unmaps them on free,
  // so every book paid page faults and zeroing for each of them (~7 % of the client's CPU in the
  // bench-sync profile). Keep blocks up to 32 MiB in the heap and keep freed memory for reuse;
  // the pipeline's memory budget bounds how much that can be.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // Few arenas: with 64 workers glibc would make 16, each keeping its own free book-sized blocks
  // (peak RSS 275 MiB vs 253 with 2 at 64 books in flight, same CPU; allocation is per book, not
  // per byte, so the arenas are not contended).
  mallopt(M_ARENA_MAX, 2);
  std::vector<std::string> args(argv + 1, argv + argc);
  return grin::cli::Main(args, std::cout, std::cerr);
}
