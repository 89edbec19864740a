// FileLogger, TeeLogger and the line format: one line per event, secrets redacted, a full disk
// never stops the caller, many threads never interleave lines.
#include "engine/base/logger.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace grin {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST_CASE("log lines: values with spaces, quotes, '=' and newlines stay on one line") {
  std::string line = FormatLogLine(
      "book.failed", {{"barcode", "B1"}, {"error", "bad \"x\"=1\nINFO forged k=v"}, {"e", ""}});
  CHECK(line == "book.failed barcode=B1 error=\"bad \\\"x\\\"=1\\nINFO forged k=v\" e=\"\"");
  CHECK(line.find('\n') == std::string::npos);
  CHECK(FormatLogLine("x", {{"c", std::string("a\x01" "b")}}) == "x c=\"a\\x01b\"");
}

TEST_CASE("log lines: secrets are redacted by key and inside values") {
  // Keys that name a secret: the whole value.
  for (const char* key : {"access_token", "refresh_token", "client_secret", "passphrase",
                          "Authorization", "secret_access_key", "x-amz-signature", "password"}) {
    CAPTURE(key);
    CHECK(RedactLogValue(key, "s3cr3t-value") == "[redacted]");
  }
  struct Case {
    const char* in;
    const char* secret;
    const char* kept;
  };
  const Case cases[] = {
      {"GET https://b.example/raw/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAXX%2F"
       "20261205&X-Amz-Signature=0123abcdef&X-Amz-Expires=60",
       "0123abcdef", "X-Amz-Expires=60"},
      {"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=feed42",
       "feed42", "Authorization:"},
      {"sent header authorization: Bearer ya29.tokenvalue\r\nHost: x", "ya29.tokenvalue",
       "Host: x"},
      {"refresh failed: bearer ya29.abc,def", "ya29.abc", "refresh failed"},
      {"POST /token body grant_type=refresh_token&refresh_token=1//rt-value&client_secret=cs-val",
       "1//rt-value", "grant_type=refresh_token"},
      {"POST /token body grant_type=refresh_token&refresh_token=1//rt-value&client_secret=cs-val",
       "cs-val", "POST /token"},
      {R"(token endpoint said {"access_token": "ya29.json", "expires_in": 3599})", "ya29.json",
       "expires_in"},
      {R"({"error":"invalid_grant","refresh_token":"1//x\"y"})", "1//x", "invalid_grant"},
      {"https://grin/x?token=tok123&a=b", "tok123", "a=b"},
      {"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI", "aws_secret_access_key="},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    std::string r = RedactLogValue("error", c.in);
    CHECK(r.find(c.secret) == std::string::npos);
    CHECK(r.find(c.kept) != std::string::npos);
    CHECK(r.find("[redacted]") != std::string::npos);
  }
  // Ordinary values are left alone.
  for (const char* plain : {"HTTP 503 from GRIN", "s3.retry code=SlowDown", "raw/B1/B1.tar.gz",
                            "the token endpoint refused", "2026-12-05T03:45:00Z"}) {
    CHECK(RedactLogValue("error", plain) == plain);
  }
}

TEST_CASE("FileLogger: UTC time, level, event and fields per line, at its level, file 0600") {
  testing::TempDir dir;
  FakeClock clock(1'796'183'100'123'000);  // 2026-12-02T03:45:00.123Z
  FileLogger::Options o;
  o.min_level = LogLevel::kInfo;
  o.clock = &clock;
  const std::string path = dir.file("a.log");
  {
    auto log = FileLogger::Open(path, o);
    REQUIRE(log.ok());
    CHECK((*log)->Enabled(LogLevel::kInfo));
    CHECK(!(*log)->Enabled(LogLevel::kDebug));
    (*log)->Log(LogLevel::kDebug, "not.written", {});
    (*log)->Log(LogLevel::kInfo, "sync.started", {{"run", "output/x"}});
    (*log)->Log(LogLevel::kWarning, "book.failed", {{"barcode", "B1"}, {"error", "HTTP 404"}});
    CHECK((*log)->dropped() == 0);
  }
  auto lines = Lines(testing::ReadFile(path));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "2026-12-02T03:45:00.123Z INFO sync.started run=output/x");
  CHECK(lines[1] == "2026-12-02T03:45:00.123Z WARN book.failed barcode=B1 error=\"HTTP 404\"");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // A new log never takes over an existing file.
  auto again = FileLogger::Open(path, o);
  CHECK(again.status().code() == StatusCode::kAlreadyExists);
}

TEST_CASE("FileLogger: a full disk drops lines, counts them and says so once") {
  FileLogger::Options o;
  o.create_new = false;  // /dev/full exists: every write fails with ENOSPC
  std::atomic<int> told{0};
  std::string error;
  o.on_first_drop = [&](const std::string& e) {
    ++told;
    error = e;
  };
  auto log = FileLogger::Open("/dev/full", o);
  REQUIRE(log.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) (*log)->Log(LogLevel::kInfo, "x", {{"i", std::to_string(i)}});
    });
  }
  for (auto& t : threads) t.join();
  CHECK((*log)->dropped() == 1000);
  CHECK(told == 1);
  CHECK(error.find("No space left") != std::string::npos);
  CHECK((*log)->first_error() == error);
}

TEST_CASE("FileLogger: lines from many threads never interleave") {
  testing::TempDir dir;
  const std::string path = dir.file("t.log");
  {
    auto log = FileLogger::Open(path, {});
    REQUIRE(log.ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        std::string big(300, static_cast<char>('a' + t));
        for (int i = 0; i < 500; ++i) {
          (*log)->Log(LogLevel::kInfo, "t.line",
                      {{"thread", std::to_string(t)}, {"i", std::to_string(i)}, {"pad", big}});
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  auto lines = Lines(testing::ReadFile(path));
  CHECK(lines.size() == 8 * 500);
  const std::regex shape(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO )"
      R"(t\.line thread=(\d) i=\d+ pad=([a-h])\2{299})");
  int bad = 0;
  for (const auto& l : lines) {
    std::smatch m;
    if (!std::regex_match(l, m, shape) || m[2].str()[0] != 'a' + std::stoi(m[1].str())) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("TeeLogger: each side at its own level") {
  CaptureLogger all;
  StderrLogger errors_only(LogLevel::kError);
  TeeLogger tee(&all, &errors_only);
  CHECK(tee.Enabled(LogLevel::kDebug));
  tee.Log(LogLevel::kInfo, "a.b", {{"k", "v"}});
  CHECK(all.Count("a.b") == 1);
  StderrLogger warn(LogLevel::kWarning);
  StderrLogger err(LogLevel::kError);
  TeeLogger quiet(&warn, &err);
  CHECK(!quiet.Enabled(LogLevel::kInfo));
  CHECK(quiet.Enabled(LogLevel::kWarning));
}

}  // namespace
}  // namespace grin
