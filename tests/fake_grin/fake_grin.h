#pragma once
// FakeGrinServer: a local stand-in for Google's GRIN service (docs/grin-protocol.md, The fake GRIN server), for tests,
// the demo and benchmarks. A real HTTP(S) server on loopback (cpp-httplib), with:
//   - GRIN endpoints under /libraries/<DIR>/: the probe, _all_books, _converted, _in_process,
//     _failed, _available (text and paged HTML), _barcode_search, _monthly_report, _process
//     (every request style), and HEAD/GET <BARCODE>.tar.gz.gpg (real gpg-encrypted archives, or
//     size-only bodies), optionally redirected to /_blob/...;
//   - a fake OAuth2 token endpoint POST /token (refresh_token, authorization_code, jwt-bearer
//     grants) and a consent page GET /auth that redirects to a loopback redirect_uri with a code;
//   - a control API under /_fake/ (loopback peers only, no auth): faults, clock, stats, tokens.
// In-process use:
//   FakeGrinOptions o; o.corpus.size = 100;
//   GRIN_ASSIGN_OR_RETURN(auto server, FakeGrinServer::Start(o));
//   client base URL = server->base_url(), token URL = server->token_url(), CA = server->ca_file().
//
// Transport faults reset connections from worker threads, whose SIGPIPE is blocked so that a
// write to a reset peer fails with EPIPE instead of ending the process.
//
// Time: a virtual clock, real time plus an offset that AdvanceClock() moves, drives token expiry
// and conversions. Thread safety: every public method may be called from any thread while the
// server runs.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "tests/fake_grin/archive.h"
#include "tests/fake_grin/corpus.h"
#include "tests/fake_grin/faults.h"

namespace grin::fake {

struct FakeGrinOptions {
  std::vector<std::string> directories = {"TEST"};
  // Passphrase per directory; missing ones default to "fake passphrase for <DIR>".
  std::map<std::string, std::string> passphrases;
  CorpusOptions corpus;  // corpus.seed is the seed of everything (faults, archives, ordering)

  // Network.
  bool tls = true;
  int port = 0;        // 0 = ephemeral
  // More IPv4 addresses of this host to serve on besides 127.0.0.1 (a test's veth end, for a
  // client in a network namespace), also named in the TLS certificate. Non-empty: the server
  // listens on all addresses (0.0.0.0); base_url() stays on 127.0.0.1.
  std::vector<std::string> extra_addresses;
  int threads = 64;    // keep >= client connections: each keep-alive connection holds a worker
  // A keep-alive connection idle this long is closed by the server (set it below what the client
  // assumes to test an idle close sooner than expected).
  int keep_alive_timeout_s = 30;
  // Files: TLS material and client_secret.json / credentials.json. "" = a private temp dir.
  std::string state_dir;
  std::string cache_dir;  // archive cache; "" = <state_dir>/archives

  // Archives.
  ArchiveParams archive;
  bool size_only = false;            // pseudo-random bodies behind an OpenPGP header
  int64_t size_only_min_bytes = 1 << 20;
  int64_t size_only_max_bytes = 1 << 20;  // uniform in [min, max] per book
  bool range_support = false;
  bool content_disposition = false;
  bool redirect_archives = false;    // GET answers 302 to /_blob/<id>
  bool blob_requires_auth = true;
  // Models throttling: above this many archive GETs in flight, answer download_cap_status.
  int max_concurrent_downloads = 0;  // 0 = unlimited
  int download_cap_status = 503;

  // Auth.
  bool auth_required = true;
  std::string client_id = "fake-client-id.apps.googleusercontent.com";
  std::string client_secret = "fake-client-secret";
  std::string refresh_token = "1//fake-refresh-token";
  std::string account_email = "tester@example.org";
  int64_t token_ttl_s = 3600;
  bool rotate_refresh_token = false;
  std::string auth_failure = "401";  // how a bad token is refused: "401", "302" or "403"

