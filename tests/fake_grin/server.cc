// FakeGrinServer: set-up, routing, auth, the token endpoint and the control API.
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/base/encoding.h"
#include "tests/fake_grin/server_impl.h"
#include "tests/support/test_pki.h"

namespace grin::fake {
namespace {

using nlohmann::json;

bool IsLoopbackPeer(const std::string& addr) {
  return addr == "127.0.0.1" || addr == "::1" || addr == "::ffff:127.0.0.1";
}

Status WriteFile0600(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  if (!out) return Status::Internal("cannot write " + path);
  chmod(path.c_str(), 0600);
  return Status::Ok();
}

void Json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

}  // namespace

std::string HtmlEscape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string HttpDate(int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

void SetErrorPage(httplib::Response& res, int status, std::string_view what) {
  res.status = status;
  res.set_content("<html><head><title>Error " + std::to_string(status) + "</title></head><body>" +
                      "<h1>Error " + std::to_string(status) + "</h1><p>" + HtmlEscape(what) +
                      "</p></body></html>\n",
                  "text/html; charset=utf-8");
}

void SetUnavailablePage(httplib::Response& res) {
  res.status = 200;
  res.set_content(
      "<html><head><title>GRIN</title></head><body><div id=\"Main\"><p>Your request is "
      "unavailable. Please try again later.</p></div></body></html>\n",
      "text/html; charset=utf-8");
}

std::shared_ptr<FakeGrinServer::Impl::Bucket> FakeGrinServer::Impl::BucketFor(int64_t rule_id) {
  std::lock_guard<std::mutex> l(buckets_mu);
  auto& b = buckets[rule_id];
  if (!b) b = std::make_shared<Bucket>();
  return b;
}

FakeGrinServer::Impl::~Impl() {
  if (http) http->stop();
  if (thread.joinable()) thread.join();
  if (own_state_dir && !state_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_dir, ec);
  }
}

int64_t FakeGrinServer::Impl::Now() const {
  return static_cast<int64_t>(std::time(nullptr)) + clock_offset.load();
}

std::string FakeGrinServer::Impl::Passphrase(const std::string& dir) const {
  auto it = opt.passphrases.find(dir);
  return it != opt.passphrases.end() ? it->second : "fake passphrase for " + dir;
}

Status FakeGrinServer::Impl::Init() {
  if (opt.directories.empty()) return Status::InvalidArgument("no library directories");
  if (opt.corpus.size < 0) return Status::InvalidArgument("negative corpus size");
  if (opt.auth_failure != "401" && opt.auth_failure != "302" && opt.auth_failure != "403") {
    return Status::InvalidArgument("auth_failure must be 401, 302 or 403");
  }
  if (opt.state_dir.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/grin-fake-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return Status::Internal("mkdtemp failed");
    state_dir = tmpl;
    own_state_dir = true;
  } else {
    state_dir = opt.state_dir;
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
  }
  const int64_t now = Now();
  for (const auto& d : opt.directories) {
    corpora[d] = std::make_unique<Corpus>(d, opt.corpus, now);
  }
  archives = std::make_unique<ArchiveStore>(
      opt.cache_dir.empty() ? state_dir + "/archives" : opt.cache_dir, opt.archive,
      opt.corpus.seed);
  refresh_token = opt.refresh_token;

  if (opt.tls) {
    GRIN_ASSIGN_OR_RETURN(testing::TestTlsMaterial tls, testing::GenerateTestTls("grin-jobs test CA", opt.extra_addresses));
    GRIN_RETURN_IF_ERROR(testing::WriteTestTls(tls, state_dir));
    ca_file = state_dir + "/ca.pem";
    auto s = std::make_unique<httplib::SSLServer>((state_dir + "/server.pem").c_str(),
                                                  (state_dir + "/server.key").c_str());
    if (!s->is_valid()) return Status::Internal("cannot set up the TLS server");
    http = std::move(s);
  } else {
    http = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(4, opt.threads);
  http->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http->set_tcp_nodelay(true);
  http->set_keep_alive_max_count(100000);
  http->set_keep_alive_timeout(std::max(1, opt.keep_alive_timeout_s));
  http->set_read_timeout(30);
  http->set_write_timeout(30);
  http->set_payload_max_length(64 << 20);
  date_offset = opt.date_offset_s;
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    std::time_t t = static_cast<std::time_t>(std::time(nullptr) + date_offset.load());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[40];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    res.set_header("Date", date);
    Dispatch(req, res);
  };
  http->Get(".*", handler);
  http->Post(".*", handler);
  http->Delete(".*", handler);
  const std::string bind = opt.extra_addresses.empty() ? "127.0.0.1" : "0.0.0.0";
  if (opt.port == 0) {
    port = http->bind_to_any_port(bind);
    if (port <= 0) return Status::Unavailable("cannot bind " + bind);
  } else {
    if (!http->bind_to_port(bind, opt.port)) {
      return Status::Unavailable("cannot bind " + bind + ":" + std::to_string(opt.port));
    }
    port = opt.port;
  }
  origin = std::string(opt.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port);
  // The worker pool is created on this thread and inherits its blocked SIGPIPE.
  thread = std::thread([this] {
    BlockSigpipeOnThisThread();
    http->listen_after_bind();
  });

  // Files a client (or grin-jobs) can be pointed at directly.
  json secret = {{"installed",
                  {{"client_id", opt.client_id},
                   {"client_secret", opt.client_secret},
                   {"project_id", "grin-fake"},
                   {"auth_uri", origin + "/auth"},
                   {"token_uri", origin + "/token"},
                   {"redirect_uris", json::array({"http://localhost"})}}}};
  GRIN_RETURN_IF_ERROR(WriteFile0600(state_dir + "/client_secret.json", secret.dump(2) + "\n"));
  json creds = {{"refresh_token", opt.refresh_token},
                {"token_uri", origin + "/token"},
                {"client_id", opt.client_id},
                {"client_secret", opt.client_secret},
                {"scopes", json::array({"openid", "https://www.googleapis.com/auth/userinfo.email",
                                        "https://www.googleapis.com/auth/userinfo.profile"})}};
  GRIN_RETURN_IF_ERROR(WriteFile0600(state_dir + "/credentials.json", creds.dump(2) + "\n"));
  return Status::Ok();
}

void FakeGrinServer::Impl::CountRequest(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> l(stats_mu);
  auto& e = stats.endpoints[endpoint];
  ++e.requests;
  ++e.by_status[status];
}

std::string FakeGrinServer::Impl::IssueToken() {
  unsigned char rnd[18];
  RAND_bytes(rnd, sizeof rnd);
  std::string tok = "ya29.fake-" + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(rnd), 18));
  std::lock_guard<std::mutex> l(auth_mu);
  access_tokens[tok] = Now() + opt.token_ttl_s;
  {
    std::lock_guard<std::mutex> s(stats_mu);
    ++stats.tokens_issued;
  }
  return tok;
}

