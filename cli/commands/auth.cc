// grin-jobs auth setup | status: the installed-app OAuth2 flow for GRIN, and what is stored.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>

#include "cli/cli.h"
#include "cli/commands/grin_stack.h"
#include "cli/credentials_search.h"
#include "cli/run_context.h"

namespace grin::cli {
namespace {

using grin_client::OAuthCredentials;

// --credentials-dir, "" when not given.
std::string FlagDir(const cxxopts::ParseResult& parsed) {
  return parsed.count("credentials-dir") ? parsed["credentials-dir"].as<std::string>() : "";
}

std::string RandomState() {
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) s += kHex[rd() & 15];
  return s;
}

std::string QueryParam(const std::string& url_or_query, const std::string& name) {
  const size_t q = url_or_query.find('?');
  std::string query = q == std::string::npos ? url_or_query : url_or_query.substr(q + 1);
  query = query.substr(0, query.find_first_of(" #"));
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string kv = query.substr(pos, amp - pos);
    if (kv.rfind(name + "=", 0) == 0) {
      std::string v = kv.substr(name.size() + 1), out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += v[i] == '+' ? ' ' : v[i];
        }
      }
      return out;
    }
    pos = amp + 1;
  }
  return "";
}

// Waits for one browser redirect on 127.0.0.1:port and returns the request target
// ("/?code=...&state=..."). kUnavailable on timeout.
Result<std::string> AwaitRedirect(int listen_fd, int timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, 500) <= 0) continue;
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
      pollfd rp{fd, POLLIN, 0};
      if (poll(&rp, 1, 5000) <= 0) break;
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    const bool has_code = req.rfind("GET ", 0) == 0 &&
                          (req.find("code=") != std::string::npos ||
                           req.find("error=") != std::string::npos);
    const std::string body = has_code
                                 ? "<html><body>grin-jobs: authorisation received. You can close "
                                   "this window.</body></html>"
                                 : "<html><body>grin-jobs is waiting for the OAuth redirect."
                                   "</body></html>";
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ssize_t w = write(fd, reply.data(), reply.size());
    (void)w;
    close(fd);
    if (has_code) return req.substr(4, req.find(' ', 4) - 4);
  }
  return Status::Unavailable("no OAuth redirect arrived within " + std::to_string(timeout_s) +
                             " s; try `grin-jobs auth setup --paste`");
}

