#include "cli/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace grin::cli {
namespace {

struct Parsed {
  std::string host;
  bool ipv6 = false;
  int port = 0;
  bool loopback = false;
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Status Bad(const std::string& address, const std::string& why) {
  return Status::InvalidArgument("--metrics-listen '" + address.substr(0, 80) + "': " + why);
}

Result<Parsed> Parse(const std::string& address) {
  Parsed p;
  std::string host = "127.0.0.1", port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return Bad(address, "use [IPv6]:PORT");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else if (size_t colon = address.rfind(':'); colon != std::string::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  } else {
    port = address;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return Bad(address, "the port must be a number from 0 to 65535 (0 = any free port)");
  }
  p.port = std::stoi(port);
  if (host == "localhost") host = "127.0.0.1";
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&p.addr);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(p.port));
    sa->sin_addr = a4;
    p.len = sizeof(sockaddr_in);
    p.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&p.addr);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(p.port));
    sa->sin6_addr = a6;
    p.len = sizeof(sockaddr_in6);
    p.ipv6 = true;
    p.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    return Bad(address, "give a numeric address (127.0.0.1, [::1]) or localhost, then :PORT");
  }
  p.host = host;
  return p;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away
    off += static_cast<size_t>(n);
  }
}

std::string Reply(int code, const char* reason, const char* type, const std::string& body,
                  bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n" +
                    "Content-Type: " + type + "\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (code == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head) out += body;
  return out;
}

}  // namespace

Status ValidateMetricsAddress(const std::string& address, bool allow_remote) {
  auto p = Parse(address);
  if (!p.ok()) return p.status();
  if (!p->loopback && !allow_remote) {
    return Bad(address, "not a loopback address; the metrics endpoint has no authentication, "
                        "so binding it to other hosts needs --metrics-allow-remote");
  }
  return Status::Ok();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const MetricsListenOptions& options,
                                                            Metrics* metrics) {
  GRIN_RETURN_IF_ERROR(ValidateMetricsAddress(options.address, options.allow_remote));
  GRIN_ASSIGN_OR_RETURN(Parsed p, Parse(options.address));
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->metrics_ = metrics;
  s->options_ = options;
  s->host_ = p.host;
  s->ipv6_ = p.ipv6;
  int fd = ::socket(p.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable(std::string("metrics listener: socket: ") + strerror(errno));
  s->listen_fd_ = fd;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&p.addr), p.len) != 0 || ::listen(fd, 16) != 0) {
    return Status::Unavailable("--metrics-listen " + options.address + ": cannot listen (" +
                               strerror(errno) + "); choose another port, or 0 for any free one");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = p.ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(s->wake_fd_, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("metrics listener: pipe: ") + strerror(errno));
  }
  MetricsServer* raw = s.get();
  s->thread_ = std::thread([raw] { raw->Loop(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    if (options_.linger_seconds > 0 && options_.on_linger) options_.on_linger();
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::duration<double>(options_.linger_seconds);
    while (std::chrono::steady_clock::now() < until &&
           !(options_.stop && options_.stop->load() != 0)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    char c = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_[1], &c, 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_fd_[0], wake_fd_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

std::string MetricsServer::url() const {
  return "http://" + (ipv6_ ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_) +
         "/metrics";
}

void MetricsServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Serve(fd);
    ::close(fd);
  }
}

void MetricsServer::Serve(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  size_t eol = req.find("\r\n");
  if (eol == std::string::npos) return;  // not HTTP, or gone: just close
  std::string line = req.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) {
    SendAll(fd, Reply(400, "Bad Request", "text/plain", "bad request\n", false));
    return;
  }
  std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    SendAll(fd, Reply(405, "Method Not Allowed", "text/plain", "use GET\n", false));
  } else if (path != "/metrics") {
    SendAll(fd, Reply(404, "Not Found", "text/plain", "grin-jobs serves /metrics only\n", head));
  } else {
    SendAll(fd, Reply(200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics_->Render(),
                      head));
  }
}

}  // namespace grin::cli
