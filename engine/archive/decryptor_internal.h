#pragma once
// Backend factories behind NewDecryptor(); not part of the public API.

#include <memory>

#include "engine/archive/decryptor.h"

namespace grin::archive::internal {

Result<std::unique_ptr<Decryptor>> NewGpgDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink);
Result<std::unique_ptr<Decryptor>> NewRnpDecryptor(const DecryptOptions& options,
                                                   const Secret& passphrase, ByteSink* sink);

// Interprets gpg's --status-fd lines and exit status. Exposed for unit tests.
struct GpgVerdictInput {
  std::string status_text;  // everything read from the status fd
  int wait_status = 0;      // raw waitpid status
  std::string stderr_tail;  // last bytes of stderr, for the message
};
Status GpgVerdict(const GpgVerdictInput& in);

}  // namespace grin::archive::internal
