#pragma once
// The checks of `grin-jobs doctor`, each quick (seconds) and each ending in one verdict line:
// pass, warn or fail, with the fix for anything not passing. doctor.cc runs them and prints.

#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands/grin_stack.h"
#include "cli/run_config.h"

namespace grin::cli::doctor {

// kSkip: a check that does not apply to this run (the line says why); neither a warning nor a
// failure.
enum class Level { kPass, kWarn, kFail, kSkip };
const char* LevelName(Level level);  // "pass" | "warn" | "fail" | "skip"

struct CheckResult {
  std::string name;  // "oauth", "passphrase", "storage raw", "clock grin", ...
  Level level = Level::kPass;
  std::string message;  // what was found; never a secret
  std::string fix;      // one line; "" when passing
};

// A server's Date header (unix seconds) and the local time halfway through the request.
struct ServerTime {
  bool known = false;
  int64_t server_s = 0;
  double local_s = 0;
};

// (a) Refreshes the OAuth token now (reports its expiry) and asks GRIN for one line of the
// library's directory, proving the account is on the access list. *grin_time: GRIN's Date.
CheckResult CheckOAuth(TransferStack& stack, ServerTime* grin_time);

// (b) Fetches the first kPassphraseCheckBytes of one converted archive (a Range request; the
// transfer is cut there if GRIN ignores the Range) and checks the passphrase against them.
// passphrase_file: --passphrase-file or "" (the usual search).
CheckResult CheckPassphrase(TransferStack& stack, const RunConfig& config,
                            const std::string& passphrase_file);

// (c) Writes, reads back, compares and deletes a probe object in each bucket of the layout.
// *storage_time: the storage endpoint's Date (S3-compatible stores only).
std::vector<CheckResult> CheckStorage(TransferStack& stack, const RunConfig& config,
                                      ServerTime* storage_time);

// (d) The skew between the local clock and a server's Date: warn beyond 60 s, fail beyond 15 min
// (S3 refuses signatures beyond that).
CheckResult CheckClock(const std::string& server, const ServerTime& time);

// (e) Free space where staging and the run database live, against the staging limit and the
// database's expected growth.
CheckResult CheckDiskSpace(const std::string& run_dir, const std::string& staging_dir,
                           uint64_t staging_limit_bytes);

// (f) The run database: PRAGMA quick_check, schema version, and whether another process holds
// the run lock (reported, not a failure).
std::vector<CheckResult> CheckRunDb(const std::string& run_dir);

// (f) on a run whose state is on PostgreSQL (`uri`, run_config.json's "state"): the server
// answers, the schema version against this build's, the kept counts against the rows
// (storage/postgres/pg_health.h; one read-only pass over jobs and books), the host-local run
// lock, and the sync workers live on the run (any host). The books.db checks are reported as
// skipped, saying why. Never shows a password.
std::vector<CheckResult> CheckPgRunDb(const std::string& run_dir, const std::string& uri);

// (g) Books in GRIN's conversion queue (_in_process) against grin_client::kQueueCap.
CheckResult CheckQueue(TransferStack& stack);

// Parses an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 if it is not one.
int64_t ParseHttpDate(const std::string& text);

}  // namespace grin::cli::doctor