int Setup(const cxxopts::ParseResult& parsed, std::ostream& out, std::ostream& err) {
  std::unique_ptr<RunConfig> config;
  if (parsed.count("run-dir") || parsed.count("run-name")) {
    auto run_dir = ResolveRunDir(parsed);
    if (!run_dir.ok()) return ReportGrinError(err, "auth setup", run_dir.status());
    auto c = LoadRunConfig(*run_dir);
    if (!c.ok()) return ReportGrinError(err, "auth setup", c.status());
    config = std::make_unique<RunConfig>(*c);
  }
  const CredentialsSearch search(FlagDir(parsed), config.get());
  const std::string dir = search.WriteDir().path;
  std::string secret_path;
  if (parsed.count("client-secret")) {
    secret_path = parsed["client-secret"].as<std::string>();
  } else {
    auto found = search.Find(SecretKind::kClientSecret);
    if (!found.ok()) return ReportGrinError(err, "auth setup", found.status());
    out << "OAuth client: " << Describe(*found) << "\n";
    secret_path = found->path;
  }
  auto secret = grin_client::LoadClientSecret(secret_path);
  if (!secret.ok()) return ReportGrinError(err, "auth setup", secret.status());
  std::string token_uri = secret->token_uri;
  if (config && !config->grin_token_url.empty() && config->grin_token_url != kDefaultGrinTokenUrl) {
    token_uri = config->grin_token_url;
  }
  if (token_uri.empty()) token_uri = kDefaultGrinTokenUrl;
  const std::string auth_uri =
      secret->auth_uri.empty() ? "https://accounts.google.com/o/oauth2/auth" : secret->auth_uri;

  int port = parsed["port"].as<int>();
  const bool paste = parsed.count("paste") > 0;
  const bool given_code = parsed.count("code") > 0;
  int listen_fd = -1;
  if (!paste && !given_code) {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (listen_fd < 0 || bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd, 4) != 0) {
      if (listen_fd >= 0) close(listen_fd);
      return ReportGrinError(err, "auth setup",
                         Status::Unavailable("cannot listen on 127.0.0.1:" + std::to_string(port) +
                                             "; use --port N or --paste"));
    }
    socklen_t len = sizeof a;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  const std::string redirect_uri = parsed.count("redirect-uri")
                                       ? parsed["redirect-uri"].as<std::string>()
                                       : "http://127.0.0.1:" + std::to_string(port) + "/";
  const std::string state = RandomState();
  const std::string url =
      auth_uri + "?" +
      grin_client::FormEncode({{"client_id", secret->client_id},
                               {"redirect_uri", redirect_uri},
                               {"response_type", "code"},
                               {"scope", "openid https://www.googleapis.com/auth/userinfo.email "
                                         "https://www.googleapis.com/auth/userinfo.profile"},
                               {"access_type", "offline"},
                               {"prompt", "consent"},
                               {"state", state}});
  std::string code;
  if (given_code) {
    code = parsed["code"].as<std::string>();
  } else {
    out << "Open this URL in a browser signed in to the account on the library's GRIN access "
           "list:\n\n  " << url << "\n\n" << std::flush;
    if (paste) {
      out << "Paste the code (or the whole address the browser ended on): " << std::flush;
      std::string line;
      std::getline(std::cin, line);
      code = line.find("code=") != std::string::npos ? QueryParam(line, "code") : line;
    } else {
      out << "Waiting for the browser on " << redirect_uri << " ...\n" << std::flush;
      auto target = AwaitRedirect(listen_fd, parsed["timeout"].as<int>());
      close(listen_fd);
      if (!target.ok()) return ReportGrinError(err, "auth setup", target.status());
      if (QueryParam(*target, "state") != state) {
        return ReportGrinError(err, "auth setup",
                           Status::PermissionDenied("OAuth redirect with a wrong state; retry"));
      }
      if (!QueryParam(*target, "error").empty()) {
        return ReportGrinError(err, "auth setup", Status::PermissionDenied(
                                                  "consent refused: " + QueryParam(*target, "error")));
      }
      code = QueryParam(*target, "code");
    }
  }
  if (code.empty()) return ReportGrinError(err, "auth setup", Status::InvalidArgument("no code given"));

  net::TransportOptions t;
  if (parsed.count("ca-file")) {
    t.ca_file = parsed["ca-file"].as<std::string>();
  } else if (config) {
    t.ca_file = config->ca_file;
  }
  auto transport = net::CurlTransport::Create(t);
  if (!transport.ok()) return ReportGrinError(err, "auth setup", transport.status());
  OAuthCredentials creds;
  creds.client_id = secret->client_id;
  creds.client_secret = secret->client_secret;
  creds.token_uri = token_uri;
  creds.scopes = {std::begin(grin_client::kDefaultScopes), std::end(grin_client::kDefaultScopes)};
  Status s = grin_client::RequestToken(transport->get(), token_uri,
                                       {{"grant_type", "authorization_code"},
                                        {"code", code},
                                        {"client_id", secret->client_id},
                                        {"client_secret", secret->client_secret},
                                        {"redirect_uri", redirect_uri}},
                                       SystemClock::Default(), &creds);
  (*transport)->Shutdown();
  if (!s.ok()) return ReportGrinError(err, "auth setup", s);
  if (creds.refresh_token.empty()) {
    return ReportGrinError(err, "auth setup",
                       Status::PermissionDenied("no refresh token in the reply (consent must be "
                                                "given with access_type=offline); retry"));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  chmod(dir.c_str(), 0700);
  const std::string path = dir + "/credentials.json";
  s = grin_client::SaveCredentials(path, creds);
  if (!s.ok()) return ReportGrinError(err, "auth setup", s);
  out << "authorised" << (creds.account.empty() ? "" : " as " + creds.account)
      << "; credentials saved to " << path << " (mode 0600)\n";
  return kExitOk;
}

int ShowStatus(const cxxopts::ParseResult& parsed, std::ostream& out, std::ostream& err) {
  std::unique_ptr<RunConfig> config;
  if (parsed.count("run-dir") || parsed.count("run-name")) {
    auto run_dir = ResolveRunDir(parsed);
    if (!run_dir.ok()) return ReportGrinError(err, "auth status", run_dir.status());
    auto c = LoadRunConfig(*run_dir);
    if (!c.ok()) return ReportGrinError(err, "auth status", c.status());
    config = std::make_unique<RunConfig>(*c);
  }
  auto found = CredentialsSearch(FlagDir(parsed), config.get()).Find(SecretKind::kToken);
  if (!found.ok()) return ReportGrinError(err, "auth status", found.status());
  const std::string path = found->path;
  auto creds = grin_client::LoadCredentials(path);
  if (!creds.ok()) return ReportGrinError(err, "auth status", creds.status());
  out << "credentials: " << Describe(*found) << "\n";
  out << "account: " << (creds->account.empty() ? "(unknown until the next refresh)" : creds->account)
      << "\n";
  out << "refresh token: present\n";
  out << "token endpoint: " << creds->token_uri << "\n";
  const int64_t now = SystemClock::Default()->NowMicros();
  if (creds->access_token.empty() || creds->expiry_micros == 0) {
    out << "access token: none yet (fetched on first use)\n";
  } else if (creds->expiry_micros > now) {
    out << "access token: valid until " << FormatIsoUtc(creds->expiry_micros) << " ("
        << (creds->expiry_micros - now) / 60'000'000 << " min left)\n";
  } else {
    out << "access token: expired at " << FormatIsoUtc(creds->expiry_micros)
        << " (refreshed automatically on next use)\n";
  }
  return kExitOk;
}

}  // namespace