bool FakeGrinServer::Impl::CheckAuth(RequestCtx& c) {
  if (!opt.auth_required) return true;
  const std::string h = c.req.get_header_value("Authorization");
  bool ok = false;
  if (h.rfind("Bearer ", 0) == 0) {
    std::lock_guard<std::mutex> l(auth_mu);
    auto it = access_tokens.find(h.substr(7));
    ok = it != access_tokens.end() && it->second > Now();
  }
  if (ok) return true;
  {
    std::lock_guard<std::mutex> l(stats_mu);
    ++stats.auth_failures;
  }
  if (opt.auth_failure == "302") {
    c.res.status = 302;
    c.res.set_header("Location", origin + "/ServiceLogin?continue=" +
                                     PercentEncode(origin + c.req.path));
  } else if (opt.auth_failure == "403") {
    SetErrorPage(c.res, 403, "Forbidden");
  } else {
    c.res.set_header("WWW-Authenticate", "Bearer realm=\"grin-fake\", error=\"invalid_token\"");
    SetErrorPage(c.res, 401, "Unauthorized");
  }
  return false;
}

void FakeGrinServer::Impl::HandleToken(RequestCtx& c) {
  const auto& q = c.req;
  auto error = [&](int status, const char* err, const char* desc) {
    Json(c.res, status, {{"error", err}, {"error_description", desc}});
  };
  const std::string grant = q.get_param_value("grant_type");
  const char* kScope =
      "openid https://www.googleapis.com/auth/userinfo.email "
      "https://www.googleapis.com/auth/userinfo.profile";
  bool give_refresh = opt.rotate_refresh_token;
  if (grant == "refresh_token" || grant == "authorization_code") {
    if (q.get_param_value("client_id") != opt.client_id ||
        q.get_param_value("client_secret") != opt.client_secret) {
      return error(401, "invalid_client", "The OAuth client was not found.");
    }
    std::lock_guard<std::mutex> l(auth_mu);
    if (grant == "refresh_token") {
      if (refresh_revoked || q.get_param_value("refresh_token") != refresh_token) {
        return error(400, "invalid_grant", "Token has been expired or revoked.");
      }
    } else {
      auto it = auth_codes.find(q.get_param_value("code"));
      if (it == auth_codes.end() || it->second != q.get_param_value("redirect_uri")) {
        return error(400, "invalid_grant", "Malformed auth code.");
      }
      auth_codes.erase(it);
      give_refresh = true;
      refresh_revoked = false;
    }
    if (give_refresh && grant == "refresh_token") {
      refresh_token = "1//fake-rotated-" + std::to_string(++token_serial);
    }
  } else if (grant == "urn:ietf:params:oauth:grant-type:jwt-bearer") {
    if (q.get_param_value("assertion").empty()) {
      return error(400, "invalid_grant", "Missing assertion.");
    }
  } else {
    return error(400, "unsupported_grant_type", "Invalid grant_type.");
  }
  const std::string tok = IssueToken();
  const int64_t exp = Now() + opt.token_ttl_s;
  json payload = {{"iss", origin}, {"email", opt.account_email}, {"email_verified", true},
                  {"aud", opt.client_id}, {"iat", Now()}, {"exp", exp}};
  std::string id_token = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
                         Base64UrlEncode(payload.dump()) + ".";
  json reply = {{"access_token", tok}, {"expires_in", opt.token_ttl_s},
                {"token_type", "Bearer"}, {"scope", kScope}, {"id_token", id_token}};
  if (give_refresh) {
    std::lock_guard<std::mutex> l(auth_mu);
    reply["refresh_token"] = refresh_token;
  }
  {
    std::lock_guard<std::mutex> l(stats_mu);
    if (grant == "refresh_token") ++stats.refreshes;
  }
  Json(c.res, 200, reply);
}

