#include "tests/support/netns.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <sstream>

#include "engine/base/subprocess.h"

namespace grin::testing {
namespace {

constexpr char kPrefix[] = "grinscale-";  // namespaces are grinscale-<pid>-<n>

// Runs `ip args...`; OK, or kUnavailable with ip's stderr.
Status Ip(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  auto r = RunAndCapture(args, MinimalEnv({}), "");
  if (r.ok() && r->exited_zero()) return Status::Ok();
  std::string what;
  for (const auto& a : args) what += a + " ";
  std::string err = r.ok() ? r->err : r.status().message();
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  return Status::Unavailable(what + "failed: " + err);
}

// Deletes namespaces of our prefix whose creating process is gone (a test killed outright).
void SweepOrphans() {
  auto r = RunAndCapture({"ip", "netns", "list"}, MinimalEnv({}), "");
  if (!r.ok() || !r->exited_zero()) return;
  std::istringstream in(r->out);
  std::string line;
  while (std::getline(in, line)) {
    std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0) continue;
    long pid = std::strtol(name.c_str() + sizeof kPrefix - 1, nullptr, 10);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    (void)Ip({"netns", "del", name});
  }
}

}  // namespace

Status NetNs::Available() {
  if (::geteuid() != 0) {
    return Status::Unavailable("needs root to make network namespaces (ip netns) for a second host");
  }
  if (FindInPath("ip").empty()) {
    return Status::Unavailable("needs iproute2 (the ip command) to simulate a second host");
  }
  return Status::Ok();
}

Result<std::unique_ptr<NetNs>> NetNs::Create() {
  GRIN_RETURN_IF_ERROR(Available());
  SweepOrphans();
  static std::atomic<int> counter{0};
  const int n = counter++;
  const long pid = static_cast<long>(::getpid());
  // A /30 from pid and counter: 10.232.<a>.<b>, b a multiple of 4; the next one if an
  // interface of this host already has an address in it (a test running beside us).
  std::string net;
  int base = 0;
  for (long k = 0;; ++k) {
    if (k == 64) return Status::Unavailable("no free /30 in 10.232.0.0/16 for a veth pair");
    const long slot = (pid * 8 + n + k) % (256 * 64);
    net = "10.232." + std::to_string(slot / 64) + ".";
    base = static_cast<int>(slot % 64) * 4;
    auto used = RunAndCapture({"ip", "-o", "addr", "show", "to", net + std::to_string(base) + "/30"},
                              MinimalEnv({}), "");
    if (used.ok() && used->exited_zero() && used->out.empty()) break;
  }
  std::unique_ptr<NetNs> ns(new NetNs());
  const std::string id = std::to_string(pid) + "-" + std::to_string(n);
  const std::string name = kPrefix + id;
  GRIN_RETURN_IF_ERROR(Ip({"netns", "add", name}));
  ns->name_ = name;  // from here on the destructor removes it
  const std::string short_id = std::to_string(pid % 10000000) + "x" + std::to_string(n % 100);
  ns->host_if_ = "gs" + short_id + "h";  // at most 15 characters
  const std::string ns_if = "gs" + short_id + "n";
  ns->host_ip_ = net + std::to_string(base + 1);
  ns->ns_ip_ = net + std::to_string(base + 2);
  GRIN_RETURN_IF_ERROR(
      Ip({"link", "add", ns->host_if_, "type", "veth", "peer", "name", ns_if, "netns", name}));
  GRIN_RETURN_IF_ERROR(Ip({"addr", "add", ns->host_ip_ + "/30", "dev", ns->host_if_}));
  GRIN_RETURN_IF_ERROR(Ip({"link", "set", ns->host_if_, "up"}));
  GRIN_RETURN_IF_ERROR(Ip({"-n", name, "addr", "add", ns->ns_ip_ + "/30", "dev", ns_if}));
  GRIN_RETURN_IF_ERROR(Ip({"-n", name, "link", "set", ns_if, "up"}));
  GRIN_RETURN_IF_ERROR(Ip({"-n", name, "link", "set", "lo", "up"}));
  return ns;
}

NetNs::~NetNs() {
  if (name_.empty()) return;
  (void)Ip({"netns", "del", name_});  // takes the veth pair with it
  // Our end, should the pair have outlived the namespace (it never does on Linux; cheap).
  auto r = RunAndCapture({"ip", "link", "show", host_if_}, MinimalEnv({}), "");
  if (r.ok() && r->exited_zero()) (void)Ip({"link", "del", host_if_});
}

Status NetNs::SetLink(bool up) { return Ip({"link", "set", host_if_, up ? "up" : "down"}); }

}  // namespace grin::testing
