#pragma once
// NetNs: a simulated second host for tests, made with iproute2: a network namespace joined to
// ours by a veth pair on a private /30 (our end 10.232.a.b+1, its end 10.232.a.b+2; a and b from
// our pid and a counter, so parallel tests do not collide), with loopback up inside.
//
// A program runs "on" that host through ExecPrefix() (`ip netns exec <name> ...`); it reaches our
// servers at host_ip() (a server must listen there: PgClusterOptions::extra_listen,
// FakeGrinOptions::extra_addresses). SetLink(false) cuts the link from our side: packets are
// lost silently, as in a partition, until SetLink(true).
//
// Teardown (RAII): the destructor deletes the namespace, which takes the veth pair (and anything
// else in it) with it, also when a failed REQUIRE throws through the test, and also when Create()
// fails half-way. A test process killed outright (SIGKILL) leaves its namespace: the next
// Create() deletes namespaces of this prefix whose creating process is gone.
//
// Needs root and `ip` (iproute2), and a kernel (container) that allows namespaces: Create()'s
// kUnavailable says which is missing, so a test can skip with that message.
//
// Thread safety: one thread at a time per NetNs.

#include <memory>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::testing {

class NetNs {
 public:
  // OK when namespaces can be made here; kUnavailable saying why (not root, no `ip`, the kernel
  // refuses) otherwise.
  static Status Available();

  // A fresh namespace and wired veth pair; kUnavailable (with ip's error) if any step fails, in
  // which case whatever was made is removed again.
  static Result<std::unique_ptr<NetNs>> Create();

  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  // Cuts (false) or restores (true) the link, on our side.
  Status SetLink(bool up);

  // argv prefix that runs a program inside the namespace.
  std::vector<std::string> ExecPrefix() const { return {"ip", "netns", "exec", name_}; }

  const std::string& name() const { return name_; }
  const std::string& host_if() const { return host_if_; }  // our end of the pair
  const std::string& host_ip() const { return host_ip_; }  // our address on the link
  const std::string& ns_ip() const { return ns_ip_; }      // the namespace's address

 private:
  NetNs() = default;
  std::string name_, host_if_, host_ip_, ns_ip_;
};

}  // namespace grin::testing
