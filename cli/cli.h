#pragma once
// The grin-jobs command line as a library: RunCli(args, out, err) -> exit code, so tests run
// commands in-process. main() only does process-wide setup and calls Main().
//
// Exit codes (documented in README.md and `grin-jobs --help`):
//   0  success
//   1  the operation failed (one clear line on stderr says why)
//   2  usage error (unknown command or option, bad value)
//   3  the run is in use by another process (its lock is held)
//   4  the run's database cannot be used (missing, corrupt, newer schema, unwritable)
//   5  the run finished but some selected books ended dead, or a queue could not be listed
//   6  verify: some done book's storage does not match its state (run with --requeue, then sync)
//   130  sync was interrupted (Ctrl-C) before every selected book was done

#include <ostream>
#include <string>
#include <vector>

namespace grin::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitLocked = 3;
inline constexpr int kExitDatabase = 4;
// The run finished, but some selected books ended dead (failed for good) or a queue could not
// be listed: the operator has books to look at (`grin-jobs status`, `retry`).
inline constexpr int kExitBooksFailed = 5;
// verify found a done book whose storage does not match its state (a raw archive missing, of
// the wrong size or digest; an OCR object or MARC columns missing): `verify --requeue`, then
// `sync`, redoes them. Unknown objects and litter alone do not make it fail.
inline constexpr int kExitVerifyMismatch = 6;
// sync was interrupted (Ctrl-C) before every selected book was done: rerun to continue.
inline constexpr int kExitInterrupted = 130;

// args excludes the program name. Never throws.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Process-wide initialisation (once, before threads), then RunCli.
int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace grin::cli
