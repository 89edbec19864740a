#pragma once
// Internals of FakeGrinServer, shared by server.cc (set-up, auth, token, control API) and
// handlers.cc (GRIN endpoints). Not part of the fake's API.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/fake_grin/connection.h"
#include "tests/fake_grin/fake_grin.h"

namespace grin::fake {

// One GRIN request on its way through Dispatch.
struct RequestCtx {
  const httplib::Request& req;
  httplib::Response& res;
  std::string endpoint;  // see faults.h for the names
  std::string dir;
  std::string file;      // archive file name for archive endpoints
  std::vector<std::string> barcodes;
  std::vector<FaultRule> fired;
  int64_t conn_request = 1;  // 1-based number of this request on its connection
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();

  const FaultRule* Fired(std::string_view action) const {
    for (const auto& f : fired) {
      if (f.action == action) return &f;
    }
    return nullptr;
  }
};

class FakeGrinServer::Impl {
 public:
  explicit Impl(FakeGrinOptions o) : opt(std::move(o)), faults(opt.corpus.seed) {}
  ~Impl();

  Status Init();
  void Dispatch(const httplib::Request& req, httplib::Response& res);

  // server.cc
  bool CheckAuth(RequestCtx& c);           // false: a refusal has been written
  void HandleToken(RequestCtx& c);
  void HandleConsent(RequestCtx& c);
  void HandleControl(const httplib::Request& req, httplib::Response& res);
  std::string StatsJson() const;
  std::string IssueToken();
  int64_t Now() const;
  void CountRequest(const std::string& endpoint, int status);
  BarcodeStats& BarcodeLocked(const std::string& dir, const std::string& bc) {
    return stats.barcodes[dir + "/" + bc];
  }

  // handlers.cc
  void HandleProbe(RequestCtx& c);
  void HandleList(RequestCtx& c);
  void ServeSyntheticConverted(RequestCtx& c);  // synthetic_converted_lines
  void HandleBarcodeSearch(RequestCtx& c);
  void HandleMonthlyReport(RequestCtx& c);
  void HandleProcess(RequestCtx& c);
  void HandleArchive(RequestCtx& c, bool is_blob);
  std::string ETagFor(const std::string& dir, const BookRecord& b) const;
  std::string Passphrase(const std::string& dir) const;
  std::string Eol() const { return opt.crlf ? "\r\n" : "\n"; }

  FakeGrinOptions opt;
  std::unique_ptr<httplib::Server> http;
  std::thread thread;
  int port = 0;
  std::string origin;
  std::string ca_file;
  std::string state_dir;
  bool own_state_dir = false;
  std::map<std::string, std::unique_ptr<Corpus>> corpora;
  std::unique_ptr<ArchiveStore> archives;
  FaultSet faults;
  std::atomic<int64_t> clock_offset{0};
  std::atomic<int64_t> date_offset{0};  // Date header: real time + this

  mutable std::mutex auth_mu;  // guards the token state below
  std::unordered_map<std::string, int64_t> access_tokens;  // token -> expiry (virtual s)
  std::string refresh_token;
  bool refresh_revoked = false;
  std::map<std::string, std::string> auth_codes;  // code -> redirect_uri
  uint64_t token_serial = 0;

  mutable std::mutex stats_mu;  // guards stats and last_get_bytes
  FakeGrinStats stats;
  std::map<std::string, int64_t> last_get_bytes;
  std::atomic<int64_t> concurrent{0};
  std::atomic<int64_t> downloads_in_flight{0};
  ConnectionTracker connections;

  // Microseconds of the steady clock since the server started (ArchiveGetTiming).
  int64_t SinceStartUs(std::chrono::steady_clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - started).count();
  }
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Shared budgets of global_throttle (bytes) and rate_limit (requests) rules, by rule id.
  struct Bucket {
    std::mutex mu;
    std::chrono::steady_clock::time_point next{};
  };
  std::shared_ptr<Bucket> BucketFor(int64_t rule_id);
  std::mutex buckets_mu;
  std::map<int64_t, std::shared_ptr<Bucket>> buckets;
};

std::string HtmlEscape(std::string_view in);
std::string HttpDate(int64_t unix_s);
void SetErrorPage(httplib::Response& res, int status, std::string_view what);
// 200 with GRIN's "Your request is unavailable" page.
void SetUnavailablePage(httplib::Response& res);

}  // namespace grin::fake
