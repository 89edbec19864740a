#include "cli/command.h"

namespace grin::cli {

// Declared here, defined in cli/commands/<name>.cc.
int RunInit(const std::vector<std::string>&, std::ostream&, std::ostream&);

const std::vector<CommandInfo>& Commands() {
  static const std::vector<CommandInfo> kCommands = {
  };
  return kCommands;
}

}  // namespace grin::cli
