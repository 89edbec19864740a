#pragma once
// OAuth2 for GRIN (docs/grin-protocol.md, Authentication): stored credentials and a token source that keeps a
// valid access token at hand.
//
// Credentials file (JSON, mode 0600, written atomically):
//   {"client_id", "client_secret", "refresh_token", "token_uri", "scopes": [...],
//    "token": <access token>, "expiry": <ISO 8601 UTC>, "account": <e-mail from the id_token>}
// The client-secret file is Google's installed-app JSON ({"installed": {...}}).
//
// TokenSource:
//   - CachedToken() never touches the network: it is what PrepareFn calls on the transport's
//     thread before each attempt;
//   - a background thread refreshes `refresh_margin` before expiry (proactive), so requests do
//     not wait for a refresh and the transport's event thread never does one;
//   - ForceRefresh(rejected) is the reactive path after a 401 or a 302 to ServiceLogin: it
//     refreshes unless another caller already replaced the rejected token.
// Tokens and secrets never appear in Status messages, logs or argv.
//
// Thread safety: TokenSource methods may be called from any thread except the transport's own
// (Token() and ForceRefresh() wait for a transport request).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/base/clock.h"
#include "engine/base/logger.h"
#include "engine/base/result.h"
#include "engine/net/transport.h"

namespace grin::grin_client {

inline constexpr const char* kDefaultScopes[] = {
    "openid", "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile"};

struct OAuthCredentials {
  std::string client_id;
  std::string client_secret;
  std::string refresh_token;
  std::string token_uri;
  std::vector<std::string> scopes;
  std::string access_token;   // "" if none yet
  int64_t expiry_micros = 0;  // of access_token
  std::string account;        // e-mail, if known
};

struct ClientSecret {
  std::string client_id;
  std::string client_secret;
  std::string auth_uri;
  std::string token_uri;
};

// Reads a credentials file. kNotFound if missing; kPermissionDenied if group or others may read
// it (it holds a refresh token); kInvalidArgument if it is not the expected JSON.
Result<OAuthCredentials> LoadCredentials(const std::string& path);
// Writes it atomically with mode 0600.
Status SaveCredentials(const std::string& path, const OAuthCredentials& creds);
// Reads Google's installed-app client secret file.
Result<ClientSecret> LoadClientSecret(const std::string& path);

// The e-mail claim of an id_token (a JWT; the signature is not checked: it only labels the
// account for `auth status`). "" if absent.
std::string EmailFromIdToken(std::string_view id_token);

// Builds "a=b&c=d", every name and value percent-encoded (engine/base/encoding.h).
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

// Posts a token request (refresh_token or authorization_code grant) and parses the reply into
// creds (access token, expiry, a rotated refresh token if any, account). Errors: kPermissionDenied
// for invalid_grant / invalid_client (re-run auth setup), kUnavailable for 5xx / transport errors.
Status RequestToken(net::Transport* transport, const std::string& token_uri,
                    const std::vector<std::pair<std::string, std::string>>& form, Clock* clock,
                    OAuthCredentials* creds);

class TokenSource {
 public:
  struct Options {
    std::string credentials_path;     // saved after each refresh; "" = keep in memory only
    int64_t refresh_margin_s = 300;   // refresh this long before expiry
    bool proactive = true;            // run the background refresher
    Clock* clock = nullptr;           // null = SystemClock
    Logger* logger = nullptr;         // null = NullLogger
  };

  TokenSource(net::Transport* transport, OAuthCredentials creds, Options options);
  ~TokenSource();  // stops the refresher
  TokenSource(const TokenSource&) = delete;
  TokenSource& operator=(const TokenSource&) = delete;

  // A valid access token, refreshing first if there is none or it is about to expire.
  Result<std::string> Token();
  // The current token without any network access ("" if none).
  std::string CachedToken() const;
  // Refreshes unless the current token differs from `rejected` (someone refreshed already).
  Status ForceRefresh(const std::string& rejected);

  int64_t expiry_micros() const;
  std::string account() const;
  int64_t refreshes() const;

 private:
  Status RefreshLocked(std::unique_lock<std::mutex>& lock);
  void RefresherLoop();

  net::Transport* const transport_;
  const Options options_;
  Clock* const clock_;
  Logger* const logger_;

  mutable std::mutex mu_;  // guards creds_, refreshes_, stop_, refreshing_
  std::condition_variable cv_;
  OAuthCredentials creds_;
  int64_t refreshes_ = 0;
  bool stop_ = false;
  bool refreshing_ = false;
  Status last_refresh_;  // the outcome of the latest refresh, handed to callers that waited on it
  std::thread refresher_;
};

}  // namespace grin::grin_client