// GET /auth?client_id&redirect_uri&state&...: consents at once and redirects with a code.
void FakeGrinServer::Impl::HandleConsent(RequestCtx& c) {
  const std::string redirect = c.req.get_param_value("redirect_uri");
  if (c.req.get_param_value("client_id") != opt.client_id) {
    return SetErrorPage(c.res, 400, "invalid client_id");
  }
  if (redirect.rfind("http://127.0.0.1:", 0) != 0 && redirect.rfind("http://localhost", 0) != 0) {
    return SetErrorPage(c.res, 400, "redirect_uri must be a loopback address");
  }
  unsigned char rnd[12];
  RAND_bytes(rnd, sizeof rnd);
  std::string code = "4/fake-" + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(rnd), 12));
  {
    std::lock_guard<std::mutex> l(auth_mu);
    auth_codes[code] = redirect;
  }
  std::string loc = redirect + (redirect.find('?') == std::string::npos ? "?" : "&") +
                    "code=" + PercentEncode(code);
  if (c.req.has_param("state")) {
    loc += "&state=" + PercentEncode(c.req.get_param_value("state"));
  }
  c.res.status = 302;
  c.res.set_header("Location", loc);
}

void FakeGrinServer::Impl::Dispatch(const httplib::Request& req, httplib::Response& res) {
  // httplib applies a request's Range to whatever this answers, so a fault's error page for a
  // ranged archive GET came back as 416 (or a slice of the page). Range is HandleArchive's
  // decision alone (it reads the header): drop httplib's parsed ranges for every request. The
  // Request is httplib's own non-const local, so the cast is safe.
  const_cast<httplib::Request&>(req).ranges.clear();
  const int64_t now_conc = ++concurrent;
  {
    std::lock_guard<std::mutex> l(stats_mu);
    stats.peak_concurrent_requests = std::max(stats.peak_concurrent_requests, now_conc);
  }
  struct Dec {
    std::atomic<int64_t>& c;
    ~Dec() { --c; }
  } dec{concurrent};

  RequestCtx c{req, res, "", "", "", {}, {}};
  {
    bool is_new = false, resumed = false;
    c.conn_request = connections.Next(req, &is_new, &resumed);
    if (is_new) {
      std::lock_guard<std::mutex> l(stats_mu);
      ++stats.connections;
      stats.tls_resumed += resumed ? 1 : 0;
    }
  }
  const std::string& path = req.path;
  if (path.rfind("/_fake/", 0) == 0) {
    if (!IsLoopbackPeer(req.remote_addr)) return SetErrorPage(res, 403, "loopback only");
    return HandleControl(req, res);
  }
  const std::string kLib = "/libraries/";
  if (path == "/token" && req.method == "POST") {
    c.endpoint = "token";
  } else if (path == "/auth") {
    c.endpoint = "auth";
  } else if (path == "/ServiceLogin") {
    c.endpoint = "service_login";
  } else if (path.rfind("/_blob/", 0) == 0) {
    c.endpoint = "blob";
    c.file = path.substr(7);
  } else if (path.rfind(kLib, 0) == 0) {
    std::string rest = path.substr(kLib.size());
    size_t slash = rest.find('/');
    c.dir = rest.substr(0, slash);
    std::string leaf = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (slash == std::string::npos || leaf.empty()) {
      c.endpoint = "probe";
    } else if (leaf.size() > 1 && leaf[0] == '_') {
      c.endpoint = leaf.substr(1);
    } else if (leaf.size() > 11 && leaf.compare(leaf.size() - 11, 11, ".tar.gz.gpg") == 0) {
      c.endpoint = req.method == "HEAD" ? "archive_head" : "archive_get";
      c.file = leaf;
    } else {
      c.endpoint = "unknown";
    }
  } else {
    c.endpoint = "unknown";
  }

  static const std::set<std::string> kGrin = {
      "probe", "all_books", "converted", "in_process", "failed", "available", "barcode_search",
      "monthly_report", "process", "archive_head", "archive_get", "blob"};
  auto finish = [&] { CountRequest(c.endpoint, res.status < 0 ? 200 : res.status); };

  if (c.endpoint == "unknown") {
    SetErrorPage(res, 404, "Not Found");
    return finish();
  }
  if (c.endpoint == "service_login") {
    res.set_content("<html><body>Sign in - Google Accounts</body></html>", "text/html");
    return finish();
  }
  if (req.target.size() > opt.max_url_length) {
    SetErrorPage(res, 414, "Request-URI Too Large");
    return finish();
  }
  // Barcodes named by the request, for fault matching and per-barcode counters.
  if (c.endpoint == "process" || c.endpoint == "barcode_search") {
    for (size_t i = 0; i < req.get_param_value_count("barcodes"); ++i) {
      std::string v = req.get_param_value("barcodes", i);
      std::string cur;
      for (char ch : v + ",") {
        if (ch == ',' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '+') {
          if (!cur.empty()) c.barcodes.push_back(cur);
          cur.clear();
        } else {
          cur += ch;
        }
      }
    }
    const std::string ct = req.get_header_value("Content-Type");
    if (c.endpoint == "process" && req.method == "POST" && !req.body.empty() &&
        ct.find("application/x-www-form-urlencoded") == std::string::npos) {
      std::string cur;
      for (char ch : req.body + "\n") {
        if (ch == ',' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
          if (!cur.empty()) c.barcodes.push_back(cur);
          cur.clear();
        } else {
          cur += ch;
        }
      }
    }
  } else if (!c.file.empty() && c.endpoint != "blob") {
    std::string bc = c.file.substr(0, c.file.size() - 11);
    if (bc.rfind(c.dir + "_", 0) == 0) bc = bc.substr(c.dir.size() + 1);
    c.barcodes.push_back(bc);
  }

  if (kGrin.count(c.endpoint) && !(c.endpoint == "blob" && !opt.blob_requires_auth)) {
    if (!CheckAuth(c)) return finish();
  }
  if (c.endpoint != "token" && c.endpoint != "auth" && c.endpoint != "blob" &&
      !corpora.count(c.dir)) {
    SetErrorPage(res, 403, "This account may not have permission to access this directory.");
    return finish();
  }
  c.fired = faults.Fire(c.endpoint, c.dir, c.barcodes, RequestFacts{Now(), c.conn_request});
  if (c.Fired("reset")) {
    // No reply: the connection is reset; httplib's write of `res` then fails and it closes.
    {
      std::lock_guard<std::mutex> l(stats_mu);
      ++stats.resets;  // counted first, so a peer that saw the reset also sees the count
    }
    AbortConnection(ConnectionFd(req), 0);
    res.status = 500;
    CountRequest(c.endpoint, 0);
    return;
  }
  if (const FaultRule* f = c.Fired("rate_limit")) {
    // GCRA: `next` is the theoretical arrival time of the next request; one may come up to
    // burst - 1 intervals early.
    const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(1.0 / f->rate_rps));
    auto bucket = BucketFor(f->id);
    bool over = false;
    {
      std::lock_guard<std::mutex> l(bucket->mu);
      const auto now = std::chrono::steady_clock::now();
      if (bucket->next - (f->burst - 1) * interval > now) {
        over = true;
      } else {
        bucket->next = std::max(bucket->next, now) + interval;
      }
    }
    if (over) {
      if (!f->retry_after.empty()) res.set_header("Retry-After", f->retry_after);
      SetErrorPage(res, f->status, "Too many requests");
      return finish();
    }
  }
  if (const FaultRule* f = c.Fired("slow_first_byte")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(f->delay_ms));
  }
  if (const FaultRule* f = c.Fired("status")) {
    if (!f->retry_after.empty()) res.set_header("Retry-After", f->retry_after);
    SetErrorPage(res, f->status, f->status >= 500 ? "Server Error" : "Error");
    return finish();
  }
  if (c.Fired("service_login")) {
    res.status = 302;
    res.set_header("Location", origin + "/ServiceLogin?continue=" +
                                   PercentEncode(origin + req.path));
    return finish();
  }
  if (c.Fired("unavailable")) {
    SetUnavailablePage(res);
    return finish();
  }
  if (c.endpoint == "token" && c.Fired("invalid_grant")) {
    Json(res, 400, {{"error", "invalid_grant"},
                    {"error_description", "Token has been expired or revoked."}});
    return finish();
  }

  if (corpora.count(c.dir)) corpora[c.dir]->Tick(Now());
  if (c.endpoint == "token") HandleToken(c);
  else if (c.endpoint == "auth") HandleConsent(c);
  else if (c.endpoint == "probe") HandleProbe(c);
  else if (c.endpoint == "barcode_search") HandleBarcodeSearch(c);
  else if (c.endpoint == "monthly_report") HandleMonthlyReport(c);
  else if (c.endpoint == "process") HandleProcess(c);
  else if (c.endpoint == "archive_head" || c.endpoint == "archive_get") HandleArchive(c, false);
  else if (c.endpoint == "blob") HandleArchive(c, true);
  else if (c.endpoint == "all_books" || c.endpoint == "converted" || c.endpoint == "in_process" ||
           c.endpoint == "failed" || c.endpoint == "available") HandleList(c);
  else SetErrorPage(res, 404, "Not Found");
  finish();
}

