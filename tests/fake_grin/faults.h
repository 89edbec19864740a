#pragma once
// Fault rules of the fake GRIN server (docs/grin-protocol.md, The fake GRIN server: Faults).
//
// A rule = which requests it matches (endpoint name, directory, barcode; optionally only inside a
// time window and only at some positions on their connection) x when it fires among them (after
// the first `after` matches; only the nth; every kth; with a probability drawn deterministically
// from (seed, rule id, match number); at most `times` times) x what it does.
//
// Time window: window_start_s <= t < window_end_s, t = virtual seconds since the rule was added
// (window_end_s 0 = open). E.g. {"endpoint":"grin","status":403,"window_end_s":600}: "ACL not yet
// applied" for the first 10 minutes. Connection position: the request's 1-based number on its connection;
// conn_first N matches only the first N requests of each connection, conn_after M only requests
// after the Mth (conn_after 1 = keep-alive reuse). Requests outside the window or position are not
// matches (they do not count towards after/nth/every).
//
// Endpoint names: probe, all_books, converted, in_process, failed, available, barcode_search,
// monthly_report, process, archive_head, archive_get, blob, token, auth, or "*" / "grin" (all but
// token and auth: GRIN itself, not Google's OAuth service) / "lists" (the five list pages) /
// "archive" (head and get).
//
// Actions:
//   status           reply `status` with an HTML error body; `retry_after` adds Retry-After
//   unavailable      200 with the "Your request is unavailable" page
//   service_login    302 to /ServiceLogin?continue=...
//   slow_first_byte  sleep delay_ms before answering normally
//   throttle         body at rate_bps bytes/s
//   stall            no bytes for stall_ms once the body reaches at_byte
//   truncate         close the connection after at_byte body bytes (Content-Length promised more);
//                    close_mode: fin (default) | rst (abortive close: the peer sees a reset) |
//                    chunked (chunked encoding, cut before the terminating chunk)
//   reset            no reply at all: the connection is reset (RST) when the request arrives
//   global_throttle  every body this rule fires on shares one rate_bps budget (a bandwidth cap)
//   rate_limit       GRIN's request-rate limit: the requests this rule fires on share one budget
//                    of rate_rps requests per second with a burst of `burst` (default 1); a
//                    request over it gets `status` (default 429; retry_after adds Retry-After)
//   reconvert        the book is re-converted (new version, new ETag): on HEAD after the reply;
//                    on GET the body switches to the new version's bytes at at_byte
//   expire           the book's archive expires (book back to available): HEAD answers, then
//                    expires it (the next GET is 404); GET answers 404
//   invalid_grant    token endpoint: 400 {"error":"invalid_grant"} (refresh token revoked)
//   shift_rows       HTML/text list pages start `shift` rows off: negative repeats the previous
//                    page's last rows (duplicates across pages), positive skips rows (the list
//                    shrank between pages)
//   empty            list pages: no rows
//   corrupt          flip the byte at at_byte (length unchanged)
//   wrong_length     declare Content-Length + length_delta; send the true bytes, cut to it
//   etag             etag_mode: missing | weak | unquoted | change (a different ETag than HEAD's)
//   drop_next        omit the Next link on a list page
//   process_short    _process answers one row fewer than barcodes sent
//   process_unknown  _process answers an unknown status string for every row
//   malformed        list pages: 200 with HTML that has no results table; text/TSV replies: a
//                    body whose header is not GRIN's
//   bad_row          HTML list pages: the middle row carries an impossible barcode
//   unsatisfiable    ranged archive GETs (range_support on): 416 with Content-Range bytes */size,
//                    as if the range started past the end (a request without Range is unchanged)
//
// Thread safety: FaultSet may be used from any thread.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/result.h"

namespace grin::fake {

struct FaultRule {
  int64_t id = 0;  // assigned by FaultSet::Add
  // What it matches.
  std::string endpoint = "*";
  std::string dir;      // "" = any
  std::string barcode;  // "" = any (for lists and _process: any barcode in the request)
  // When it fires.
  int64_t after = 0;
  int64_t nth = 0;
  int64_t every = 0;
  double probability = 1.0;
  int64_t times = -1;   // -1 = unlimited
  int64_t window_start_s = 0;  // virtual seconds after the rule was added
  int64_t window_end_s = 0;    // 0 = no end
  int64_t conn_first = 0;      // 0 = any position on the connection
  int64_t conn_after = 0;
  // What it does.
  std::string action = "status";
  int status = 503;
  std::string retry_after;
  int64_t delay_ms = 0;
  int64_t rate_bps = 0;
  int64_t stall_ms = 0;
  int64_t at_byte = 0;
  int64_t length_delta = 0;
  std::string etag_mode;
  std::string close_mode;  // truncate: "" / fin | rst | chunked
  int64_t shift = 0;
  double rate_rps = 0;   // rate_limit
  int64_t burst = 1;     // rate_limit
  // Bookkeeping, read back through List().
  int64_t matches = 0;
  int64_t fires = 0;
  int64_t added_at = 0;  // virtual clock when added
};

// What Fire needs to know about a request besides its names.
struct RequestFacts {
  int64_t now_s = 0;           // virtual clock
  int64_t conn_request = 1;    // 1-based number of the request on its connection
};

// Parses one rule from a JSON object with the field names above. kInvalidArgument on unknown
// fields, unknown actions or bad types.
Result<FaultRule> ParseFaultRule(std::string_view json);
// Parses a JSON object or an array of objects.
Result<std::vector<FaultRule>> ParseFaultRules(std::string_view json);
std::string FaultRulesToJson(const std::vector<FaultRule>& rules);

// Whether `endpoint` is matched by the rule's endpoint pattern.
bool EndpointMatches(std::string_view pattern, std::string_view endpoint);

class FaultSet {
 public:
  explicit FaultSet(uint64_t seed) : seed_(seed) {}

  // now_s: the virtual clock, the origin of the rule's time window.
  int64_t Add(FaultRule rule, int64_t now_s = 0);
  void Clear();
  std::vector<FaultRule> List() const;

  // The rules that fire for this request, in id order (each counts the match). `barcodes` are
  // the barcodes the request names (empty for none).
  std::vector<FaultRule> Fire(std::string_view endpoint, std::string_view dir,
                              const std::vector<std::string>& barcodes,
                              const RequestFacts& facts = {});

 private:
  const uint64_t seed_;
  mutable std::mutex mu_;
  std::vector<FaultRule> rules_;
  int64_t next_id_ = 1;
};

}  // namespace grin::fake