  // Listings.
  int default_page_size = 100;
  bool use_ctoken = false;                  // Next links carry ctoken= instead of first=
  int64_t ctoken_ttl_s = 0;                 // >0: older ctokens get the "unavailable" page
  std::string next_href_style = "relative"; // relative | root | absolute
  std::string html_columns = "default";     // default | shuffle | extra
  std::string tsv_columns = "default";      // _barcode_search: default | shuffle | extra | drop
  bool all_books_text_header = false;       // header row on _all_books?format=text&mode=all
  bool crlf = false;                        // \r\n line endings in text replies
  bool converted_dir_prefix = false;        // _converted text lines as <DIR>_<BC>.tar.gz.gpg
  bool in_process_filename_form = false;    // _in_process text lines as <BC>.tar.gz.gpg
  int max_batch = 1000;                     // _process: 400 above it
  // Shapes of the live site's pages (docs/grin-protocol.md, List pages), all off by default:
  bool barcode_cell_links = false;    // HTML lists: Barcode / Filename and Title cells are <a>
                                      // links whose hrefs are not the values
  bool select_all_row = false;        // HTML lists: a select-all row before the data rows and a
                                      // totals row after them (neither carries a barcode)
  bool sort_link_headings = false;    // HTML lists: heading labels inside sort links whose URLs
                                      // are opaque
  std::string next_link_text = "Next &gt;";  // HTML lists: the Next link's text (HTML)
  bool search_empty_barcode_row = false;     // _barcode_search: an extra row with an empty Barcode
  bool converted_junk_lines = false;  // _converted?format=text: a header line, a bare barcode,
                                      // markup and a totals line among the file names
  // A very large, slow _converted?format=text (off by default): when > 0, the text list is this
  // many synthetic lines "SYN<9 digits>.tar.gz.gpg" (not books of the corpus), sent chunked in
  // bursts of synthetic_converted_burst lines, each burst (the first too) after
  // synthetic_converted_pause_ms of silence (a GRIN that thinks, then sends).
  int64_t synthetic_converted_lines = 0;
  int64_t synthetic_converted_burst = 250'000;
  int synthetic_converted_pause_ms = 0;
  // _process replies (all off by default):
  std::map<std::string, std::string> process_refusals;  // barcode -> GRIN's refusal text; the
                                                        // book is not queued
  bool process_padded_barcodes = false;  // reply barcodes padded with spaces ("TEST001 ")
  bool process_extra_columns = false;    // text reply with a third column, "Request Id"
  size_t max_url_length = 8192;             // 414 above it
  // Every reply carries a Date header: real time plus this offset (a skewed server clock).
  int64_t date_offset_s = 0;
};

// Per-endpoint and per-barcode counters (docs/grin-protocol.md, The fake GRIN server: Counters).
struct EndpointStats {
  int64_t requests = 0;
  std::map<int, int64_t> by_status;
};
struct BarcodeStats {
  int64_t heads = 0;
  int64_t gets = 0;        // archive GETs (including ranged ones)
  int64_t ranged_gets = 0;
  int64_t bytes = 0;       // body bytes written
  int64_t process = 0;     // times named in a _process request
  int64_t searched = 0;    // times named in a _barcode_search request
};
// One archive GET (not HEAD) as the server saw it, in microseconds of the steady clock since the
// server started: the request arrived, its first body byte was handed to the socket, the body
// ended (or was abandoned). first_byte_us / end_us are -1 while not yet reached.
struct ArchiveGetTiming {
  std::string barcode;
  int64_t arrived_us = 0;
  int64_t first_byte_us = -1;
  int64_t end_us = -1;
  int64_t bytes = 0;
  int status = 0;
};
struct FakeGrinStats {
  std::map<std::string, EndpointStats> endpoints;
  std::map<std::string, BarcodeStats> barcodes;  // key "<DIR>/<BARCODE>"
  int64_t tokens_issued = 0;
  int64_t refreshes = 0;
  int64_t auth_failures = 0;
  int64_t bytes_served = 0;
  int64_t wasted_bytes = 0;  // archive bytes of GETs that were later repeated for the same book
  int64_t peak_concurrent_requests = 0;
  int64_t connections = 0;   // new TCP connections that sent a request
  int64_t tls_resumed = 0;   // of which resumed a TLS session
  int64_t resets = 0;        // connections reset by a fault (reset, truncate close_mode rst)
  std::vector<ArchiveGetTiming> archive_gets;  // in order of completion; GET /_fake/gets
};

class FakeGrinServer {
 public:
  // Binds 127.0.0.1 and starts serving on a background thread. kInvalidArgument on bad options,
  // kUnavailable if the port cannot be bound, kInternal if TLS material cannot be made.
  static Result<std::unique_ptr<FakeGrinServer>> Start(FakeGrinOptions options);
  ~FakeGrinServer();  // stops and joins
  FakeGrinServer(const FakeGrinServer&) = delete;
  FakeGrinServer& operator=(const FakeGrinServer&) = delete;

  int port() const;
  std::string origin() const;     // "https://127.0.0.1:PORT" (or http://)
  std::string base_url() const;   // origin() + "/libraries/"
  std::string token_url() const;  // origin() + "/token"
  std::string auth_url() const;   // origin() + "/auth"
  std::string ca_file() const;    // PEM of the test CA; "" without TLS
  std::string state_dir() const;  // holds client_secret.json and credentials.json
  const FakeGrinOptions& options() const;

  // Control (the same operations as the HTTP control API).
  int64_t AddFault(FaultRule rule);
  void ClearFaults();
  std::vector<FaultRule> Faults() const;
  void AdvanceClock(int64_t seconds);
  void SetDateOffset(int64_t seconds);  // the Date header's offset from real time, from now on
  int64_t NowSeconds() const;           // the virtual clock
  void Tick();                          // run due conversions now
  void RevokeAccessTokens();            // every issued access token stops working
  void RevokeRefreshToken();            // the refresh token answers invalid_grant
  std::string IssueAccessToken();       // a valid token, for tests and curl benchmarks
  FakeGrinStats Stats() const;
  BarcodeStats BarcodeCounters(const std::string& dir, const std::string& barcode) const;
  void ResetStats();
  Corpus* corpus(const std::string& dir);  // nullptr if unknown
  std::string passphrase(const std::string& dir) const;
  // The ETag (quoted) the server currently gives the book's archive; "" if not converted.
  std::string CurrentETag(const std::string& dir, const std::string& barcode);
  // The archive's bytes as served right now (generates it if needed); for tests.
  Result<std::shared_ptr<const std::string>> ArchiveBytes(const std::string& dir,
                                                          const std::string& barcode);

  class Impl;

 private:
  explicit FakeGrinServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace grin::fake
