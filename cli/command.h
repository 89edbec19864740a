#pragma once
// One sub-command of grin-jobs. Each lives in cli/commands/<name>.cc and is listed in
// cli/registry.cc. Only implemented commands are listed.

#include <ostream>
#include <string>
#include <vector>

namespace grin::cli {

using CommandFn = int (*)(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err);

struct CommandInfo {
  const char* name;
  const char* summary;
  CommandFn run;  // args exclude the command name; "--help" must print usage and return 0
};

// Every command, in help order.
const std::vector<CommandInfo>& Commands();

}  // namespace grin::cli