// ---- control API ----------------------------------------------------------------------------

std::string FakeGrinServer::Impl::StatsJson() const {
  std::lock_guard<std::mutex> l(stats_mu);
  json j;
  json eps = json::object();
  for (const auto& [name, e] : stats.endpoints) {
    json st = json::object();
    for (const auto& [code, n] : e.by_status) st[std::to_string(code)] = n;
    eps[name] = {{"requests", e.requests}, {"by_status", st}};
  }
  json bcs = json::object();
  for (const auto& [key, b] : stats.barcodes) {
    bcs[key] = {{"heads", b.heads}, {"gets", b.gets}, {"ranged_gets", b.ranged_gets},
                {"bytes", b.bytes}, {"process", b.process}, {"searched", b.searched}};
  }
  j["endpoints"] = eps;
  j["barcodes"] = bcs;
  j["tokens_issued"] = stats.tokens_issued;
  j["refreshes"] = stats.refreshes;
  j["auth_failures"] = stats.auth_failures;
  j["bytes_served"] = stats.bytes_served;
  j["wasted_bytes"] = stats.wasted_bytes;
  j["peak_concurrent_requests"] = stats.peak_concurrent_requests;
  j["connections"] = stats.connections;
  j["tls_resumed"] = stats.tls_resumed;
  j["resets"] = stats.resets;
  j["concurrent_requests"] = concurrent.load();
  j["now"] = Now();
  return j.dump();
}

