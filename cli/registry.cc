#include "cli/command.h"

namespace grin::cli {

// Declared here, defined in cli/commands/<name>.cc.
int RunInit(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunConfigCommand(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunStatus(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunSql(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunRetry(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunSync(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunExport(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunExtract(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunCollect(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunEnrich(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunRequest(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunAuth(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunStorage(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunDoctor(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunVerify(const std::vector<std::string>&, std::ostream&, std::ostream&);

int RunReport(const std::vector<std::string>&, std::ostream&, std::ostream&);
int RunMigrateState(const std::vector<std::string>&, std::ostream&, std::ostream&);

const std::vector<CommandInfo>& Commands() {
  static const std::vector<CommandInfo> kCommands = {
      {"init", "Create a run directory with its database and run_config.json", RunInit},
      {"config", "A run's settings: `config show`, `config set KEY VALUE` (validated), `unset`",
       RunConfigCommand},
      {"status", "Show a run's progress: stages, failures, rate, ETA (read-only)", RunStatus},
      {"sql", "Run a read-only SQL query on a run's database", RunSql},
      {"retry", "Requeue failed or dead jobs", RunRetry},
      {"sync", "Copy books from GRIN into storage (resumable main job)", RunSync},
      {"export", "Write the books table as CSV (reference column order)", RunExport},
      {"extract", "Decrypt and extract OCR JSONL + MARC metadata from local archives", RunExtract},
      {"auth", "GRIN sign-in: `auth setup` (OAuth2 installed-app flow), `auth status`", RunAuth},
      {"collect", "Collect the library's book list from GRIN into books.db (resumable)", RunCollect},
      {"enrich", "Fill GRIN metadata for collected books (_barcode_search)", RunEnrich},
      {"request", "Request conversion of books from GRIN (_process), within the queue", RunRequest},
      {"storage", "Object storage: ls | head | cp | rm (S3, R2, MinIO or a local folder)",
       RunStorage},
      {"doctor", "Check a run in seconds: GRIN sign-in, passphrase, buckets, clock, disk, DB",
       RunDoctor},
      {"verify", "Check storage against the run's state; --deep hashes, --requeue redoes", RunVerify},

      {"report", "Write the run's HTML report (charts over time, failures, ETA)", RunReport},
      {"migrate-state", "Move a run's state from books.db to PostgreSQL (--to URL), verified",
       RunMigrateState},
  };
  return kCommands;
}

}  // namespace grin::cli
