#include "engine/grin/oauth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/base/encoding.h"
#include "engine/base/private_file.h"

namespace grin::grin_client {
namespace {

using nlohmann::json;

std::string IsoFromMicros(int64_t micros) { return FormatIsoUtc(micros); }

int64_t MicrosFromIso(const std::string& iso) {
  std::tm tm{};
  if (iso.size() < 19 || !strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

}  // namespace

std::string EmailFromIdToken(std::string_view id_token) {
  const size_t a = id_token.find('.');
  if (a == std::string_view::npos) return "";
  const size_t b = id_token.find('.', a + 1);
  const std::string payload = Base64UrlDecode(id_token.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1));
  json j = json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("email") || !j["email"].is_string()) return "";
  return j["email"].get<std::string>();
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += PercentEncode(k) + '=' + PercentEncode(v);
  }
  return out;
}

Result<OAuthCredentials> LoadCredentials(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) {
    return Status::NotFound("no GRIN credentials at " + path + ": run `grin-jobs auth setup`");
  }
  GRIN_RETURN_IF_ERROR(CheckPrivateMode(st.st_mode, path, "GRIN credentials"));
  std::ifstream f(path);
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("GRIN credentials " + path + " are not a JSON object");
  }
  OAuthCredentials c;
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  c.client_id = str("client_id");
  c.client_secret = str("client_secret");
  c.refresh_token = str("refresh_token");
  c.token_uri = str("token_uri");
  c.access_token = str("token");
  c.account = str("account");
  c.expiry_micros = MicrosFromIso(str("expiry"));
  if (j.contains("scopes") && j["scopes"].is_array()) {
    for (const auto& s : j["scopes"]) {
      if (s.is_string()) c.scopes.push_back(s.get<std::string>());
    }
  }
  if (c.client_id.empty() || c.client_secret.empty() || c.refresh_token.empty()) {
    return Status::InvalidArgument("GRIN credentials " + path +
                                   " lack client_id, client_secret or refresh_token");
  }
  return c;
}

Status SaveCredentials(const std::string& path, const OAuthCredentials& c) {
  json j = {{"client_id", c.client_id},         {"client_secret", c.client_secret},
            {"refresh_token", c.refresh_token}, {"token_uri", c.token_uri},
            {"scopes", c.scopes},               {"token", c.access_token},
            {"expiry", c.expiry_micros ? IsoFromMicros(c.expiry_micros) : ""},
            {"account", c.account}};
  const std::string tmp = path + ".tmp";
  const std::string text = j.dump(2) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::PermissionDenied("cannot write " + tmp);
  fchmod(fd, 0600);
  ssize_t n = write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return Status::Internal("cannot save GRIN credentials to " + path);
  }
  return Status::Ok();
}

Result<ClientSecret> LoadClientSecret(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("no OAuth client secret file at " + path);
  json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(path + " is not a JSON object");
  }
  const json* b = j.contains("installed") ? &j["installed"] : j.contains("web") ? &j["web"] : &j;
  ClientSecret s;
  auto str = [&](const char* k) {
    return b->contains(k) && (*b)[k].is_string() ? (*b)[k].get<std::string>() : std::string();
  };
  s.client_id = str("client_id");
  s.client_secret = str("client_secret");
  s.auth_uri = str("auth_uri");
  s.token_uri = str("token_uri");
  if (s.client_id.empty() || s.client_secret.empty()) {
    return Status::InvalidArgument(path + " lacks client_id or client_secret");
  }
  return s;
}

Status RequestToken(net::Transport* transport, const std::string& token_uri,
                    const std::vector<std::pair<std::string, std::string>>& form, Clock* clock,
                    OAuthCredentials* creds) {
  net::Request req;
  req.method = net::Method::kPost;
  req.url = token_uri;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = net::BodySource::Memory(FormEncode(form));
  req.sink = net::ResponseSink::Memory(1 << 20);
  req.label = "oauth.token";
  net::Response r = transport->SubmitFuture(std::move(req)).get();
  if (!r.transport_status.ok()) {
    return Status(StatusCode::kUnavailable,
                  "token endpoint unreachable: " + r.transport_status.message());
  }
  json j = json::parse(r.body, nullptr, false);
  if (r.http_status != 200) {
    std::string err = !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()
                          ? j["error"].get<std::string>()
                          : "";
    if (err == "invalid_grant" || err == "invalid_client" || err == "unauthorized_client") {
      return Status::PermissionDenied("the token endpoint refused the credentials (" + err +
                                      "): run `grin-jobs auth setup`");
    }
    if (r.http_status >= 500 || r.http_status == 429) {
      return Status::Unavailable("token endpoint answered HTTP " + std::to_string(r.http_status));
    }
    return Status::PermissionDenied("token endpoint answered HTTP " +
                                    std::to_string(r.http_status) +
                                    (err.empty() ? "" : " (" + err + ")"));
  }
  if (j.is_discarded() || !j.is_object() || !j.contains("access_token") ||
      !j["access_token"].is_string()) {
    return Status::DataLoss("token endpoint reply has no access_token");
  }
  creds->access_token = j["access_token"].get<std::string>();
  int64_t expires_in = j.contains("expires_in") && j["expires_in"].is_number_integer()
                           ? j["expires_in"].get<int64_t>()
                           : 3600;
  creds->expiry_micros = clock->NowMicros() + expires_in * 1'000'000;
  if (j.contains("refresh_token") && j["refresh_token"].is_string()) {
    creds->refresh_token = j["refresh_token"].get<std::string>();  // rotated: keep the new one
  }
  if (j.contains("id_token") && j["id_token"].is_string()) {
    std::string email = EmailFromIdToken(j["id_token"].get<std::string>());
    if (!email.empty()) creds->account = email;
  }
  return Status::Ok();
}