void FakeGrinServer::Impl::HandleControl(const httplib::Request& req, httplib::Response& res) {
  const std::string what = req.path.substr(7);
  if (what == "stats") {
    res.set_content(StatsJson(), "application/json");
  } else if (what == "gets") {
    json a = json::array();
    {
      std::lock_guard<std::mutex> l(stats_mu);
      for (const auto& g : stats.archive_gets) {
        a.push_back({{"barcode", g.barcode}, {"arrived_us", g.arrived_us},
                     {"first_byte_us", g.first_byte_us}, {"end_us", g.end_us},
                     {"bytes", g.bytes}, {"status", g.status}});
      }
    }
    res.set_content(a.dump(), "application/json");
  } else if (what == "faults" && req.method == "GET") {
    res.set_content(FaultRulesToJson(faults.List()), "application/json");
  } else if (what == "faults" && req.method == "DELETE") {
    faults.Clear();
    Json(res, 200, {{"cleared", true}});
  } else if (what == "faults" && req.method == "POST") {
    auto rules = ParseFaultRules(req.body);
    if (!rules.ok()) return Json(res, 400, {{"error", rules.status().message()}});
    json ids = json::array();
    for (auto& r : *rules) ids.push_back(faults.Add(std::move(r), Now()));
    Json(res, 200, {{"ids", ids}});
  } else if (what == "clock") {
    if (req.has_param("advance")) clock_offset += std::stoll(req.get_param_value("advance"));
    Json(res, 200, {{"now", Now()}});
  } else if (what == "tick") {
    for (auto& [d, corpus] : corpora) corpus->Tick(Now());
    Json(res, 200, {{"now", Now()}});
  } else if (what == "revoke") {
    const std::string w = req.get_param_value("what");
    std::lock_guard<std::mutex> l(auth_mu);
    if (w == "access" || w == "all" || w.empty()) access_tokens.clear();
    if (w == "refresh" || w == "all") refresh_revoked = true;
    Json(res, 200, {{"revoked", w.empty() ? "access" : w}});
  } else if (what == "token") {
    Json(res, 200, {{"access_token", IssueToken()}, {"expires_in", opt.token_ttl_s}});
  } else if (what == "reconvert" || what == "set_status") {
    auto it = corpora.find(req.get_param_value("dir"));
    if (it == corpora.end()) return Json(res, 404, {{"error", "unknown dir"}});
    auto idx = it->second->IndexOf(req.get_param_value("barcode"));
    if (!idx) return Json(res, 404, {{"error", "unknown barcode"}});
    if (what == "reconvert") {
      it->second->Reconvert(*idx, Now());
    } else {
      static const std::map<std::string, ConvertStatus> kNames = {
          {"available", ConvertStatus::kAvailable}, {"in_process", ConvertStatus::kInProcess},
          {"converted", ConvertStatus::kConverted}, {"failed", ConvertStatus::kFailed},
          {"not_allowed", ConvertStatus::kNotAllowed}};
      auto s = kNames.find(req.get_param_value("status"));
      if (s == kNames.end()) return Json(res, 400, {{"error", "unknown status"}});
      it->second->SetStatus(*idx, s->second, Now());
    }
    Json(res, 200, {{"ok", true}});
  } else if (what == "reset_stats") {
    std::lock_guard<std::mutex> l(stats_mu);
    stats = FakeGrinStats{};
    last_get_bytes.clear();
    Json(res, 200, {{"ok", true}});
  } else {
    Json(res, 404, {{"error", "unknown control endpoint"}});
  }
}

