// Issue 16 item 8: GRIN's text lists are streamed. A 1M-line _converted that arrives slowly, in
// bursts after long silences, is read whole with a bounded buffer (never as one body string),
// with the list low-speed window while archive requests keep the tight one; a reader that stops
// early stops the transfer.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "tests/grin/grin_fixture.h"

namespace grin::grin_client {
namespace {

using testing::FakeOptions;
using testing::GrinEnv;

fake::FakeGrinOptions Synthetic(int64_t lines, int64_t burst, int pause_ms) {
  auto o = FakeOptions(20);
  o.synthetic_converted_lines = lines;
  o.synthetic_converted_burst = burst;
  o.synthetic_converted_pause_ms = pause_ms;
  return o;
}

// A client of env's transport with small buffers: a text list held whole (or one line longer
// than 1 MiB) fails with ResourceExhausted / DataLoss.
std::unique_ptr<GrinClient> SmallBufferClient(GrinEnv& env, int64_t list_window_s) {
  ClientOptions co = env.client->options();
  co.max_page_bytes = 1 << 20;
  co.text_list_buffer_bytes = 256 << 10;
  co.list_low_speed_time_seconds = list_window_s;
  return std::make_unique<GrinClient>(env.transport.get(), env.tokens.get(), co);
}

// Index of "SYN<9 digits>", or -1.
int64_t SyntheticIndex(const std::string& bc) {
  if (bc.size() != 12 || bc.compare(0, 3, "SYN") != 0) return -1;
  return std::stoll(bc.substr(3));
}

TEST_SUITE("integration") {

TEST_CASE("text stream: a slow 1M-line _converted in bursts is read whole with a bounded buffer") {
  constexpr int64_t kLines = 1'000'000;
  // Transport (archive) low-speed window 1 s; each of the 4 bursts comes after 2 s of silence.
  GrinEnv env(Synthetic(kLines, 250'000, 2'000), false, 300, /*low_speed_time_s=*/1);
  auto client = SmallBufferClient(env, /*list_window_s=*/6);
  std::vector<bool> seen(kLines, false);
  int64_t delivered = 0, distinct = 0, odd = 0;
  int64_t ignored = -1;
  const auto start = std::chrono::steady_clock::now();
  Status s = client->ForEachTextLine(
      "converted", "",
      [&](const std::string& bc) {
        ++delivered;
        const int64_t i = SyntheticIndex(bc);
        if (i < 0 || i >= kLines) {
          ++odd;
        } else if (!seen[static_cast<size_t>(i)]) {
          seen[static_cast<size_t>(i)] = true;
          ++distinct;
        }
        return Status::Ok();
      },
      &ignored);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(distinct == kLines);
  CHECK(delivered == kLines);
  CHECK(odd == 0);
  CHECK(ignored == 0);
  CHECK(secs >= 7.5);  // the four silences really happened
  // The same reply fetched as one body with the archive window dies in the first silence: the
  // pauses are longer than the tight window, and only the list window lets them pass.
  net::Request req;
  req.url = client->DirectoryUrl() + "_converted?format=text";
  req.sink = net::ResponseSink::Memory(0);
  net::RetryOptions once;
  once.max_attempts = 1;
  req.retry = once;
  auto whole = client->Send(std::move(req));
  CHECK_FALSE(whole.ok());
}

TEST_CASE("text stream: a list held whole would exceed the buffer, streamed it does not") {
  // 200,000 lines (~4.6 MB) against a 1 MiB page bound and a 256 KiB line buffer, with a reader
  // slower than the network: the transfer is paused and resumed, nothing is lost.
  GrinEnv env(Synthetic(200'000, 200'000, 0), false);
  auto client = SmallBufferClient(env, 60);
  std::vector<bool> seen(200'000, false);
  int64_t distinct = 0;
  Status s = client->ForEachTextLine("converted", "", [&](const std::string& bc) {
    const int64_t i = SyntheticIndex(bc);
    if (i >= 0 && i < 200'000 && !seen[static_cast<size_t>(i)]) {
      seen[static_cast<size_t>(i)] = true;
      ++distinct;
    }
    if (i % 20'000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return Status::Ok();
  });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(distinct == 200'000);
}

TEST_CASE("text stream: a transfer broken mid-list is retried and goes on, each line once") {
  GrinEnv env(Synthetic(300'000, 300'000, 0), false);
  fake::FaultRule cut;
  cut.endpoint = "converted";
  cut.action = "truncate";
  cut.at_byte = 3 << 20;  // ~130,000 lines in
  cut.times = 1;
  env.server->AddFault(cut);
  auto client = SmallBufferClient(env, 60);
  std::vector<bool> seen(300'000, false);
  int64_t delivered = 0, distinct = 0;
  Status s = client->ForEachTextLine("converted", "", [&](const std::string& bc) {
    ++delivered;
    const int64_t i = SyntheticIndex(bc);
    if (i >= 0 && i < 300'000 && !seen[static_cast<size_t>(i)]) {
      seen[static_cast<size_t>(i)] = true;
      ++distinct;
    }
    return Status::Ok();
  });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(env.server->Stats().endpoints["converted"].requests == 2);  // the break really happened
  CHECK(distinct == 300'000);
  CHECK(delivered == 300'000);
}

TEST_CASE("text stream: a reader that stops early stops the transfer and gets its own error") {
  GrinEnv env(Synthetic(1'000'000, 100'000, 1'000), false);
  auto client = SmallBufferClient(env, 60);
  int64_t got = 0;
  const auto start = std::chrono::steady_clock::now();
  Status s = client->ForEachTextLine("converted", "", [&](const std::string&) {
    if (++got == 1'000) return Status::Cancelled("enough: limit reached");
    return Status::Ok();
  });
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(s.code() == StatusCode::kCancelled);
  CHECK(s.message().find("enough") != std::string::npos);
  CHECK(got == 1'000);
  CHECK(secs < 5.0);  // not the ten bursts (10 s of silences) of the whole list
}

TEST_CASE("text stream: GRIN's unavailable page as a text list is an error, not an empty list") {
  auto o = FakeOptions(50);
  GrinEnv env(o, false);
  fake::FaultRule f;
  f.endpoint = "in_process";
  f.action = "unavailable";
  env.server->AddFault(f);
  int64_t n = 0;
  Status s = env.client->ForEachTextLine("in_process", "", [&](const std::string&) {
    ++n;
    return Status::Ok();
  });
  CHECK(s.code() == StatusCode::kUnavailable);
}

}  // TEST_SUITE

}  // namespace
}  // namespace grin::grin_client
