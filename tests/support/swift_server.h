#pragma once
// The real S3 server for integration tests: OpenStack Swift + s3api behind nginx TLS
// (scripts/s3-server). The one named by GRIN_S3_ENV=<statedir>/env is used when set (scripts/test
// starts one for the whole suite); otherwise a private instance is started and stopped on
// destruction. Its env file gives GRIN_S3_ENDPOINT, _REGION, _CA_FILE, _ACCESS_KEY, _SECRET_KEY.
#include <doctest/doctest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

extern char** environ;

namespace grin::testing {

class SwiftServer {
 public:
  // source_dir: the project's source tree (for scripts/s3-server).
  explicit SwiftServer(std::string source_dir) : script_(std::move(source_dir) + "/scripts/s3-server") {
    std::string env_file;
    if (const char* e = std::getenv("GRIN_S3_ENV"); e != nullptr && *e != '\0') {
      env_file = e;
    } else {
      owned_ = std::make_unique<TempDir>();
      REQUIRE_MESSAGE(Run({script_, "start", owned_->file("swift")}) == 0,
                      "scripts/s3-server start failed");
      env_file = owned_->file("swift/env");
    }
    std::ifstream in(env_file);
    REQUIRE_MESSAGE(in.good(), "cannot read " << env_file);
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) vars_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    REQUIRE(!get("GRIN_S3_ENDPOINT").empty());
  }
  ~SwiftServer() {
    if (owned_) Run({script_, "stop", owned_->file("swift")});
  }
  SwiftServer(const SwiftServer&) = delete;
  SwiftServer& operator=(const SwiftServer&) = delete;

  std::string get(const std::string& k) const {
    auto it = vars_.find(k);
    return it == vars_.end() ? "" : it->second;
  }
  const std::map<std::string, std::string>& vars() const { return vars_; }
  // "NAME=value" for a child's environment.
  std::vector<std::string> ChildEnv() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : vars_) out.push_back(k + "=" + v);
    return out;
  }

 private:
  static int Run(std::vector<std::string> argv) {
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, a[0], nullptr, nullptr, a.data(), environ) != 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string script_;
  std::unique_ptr<TempDir> owned_;
  std::map<std::string, std::string> vars_;
};

}  // namespace grin::testing
