#pragma once
// The GRIN-facing commands' shared wiring: run config -> CurlTransport (rate-limited, private CA)
// -> TokenSource (credentials file) -> GrinClient, plus the books catalog of the run (SQLite or
// PostgreSQL: cli/state_factory.h).

#include <memory>
#include <string>

#include "cli/credentials_search.h"
#include "cli/object_store_factory.h"
#include "cli/run_config.h"
#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/grin/client.h"
#include "engine/grin/oauth.h"
#include "engine/net/curl_transport.h"
#include "storage/run_lock.h"
#include "engine/book_catalog.h"

namespace grin::cli {

struct GrinStackOptions {
  double requests_per_second = 5;   // GRIN control calls (docs/compatibility.md)
  int max_connections = 5;
  bool open_catalog = true;
  Logger* logger = nullptr;
  std::string credentials_dir;      // --credentials-dir; "" = the run's, then the search order
};

// Owns everything a GRIN command needs, in destruction-safe order.
struct GrinStack {
  RunConfig config;
  std::unique_ptr<storage::RunLock> lock;
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<grin_client::TokenSource> tokens;
  std::unique_ptr<grin_client::GrinClient> client;
  std::unique_ptr<BookCatalog> catalog;
  ~GrinStack();
};

// Loads <run_dir>/run_config.json, takes the run lock (host-local, also on a PostgreSQL run),
// opens the catalog (books.db, or the PostgreSQL database the run's "state" names) and the GRIN
// client.
// kInvalidArgument if the run has no library_directory. On failure *grin_side says whether the
// cause is on the GRIN side (credentials, transport) rather than the run or its database.
Result<std::unique_ptr<GrinStack>> OpenGrinStack(const std::string& run_dir,
                                                 const GrinStackOptions& options,
                                                 bool* grin_side);

struct TransferStackOptions {
  Logger* logger = nullptr;
  int max_connections_per_host = 8;
  // GRIN's connection pool (net::HostLimits::max_connections); 0 = max_connections_per_host.
  int grin_max_connections = 0;
  double grin_requests_per_second = 5;   // 0 = unlimited; GRIN's host only
  double grin_bytes_per_second = 0;      // 0 = unlimited; GRIN's host only
  int grin_list_attempts = 0;            // GRIN list requests' patience; 0 = the client's default
  std::string credentials_dir;           // --credentials-dir; "" = the run's, then the search order
  // A preflight: at most 2 attempts per request, no Retry-After wait beyond 2 s, connections
  // given up after 10 s and stalled transfers after 15 s (instead of minutes).
  bool fail_fast = false;
};

// What sync (and doctor) talk through: one transport for GRIN and storage, trusting the run's
// GRIN CA and its storage.ca_file (both: <run_dir>/ca-bundle.pem joins them), the token source
// on credentials.json, the GRIN client and the run's object store. No run lock, no database.
// Secret files are found by cli/credentials_search.h; `token` and `r2_keys` say which were used.
struct TransferStack {
  FoundSecret token;
  std::optional<FoundSecret> r2_keys;
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<grin_client::TokenSource> tokens;
  std::unique_ptr<grin_client::GrinClient> client;
  OpenedObjectStore objects;
  ~TransferStack();
};

// Builds a TransferStack for the run at run_dir from its loaded config. Errors: the transport,
// credentials.json (not found in the search order, unreadable, open to others) or the storage
// block.
Result<std::unique_ptr<TransferStack>> OpenTransferStack(const std::string& run_dir,
                                                         const RunConfig& config,
                                                         const TransferStackOptions& options);

// Writes the two PEM bundles `first` and `second` into `out_path` (replaced atomically: a temp
// file, then rename), for a transport that must trust both GRIN's and the storage's CA.
// kPermissionDenied naming an input that cannot be read (missing, unreadable); kInternal naming
// out_path if it cannot be written (the old bundle, if any, is left as it was).
Status JoinCaBundles(const std::string& out_path, const std::string& first,
                     const std::string& second);

// Prints "grin-jobs <command>: <message>" for a failure talking to GRIN (auth, network, a
// malformed reply): exit 1, or 3 for kBusy. (ReportError would call a malformed GRIN page or a
// refused token a database problem, exit 4.)
int ReportGrinError(std::ostream& err, const char* command, const Status& status);

}  // namespace grin::cli