int RunAuth(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs auth",
                           "auth setup: sign in to Google (installed-app OAuth2 flow) and save "
                           "the refresh token; auth status: show the stored account and token "
                           "expiry (never the token).");
  AddRunOptions(options);
  const char* env_port = std::getenv("GRIN_OAUTH_PORT");
  options.add_options()("action", "setup or status", cxxopts::value<std::string>())(
      "client-secret", "Google client secret JSON (default: client_secret.json found in the "
      "credentials search order, see --credentials-dir)",
      cxxopts::value<std::string>())(
      "credentials-dir", "Look here first for client_secret.json and credentials.json, and save "
      "credentials.json here; then the run's credentials_dir, $GRIN_JOBS_CONFIG_DIR, "
      "$GRIN_CREDENTIALS_DIR, ~/.config/grin-jobs, ~/.config/grin-transfer",
      cxxopts::value<std::string>())(
      "port", "Loopback port for the browser redirect (0 = any free port)",
      cxxopts::value<int>()->default_value(env_port && *env_port ? env_port : "58432"))(
      "paste", "Remote machine: paste the code instead of the loopback redirect")(
      "code", "Use this authorization code (non-interactive)", cxxopts::value<std::string>())(
      "redirect-uri", "Redirect URI the code was issued for (with --code / --paste)",
      cxxopts::value<std::string>())(
      "timeout", "Seconds to wait for the redirect", cxxopts::value<int>()->default_value("300"))(
      "ca-file", "Extra CA bundle for the token endpoint", cxxopts::value<std::string>());
  options.parse_positional({"action"});
  options.positional_help("setup|status");
  OptionRules rules;
  rules.Int<int>("port", 0, 65535, "0 = any free port")
      .Int<int>("timeout", 1, 86'400, "seconds")
      .ReadableFile("client-secret")
      .DirOrAbsent("credentials-dir")
      .ReadableFile("ca-file");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  const std::string action = parsed.count("action") ? parsed["action"].as<std::string>() : "";
  if (action == "setup") return Setup(parsed, out, err);
  if (action == "status") return ShowStatus(parsed, out, err);
  err << "grin-jobs auth: say `setup` or `status`\n";
  return kExitUsage;
}

}  // namespace grin::cli
