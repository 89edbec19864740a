#pragma once
// GrinClient: GRIN's endpoints over the shared Transport (docs/grin-protocol.md).
//
// Every request carries "Authorization: Bearer <token>", set by a PrepareFn from
// TokenSource::CachedToken() just before each attempt. Redirects are handled here, never by the
// transport: a 302 to ServiceLogin, like a 401, triggers one forced token refresh and one retry;
// any other 3xx is followed by hand (Bearer re-sent), at most max_redirects times; 403 becomes
// kPermissionDenied with the access-list message. The "Your request is unavailable" page is
// kUnavailable. Everything is resolved against the configured base URL, Next links included.
//
// For the sync pipeline:
//   HeadArchive(barcode)            -> ETag (unquoted), size, Last-Modified; kNotFound on 404
//   ArchiveRequest(barcode, sink)   -> a ready Request (URL + auth PrepareFn) to Submit on the
//                                      transport yourself, with your own sink (file, callback,
//                                      Range headers); then CheckArchiveResponse(response)
//   ForEachTextLine / ForEachListPage for the _converted, _in_process, _failed, _available queues.
//
// Thread safety: methods may be called concurrently from any thread except the transport's own
// (they wait for transport requests).

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/grin/html_list.h"
#include "engine/grin/oauth.h"
#include "engine/grin/text_formats.h"
#include "engine/net/transport.h"

namespace grin::grin_client {

inline constexpr const char* kAccessListMessage =
    "GRIN refused access (HTTP 403): this account is not on the library's access list, or was "
    "added recently (changes take up to 12 h)";
inline constexpr int kQueueCap = 50'000;

struct ClientOptions {
  std::string base_url = "https://books.google.com/libraries/";
  std::string directory;           // e.g. "Harvard"; case-sensitive
  size_t max_url_length = 7'500;   // _barcode_search / _process URLs
  int max_redirects = 5;
  int64_t max_page_bytes = 512LL << 20;  // an HTML list page (or a text-list line) larger than
                                         // this is refused
  // Text lists are streamed, never held whole: at most this many bytes of received lines wait
  // for the reader before the transfer is paused.
  int64_t text_list_buffer_bytes = 4LL << 20;
  Logger* logger = nullptr;
  // Patience with GRIN's rate limiting (docs/grin-protocol.md, Rate and patience): list pages and text lists, the
  // directory probe, _barcode_search and _process are retried on 429 / 503 (honouring
  // Retry-After up to max_retry_after_ms) and on 5xx / connection errors with full-jitter backoff
  // over minutes. Archive HEAD/GET keep the transport's own policy. Tests shorten it.
  net::RetryOptions patience = PatientRetry();
  // Low-speed window (seconds, first byte included) of list requests: text lists can take
  // minutes before their first byte. Archive requests keep the transport's tighter limit.
  int64_t list_low_speed_time_seconds = 600;

  // 12 attempts; throttled waits from 5 s doubling up to 5 min; a Retry-After up to 15 min.
  static net::RetryOptions PatientRetry() {
    net::RetryOptions r;
    r.max_attempts = 12;
    r.base_delay_ms = 1'000;
    r.throttle_base_delay_ms = 5'000;
    r.max_delay_ms = 300'000;
    r.max_retry_after_ms = 900'000;
    return r;
  }
};

// One book of GRIN's _failed list, with GRIN's own words on why its conversion failed.
struct FailedBook {
  std::string date;    // "Convert Failed Date", ISO 8601 (GrinDateToIso)
  std::string info;    // "Convert Failed Info"
  std::string detail;  // "Detailed Convert Failed Info"
};

// One HTML list page, parsed completely (rows are delivered only for a page that parsed whole).
struct ListPage {
  std::string url;
  std::string next_url;  // "" on the last page
  std::vector<std::string> keys;
  std::vector<ListRow> rows;  // each row's keys point at `keys`
  int page_number = 0;        // 1-based
  int64_t skipped_rows = 0;   // rows without a readable barcode (warned about, not in rows)
};

struct ArchiveHead {
  std::string etag;           // without quotes (and without a W/ prefix)
  int64_t size = -1;          // Content-Length, -1 if absent
  std::string last_modified;  // as sent
};

struct EnrichmentResult {
  struct Row {
    std::string barcode;
    std::vector<std::pair<std::string, std::string>> columns;  // books column -> value
  };
  std::vector<Row> found;
  std::vector<std::string> missing;  // asked for, not in the reply
  int64_t skipped_rows = 0;          // reply rows without a plausible barcode (warned about)
};

struct ProcessResult {
  // HTTP 429 without a Retry-After (or still 429 once patience ran out): the queue is full and
  // nothing in this batch was accepted.
  bool queue_full = false;
  std::vector<ProcessRow> rows;     // one per barcode answered
  std::vector<std::string> unanswered;  // sent but absent from the reply
};

class GrinClient {
 public:
  // transport and tokens are not owned; tokens may be null when the server needs no auth.
  GrinClient(net::Transport* transport, TokenSource* tokens, ClientOptions options);

  const ClientOptions& options() const { return options_; }
  Logger* logger() const { return logger_; }  // never null
  // base_url + directory + "/".
  std::string DirectoryUrl() const;
  // The URL of the first page of a list ("all_books", "converted", ...) in HTML.
  std::string ListUrl(std::string_view list, int page_size) const;

