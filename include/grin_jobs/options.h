#pragma once
// The options of each operation of a Run (run.h). Plain values; defaults are the CLI's.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace grin::jobs {

// Run::Create: a new run directory with its run_config.json and its job state (books.db, or a
// PostgreSQL database).
struct CreateOptions {
  std::string run_dir;            // created if missing; must not hold a run yet
  std::string library_directory;  // GRIN's library directory (e.g. "Harvard"); required
  std::string grin_base_url;      // "" = https://books.google.com/libraries/
  std::string grin_token_url;     // "" = Google's OAuth2 token endpoint
  std::string credentials_dir;    // where credentials.json and the passphrase are found
  std::string ca_file;            // extra CA bundle GRIN's TLS certificate is checked against
  // run_config.json's "storage" block as key -> value (docs/configuration.md): "type"
  // local|s3|r2|minio, "base_path", "endpoint_url", "bucket_raw", ... "" type = local under
  // <run_dir>/storage.
  std::map<std::string, std::string> storage;
  // Where the run's job state lives, fixed at creation (as `grin-jobs init --state`;
  // docs/postgresql.md): "" = books.db in run_dir (SQLite); a postgresql:// (or postgres://)
  // URI without a password, e.g. "postgresql://grin@db.example.org/grin_jobs?sslmode=verify-full"
  // = that PostgreSQL database (libpq finds the password in PGPASSFILE / ~/.pgpass or
  // PGPASSWORD). Several run directories, on several hosts, may name the same database: they
  // share one run.
  std::string state;
};

// Run::Open.
struct OpenOptions {
  std::string run_dir;          // a run made by Run::Create or `grin-jobs init`
  std::string credentials_dir;  // "" = the run's, then the standard search order
};

struct CollectOptions {
  double requests_per_second = 5;
  bool refresh = false;  // update changed fields of known books
  bool restart = false;  // ignore a saved position
  int page_size = 10000;
  int max_pages = 0;     // 0 = all
};

struct EnrichOptions {
  double requests_per_second = 5;
  int64_t limit = 0;     // 0 = every book pending
  int concurrency = 5;   // _barcode_search requests in flight (1 or more)
  bool refresh = false;
  // With refresh: only books enriched before this ISO 8601 time (kInvalidArgument without
  // refresh).
  std::string refresh_before;
};

struct RequestOptions {
  double requests_per_second = 5;
  int64_t limit = 100;
  int batch = 100;
  bool dry_run = false;
  bool retry_refused = false;
};

// Run::Sync. Which books: `queues` ("converted", "previous", "unconverted") or `barcodes`
// (run alone: the run's other open jobs wait), not both; neither continues the jobs already
// in the run.
struct SyncOptions {
  std::vector<std::string> queues;
  std::vector<std::string> barcodes;
  int64_t limit = -1;  // at most this many books per selection (-1 = all)
  bool dry_run = false;     // plan only (MessageKind::kInfo lines); nothing changes
  bool force = false;       // download again even when the ETags match
  bool recheck = false;     // check stored books' ETags again
  int workers = 8;
  int check_concurrency = 2;
  int download_concurrency = 4;
  double grin_requests_per_second = 5;  // 0 = unlimited
  double grin_bytes_per_second = 0;     // 0 = unlimited
  int grin_list_attempts = 12;          // list requests refused with 429 or 5xx
  std::string staging_dir;              // "" = <run_dir>/staging
  uint64_t staging_limit_mb = 4096;  // pause downloads while staging holds more (0 = no limit)
  uint64_t stream_max_mb = 128;
  uint64_t memory_limit_mb = 512;
  uint64_t multipart_threshold_mb = 64;
  bool storage_inventory = true;
  bool skip_ocr = false;
  bool skip_marc = false;
  std::string decrypt_backend = "auto";  // auto|gpg|rnp|native
  std::string passphrase_file;           // "" = the credentials search order
  int stop_after_systemic = 3;
  bool durable = false;                  // fsync every state change
  int64_t retry_base_ms = 2000;
  bool skip_csv_export = false;
  // Progress: false -> Observer::OnProgress once per finished book with the counts;
  // true -> every progress_every books with only Progress::line set.
  bool progress_lines = false;
  int progress_every = 20;
  // Written into process_summary.json as command_args (how the sync was asked for).
  std::vector<std::string> command_args;
};

// Run::Verify: the run's storage against its state.
struct VerifyOptions {
  bool deep = false;       // also download every raw archive and check its digests
  bool requeue = false;    // send mismatching books back to work (a bad raw archive deleted)
  bool skip_ocr = false;   // the run's syncs skip OCR: no OCR objects expected
  bool skip_marc = false;  // ... skip MARC: no MARC columns expected
  int deep_concurrency = 4;
};

}  // namespace grin::jobs
