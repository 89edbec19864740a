#pragma once
// Fault rules of the fake GRIN server (grin-protocol.md §12.5).
//
// A rule = which requests it matches (endpoint name, directory, barcode) x when it fires among
// them (after the first `after` matches; only the nth; every kth; with a probability drawn
// deterministically from (seed, rule id, match number); at most `times` times) x what it does.
//
// Endpoint names: probe, all_books, converted, in_process, failed, available, barcode_search,
// monthly_report, process, archive_head, archive_get, blob, token, or "*" / "lists" (the five
// list pages) / "archive" (head and get).
//
// Actions:
//   status           reply `status` with an HTML error body; `retry_after` adds Retry-After
//   unavailable      200 with the "Your request is unavailable" page
//   service_login    302 to /ServiceLogin?continue=...
//   slow_first_byte  sleep delay_ms before answering normally
//   throttle         body at rate_bps bytes/s
//   stall            no bytes for stall_ms once the body reaches at_byte
//   truncate         close the connection after at_byte body bytes (Content-Length promised more)
//   corrupt          flip the byte at at_byte (length unchanged)
//   wrong_length     declare Content-Length + length_delta; send the true bytes, cut to it
//   etag             etag_mode: missing | weak | unquoted | change (a different ETag than HEAD's)
//   drop_next        omit the Next link on a list page
//   process_short    _process answers one row fewer than barcodes sent
//   process_unknown  _process answers an unknown status string for every row
//   malformed        list pages: 200 with HTML that has no results table; text/TSV replies: a
//                    body whose header is not GRIN's
//   bad_row          HTML list pages: the middle row carries an impossible barcode
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
  // Bookkeeping, read back through List().
  int64_t matches = 0;
  int64_t fires = 0;
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

  int64_t Add(FaultRule rule);
  void Clear();
  std::vector<FaultRule> List() const;

  // The rules that fire for this request, in id order (each counts the match). `barcodes` are
  // the barcodes the request names (empty for none).
  std::vector<FaultRule> Fire(std::string_view endpoint, std::string_view dir,
                              const std::vector<std::string>& barcodes);

 private:
  const uint64_t seed_;
  mutable std::mutex mu_;
  std::vector<FaultRule> rules_;
  int64_t next_id_ = 1;
};

}  // namespace grin::fake
