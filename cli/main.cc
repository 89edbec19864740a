// grin-jobs: global init, then RunCli. Everything else is in cli/cli.cc.
#include <string>
#include <vector>
#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return grin::cli::Main(args, std::cout, std::cerr);
}