TokenSource::TokenSource(net::Transport* transport, OAuthCredentials creds, Options options)
    : transport_(transport),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : SystemClock::Default()),
      logger_(options_.logger ? options_.logger : NullLogger::Default()),
      creds_(std::move(creds)) {
  if (options_.proactive) refresher_ = std::thread([this] { RefresherLoop(); });
}

TokenSource::~TokenSource() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

std::string TokenSource::CachedToken() const {
  std::lock_guard<std::mutex> l(mu_);
  return creds_.access_token;
}

int64_t TokenSource::expiry_micros() const {
  std::lock_guard<std::mutex> l(mu_);
  return creds_.expiry_micros;
}

std::string TokenSource::account() const {
  std::lock_guard<std::mutex> l(mu_);
  return creds_.account;
}

int64_t TokenSource::refreshes() const {
  std::lock_guard<std::mutex> l(mu_);
  return refreshes_;
}

// Called with the lock held; releases it while the request runs. One refresh at a time: a
// second caller waits for the first and then sees its token.
Status TokenSource::RefreshLocked(std::unique_lock<std::mutex>& lock) {
  if (refreshing_) {
    cv_.wait(lock, [this] { return !refreshing_; });
    // The refresh we waited for failed: its reason (a revoked refresh token is not retryable).
    if (!last_refresh_.ok()) return last_refresh_;
    return creds_.access_token.empty() ? Status::Unavailable("token refresh failed")
                                       : Status::Ok();
  }
  refreshing_ = true;
  OAuthCredentials next = creds_;
  lock.unlock();
  Status s = RequestToken(transport_, next.token_uri,
                          {{"grant_type", "refresh_token"},
                           {"client_id", next.client_id},
                           {"client_secret", next.client_secret},
                           {"refresh_token", next.refresh_token}},
                          clock_, &next);
  if (s.ok() && !options_.credentials_path.empty()) {
    Status saved = SaveCredentials(options_.credentials_path, next);
    if (!saved.ok()) {
      logger_->Log(LogLevel::kWarning, "grin.oauth.save_failed", {{"error", saved.message()}});
    }
  }
  lock.lock();
  refreshing_ = false;
  last_refresh_ = s;
  if (s.ok()) {
    creds_ = std::move(next);
    ++refreshes_;
    if (logger_->Enabled(LogLevel::kInfo)) {
      logger_->Log(LogLevel::kInfo, "grin.oauth.refreshed",
                   {{"expiry", FormatIsoUtc(creds_.expiry_micros)}});
    }
  } else {
    logger_->Log(LogLevel::kWarning, "grin.oauth.refresh_failed", {{"error", s.message()}});
  }
  cv_.notify_all();
  return s;
}

Result<std::string> TokenSource::Token() {
  std::unique_lock<std::mutex> l(mu_);
  const int64_t now = clock_->NowMicros();
  if (creds_.access_token.empty() || creds_.expiry_micros - 30'000'000 <= now) {
    GRIN_RETURN_IF_ERROR(RefreshLocked(l));
  }
  return creds_.access_token;
}

Status TokenSource::ForceRefresh(const std::string& rejected) {
  std::unique_lock<std::mutex> l(mu_);
  if (!creds_.access_token.empty() && creds_.access_token != rejected && !refreshing_) {
    return Status::Ok();  // someone else refreshed already
  }
  return RefreshLocked(l);
}

void TokenSource::RefresherLoop() {
  std::unique_lock<std::mutex> l(mu_);
  int64_t backoff_s = 5;
  while (!stop_) {
    const int64_t due = creds_.expiry_micros - options_.refresh_margin_s * 1'000'000;
    const int64_t wait_us = creds_.access_token.empty() ? 0 : due - clock_->NowMicros();
    if (wait_us > 0) {
      // Wake at least every second so a FakeClock jump or a stop is seen promptly.
      cv_.wait_for(l, std::chrono::microseconds(std::min<int64_t>(wait_us, 1'000'000)));
      continue;
    }
    if (refreshing_) {
      cv_.wait(l, [this] { return !refreshing_ || stop_; });
      continue;
    }
    Status s = RefreshLocked(l);
    if (!s.ok()) {
      if (s.code() == StatusCode::kPermissionDenied) {
        // The refresh token itself is refused: retrying will not help; requests will surface it.
        cv_.wait(l, [this] { return stop_; });
        break;
      }
      cv_.wait_for(l, std::chrono::seconds(backoff_s), [this] { return stop_; });
      backoff_s = std::min<int64_t>(backoff_s * 2, 300);
    } else {
      backoff_s = 5;
    }
  }
}

}  // namespace grin::grin_client