// ---- FakeGrinServer ---------------------------------------------------------------------------

FakeGrinServer::FakeGrinServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeGrinServer::~FakeGrinServer() = default;

Result<std::unique_ptr<FakeGrinServer>> FakeGrinServer::Start(FakeGrinOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  GRIN_RETURN_IF_ERROR(impl->Init());
  // Wait until the listener runs, so a client's first request cannot race the start-up.
  for (int i = 0; i < 2000 && !impl->http->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!impl->http->is_running()) return Status::Internal("fake GRIN server did not start");
  return std::unique_ptr<FakeGrinServer>(new FakeGrinServer(std::move(impl)));
}

int FakeGrinServer::port() const { return impl_->port; }
std::string FakeGrinServer::origin() const { return impl_->origin; }
std::string FakeGrinServer::base_url() const { return impl_->origin + "/libraries/"; }
std::string FakeGrinServer::token_url() const { return impl_->origin + "/token"; }
std::string FakeGrinServer::auth_url() const { return impl_->origin + "/auth"; }
std::string FakeGrinServer::ca_file() const { return impl_->ca_file; }
std::string FakeGrinServer::state_dir() const { return impl_->state_dir; }
const FakeGrinOptions& FakeGrinServer::options() const { return impl_->opt; }
int64_t FakeGrinServer::AddFault(FaultRule rule) {
  return impl_->faults.Add(std::move(rule), impl_->Now());
}
void FakeGrinServer::ClearFaults() { impl_->faults.Clear(); }
std::vector<FaultRule> FakeGrinServer::Faults() const { return impl_->faults.List(); }
void FakeGrinServer::AdvanceClock(int64_t seconds) { impl_->clock_offset += seconds; }
void FakeGrinServer::SetDateOffset(int64_t seconds) { impl_->date_offset = seconds; }
int64_t FakeGrinServer::NowSeconds() const { return impl_->Now(); }
void FakeGrinServer::Tick() {
  for (auto& [d, corpus] : impl_->corpora) corpus->Tick(impl_->Now());
}
void FakeGrinServer::RevokeAccessTokens() {
  std::lock_guard<std::mutex> l(impl_->auth_mu);
  impl_->access_tokens.clear();
}
void FakeGrinServer::RevokeRefreshToken() {
  std::lock_guard<std::mutex> l(impl_->auth_mu);
  impl_->refresh_revoked = true;
}
std::string FakeGrinServer::IssueAccessToken() { return impl_->IssueToken(); }
FakeGrinStats FakeGrinServer::Stats() const {
  std::lock_guard<std::mutex> l(impl_->stats_mu);
  return impl_->stats;
}
BarcodeStats FakeGrinServer::BarcodeCounters(const std::string& dir,
                                             const std::string& barcode) const {
  std::lock_guard<std::mutex> l(impl_->stats_mu);
  auto it = impl_->stats.barcodes.find(dir + "/" + barcode);
  return it == impl_->stats.barcodes.end() ? BarcodeStats{} : it->second;
}
void FakeGrinServer::ResetStats() {
  std::lock_guard<std::mutex> l(impl_->stats_mu);
  impl_->stats = FakeGrinStats{};
  impl_->last_get_bytes.clear();
}
Corpus* FakeGrinServer::corpus(const std::string& dir) {
  auto it = impl_->corpora.find(dir);
  return it == impl_->corpora.end() ? nullptr : it->second.get();
}
std::string FakeGrinServer::passphrase(const std::string& dir) const {
  return impl_->Passphrase(dir);
}
std::string FakeGrinServer::CurrentETag(const std::string& dir, const std::string& barcode) {
  Corpus* c = corpus(dir);
  if (!c) return "";
  auto idx = c->IndexOf(barcode);
  if (!idx) return "";
  BookRecord b = c->Get(*idx);
  return b.status == ConvertStatus::kConverted ? impl_->ETagFor(dir, b) : "";
}
Result<std::shared_ptr<const std::string>> FakeGrinServer::ArchiveBytes(
    const std::string& dir, const std::string& barcode) {
  Corpus* c = corpus(dir);
  if (!c) return Status::NotFound("unknown directory " + dir);
  auto idx = c->IndexOf(barcode);
  if (!idx) return Status::NotFound("unknown barcode " + barcode);
  BookRecord b = c->Get(*idx);
  ArchiveSpec spec{dir, b.barcode, std::max<uint32_t>(1, b.version), b.pages, b.title};
  return impl_->archives->Get(spec, impl_->Passphrase(dir));
}

}  // namespace grin::fake
