// StreamArchive against the fake GRIN over HTTPS with the real transport and BookProcessor:
// the streamed plaintext equals what real gpg makes of the same archive, with back-pressure
// pauses, with a transport retry that restarts the body, and a failing processor aborts.
#include "engine/pipeline/archive_stream.h"

#include <atomic>

#include "tests/grin/grin_fixture.h"
#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

using grin_client::testing::FakeOptions;
using grin_client::testing::GrinEnv;

fake::FakeGrinOptions LargerArchives() {
  fake::FakeGrinOptions o = FakeOptions(20);
  o.archive.image_bytes = 20000;  // archives of ~100 KB: many chunks each
  return o;
}

struct StreamEnv {
  StreamEnv() : env(LargerArchives()) {
    int64_t total = 0;
    auto converted = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1,
                                                      &total);
    REQUIRE(!converted.empty());
    barcode = fake::Corpus::BarcodeAt(converted[0]);
    passphrase = archive::Secret(env.server->passphrase("TEST"));
    // As in the pipeline, the check's HEAD comes first (and fetches the access token).
    REQUIRE(env.client->HeadArchive(barcode).ok());
  }

  // The archive decrypted by real gpg (an independent client).
  std::string GpgPlaintext() {
    auto enc = env.server->ArchiveBytes("TEST", barcode);
    REQUIRE(enc.ok());
    std::string in = env.tmp.file("a.gpg"), out = env.tmp.file("a.plain");
    std::string pass = env.tmp.file("pass"), home = env.tmp.file("gnupg");
    std::filesystem::create_directories(home);
    std::filesystem::permissions(home, std::filesystem::perms::owner_all);
    grin::testing::WriteFile(in, **enc);
    grin::testing::WriteFile(pass, passphrase.reveal() + "\n");
    REQUIRE(RunProgram({"gpg", "--batch", "--quiet", "--homedir", home, "--pinentry-mode",
                        "loopback", "--passphrase-file", pass, "--output", out, "--decrypt",
                        in}) == 0);
    return grin::testing::ReadFile(out);
  }

  Result<StreamedArchive> Stream(archive::StringSink* sink, size_t max_buffered,
                                 const archive::Secret& secret) {
    archive::BookOptions bo;
    bo.barcode = barcode;
    bo.extract = false;
    bo.archive_sink = sink;
    auto open = [&](const net::Response& head) {
      ++opens;
      opened_status = head.http_status;
      opened_length = net::FindHeader(head.headers, "Content-Length").value_or("");
      sink->data().clear();
      return archive::BookProcessor::Open(bo, &secret);
    };
    return StreamArchive(env.transport.get(),
                         env.client->ArchiveRequest(barcode, net::ResponseSink::Discard()), open,
                         max_buffered);
  }

  GrinEnv env;
  std::string barcode;
  archive::Secret passphrase;
  std::atomic<int> opens{0};
  int opened_status = 0;       // what the last open() was told
  std::string opened_length;
};

TEST_CASE("streamed decryption equals gpg's output, with back-pressure pauses") {
  StreamEnv s;
  archive::StringSink sink;
  auto r = s.Stream(&sink, 4096, s.passphrase);  // tiny buffer: the transfer pauses often
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE_MESSAGE(r->response.ToStatus().ok(), r->response.ToStatus().ToString());
  REQUIRE(r->processor != nullptr);
  auto result = r->processor->Finish();
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  CHECK(r->bytes_fed == r->response.bytes_down);
  CHECK(sink.data() == s.GpgPlaintext());
  CHECK(result->archive_bytes == sink.data().size());
  CHECK(s.opens == 1);
  // open() saw the response head before the first byte: it can size itself from it.
  CHECK(s.opened_status == 200);
  CHECK(s.opened_length == std::to_string(r->response.bytes_down));
}

TEST_CASE("a body cut off mid-way is retried by the transport and decrypted afresh") {
  StreamEnv s;
  auto rule = fake::ParseFaultRule(R"({"endpoint": "archive_get", "times": 1,
                                       "action": "truncate", "at_byte": 30000})");
  REQUIRE(rule.ok());
  s.env.server->AddFault(*rule);
  archive::StringSink sink;
  auto r = s.Stream(&sink, 4096, s.passphrase);  // small: the first bytes are consumed at once
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  REQUIRE_MESSAGE(r->response.ToStatus().ok(), r->response.ToStatus().ToString());
  REQUIRE(r->bytes_fed > 60000);  // the pauses made the consumer open a processor before the cut
  CHECK(r->response.attempts == 2);
  CHECK(s.env.server->Faults()[0].fires == 1);
  auto result = r->processor->Finish();
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  CHECK(sink.data() == s.GpgPlaintext());
  CHECK(s.opens == 2);  // the first processor saw the cut-off bytes and was discarded
  CHECK(s.opened_status == 200);  // the retry's head
}

TEST_CASE("a processor that fails stops the transfer with its error") {
  StreamEnv s;
  archive::Secret wrong("not the passphrase");
  archive::StringSink sink;
  auto r = s.Stream(&sink, 4096, wrong);
  Status verdict = r.ok() ? (r->processor ? r->processor->Finish().status() : Status::Ok())
                          : r.status();
  CHECK(verdict.code() == StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace grin::pipeline::testing