  // GET <DIR>/?format=text&result_count=1: OK on 200 (or a non-login 302).
  Status Probe();

  // Fetches HTML list pages from first_url, following Next links, calling fn once per page after
  // it parsed completely. Stops at the first error (fn's or a fetch/parse error naming the page).
  // Each page is fetched with options().patience (429/503 with Retry-After waited out, so a long
  // listing goes on from the page that was refused, never from page 1); the "unavailable" page
  // gets 3 tries.
  // At most max_pages pages (0 = unlimited). The next page is fetched while fn runs. Rows without
  // a readable barcode are skipped and each warned about ("grin.list.row_skipped", with the
  // row's text); a full page (rows = its result_count) without a Next link is warned about
  // ("grin.list.full_page_without_next": the list may go on).
  Status ForEachListPage(const std::string& first_url,
                         const std::function<Status(const ListPage&)>& fn, int max_pages = 0);

  // GET <DIR>/_<list>?format=text[&extra], calling fn with the barcode of each entry
  // (BarcodeOfListEntry). Lines that are not entries (in _converted: lines without
  // ".tar.gz.gpg") are ignored and counted into *ignored, with one warning per call
  // ("grin.text_list.lines_ignored", count and the first such line).
  // The body is streamed: lines are read as they arrive (memory bounded by
  // text_list_buffer_bytes, whatever the list's length) and fn runs on the calling thread while
  // the transfer goes on. A list request has the list low-speed window, so a reply slow to start
  // or arriving in bursts is waited for. fn returning an error stops the transfer and is returned.
  // A broken transfer is retried (options().patience) and goes on after the lines already read,
  // so each line is delivered once as long as GRIN sends the list in the same order.
  Status ForEachTextLine(std::string_view list, std::string_view extra_query,
                         const std::function<Status(const std::string& barcode)>& fn,
                         int64_t* ignored = nullptr);

  // Splits barcodes into groups whose _barcode_search URL stays within max_url_length.
  std::vector<std::vector<std::string>> SplitForSearch(const std::vector<std::string>& barcodes) const;
  // One _barcode_search request (the group must fit the URL bound). Reply rows without a
  // plausible barcode are skipped, counted and warned about ("grin.barcode_search.row_skipped").
  Result<EnrichmentResult> BarcodeSearch(const std::vector<std::string>& barcodes);

  // One _process request (comma list). A 429 with Retry-After, a 503 and other 5xx are waited
  // out with options().patience; a 429 without Retry-After is queue_full at once (GRIN's full
  // queue), as is one still refused when patience runs out. Reply barcodes are matched after
  // trimming. kInvalidArgument if the URL would exceed the bound.
  Result<ProcessResult> Process(const std::vector<std::string>& barcodes);
  // Splits barcodes into _process batches of at most max_batch that fit the URL bound.
  std::vector<std::vector<std::string>> SplitForProcess(const std::vector<std::string>& barcodes,
                                                        size_t max_batch) const;

  // GRIN's _failed list read as HTML pages of `page_size` rows (Next links followed), keyed by
  // barcode, with each book's Convert Failed Date, Info and Detailed Info. Rows without a
  // readable barcode are skipped and warned about, like every list.
  Result<std::map<std::string, FailedBook>> LoadKnownFailures(int page_size = 10'000);

  // HEAD of an archive. kNotFound on 404.
  Result<ArchiveHead> HeadArchive(const std::string& barcode);
  // A GET request for the archive with auth attached; the caller submits it. Redirects are not
  // followed by the transport: see CheckArchiveResponse.
  net::Request ArchiveRequest(const std::string& barcode, net::ResponseSink sink) const;
  // Classifies an archive GET response: OK with the head fields for 200/206 (kDataLoss if the
  // ETag is missing); kNotFound for 404; kPermissionDenied for 401/403/ServiceLogin;
  // kUnavailable for 429/5xx (retry later); a 3xx is returned as kUnavailable with the Location
  // in the message. Nothing follows it: the pipeline handles it like any other kUnavailable (the
  // book is tried again later, from ArchiveRequest()).
  Result<ArchiveHead> CheckArchiveResponse(const net::Response& response) const;

  // Sends one request with auth, redirect and refresh handling (memory sink). Returns the final
  // response; only transport failures and auth refusals become errors. hops, if given, receives
  // every response on the way, redirects and refused tokens included, the final one last.
  Result<net::Response> Send(net::Request request, std::vector<net::Response>* hops = nullptr);

 private:
  // Send, calling on_submit (if set) with the transport's id of each request it submits.
  Result<net::Response> SendWatched(net::Request request,
                                    const std::function<void(net::RequestId)>& on_submit,
                                    std::vector<net::Response>* hops = nullptr);
  void AttachAuth(net::Request* request) const;
  // Marks a request to a list, the probe or _barcode_search as patient (see ClientOptions).
  void MakePatient(net::Request* request, bool list) const;
  Status CheckUnavailablePage(const net::Response& r, const std::string& what) const;

  net::Transport* const transport_;
  TokenSource* const tokens_;
  const ClientOptions options_;
  Logger* const logger_;
};

// ETag without quotes or W/ prefix.
std::string UnquoteETag(std::string_view etag);

}  // namespace grin::grin_client
