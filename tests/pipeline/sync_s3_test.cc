// grin-jobs sync into a real, strict S3 server: OpenStack Swift + s3api behind nginx TLS
// (scripts/s3-server), from the fake GRIN over HTTPS with faults switched on; then boto3 — an
// independent client — checks every stored object and the CSV (verify_sync_s3.py).
#include <signal.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/pipeline/sync_fixture.h"
#include "tests/support/swift_server.h"

namespace grin::pipeline::testing {
namespace {

TEST_SUITE_BEGIN("integration");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kBooks = 120;  // sanitizers make every book ~5x slower; same paths
#else
constexpr int64_t kBooks = 300;
#endif

using Swift = grin::testing::SwiftServer;

// Runs verify_sync_s3.py (boto3) on the uploaded books: byte-identical raw objects with the
// right encrypted_etag, OCR JSONL, the CSV against the DB.
int VerifyWithBoto3(SyncEnv& env, const Swift& swift, const std::string& suffix) {
  nlohmann::json expected = {{"raw_bucket", "grin-raw-" + suffix},
                             {"full_bucket", "grin-full-" + suffix},
                             {"books", nlohmann::json::object()}};
  for (const auto& b : env.Uploaded()) {
    std::string plain = (env.tmp.path() / (b + ".expected.tar.gz")).string();
    grin::testing::WriteFile(plain, env.FixturePlaintext(b));
    std::string etag = env.server->CurrentETag("TEST", b);
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    expected["books"][b] = {{"plaintext", plain}, {"etag", etag}};
  }
  std::string exp_path = (env.tmp.path() / "expected.json").string();
  grin::testing::WriteFile(exp_path, expected.dump());
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  return RunProgram({"python3", std::string(GRIN_SOURCE_DIR) + "/tests/pipeline/verify_sync_s3.py",
                     exp_path, env.run + "/books.db", env.run + "/books_export.csv"});
}

TEST_CASE("books from the fake GRIN with faults into Swift S3 over HTTPS, verified by boto3") {
  Swift swift(GRIN_SOURCE_DIR);
  SyncEnv env(kBooks * 2, 0.6, 41);
  std::string suffix = std::to_string(::getpid());
  PointRunAtSwift(env, swift, suffix);

  for (const char* rule : {
           R"({"endpoint": "archive_get", "probability": 0.05, "action": "status", "status": 503})",
           R"({"endpoint": "archive_head", "probability": 0.05, "action": "status", "status": 429,
               "retry_after": "1"})",
           R"({"endpoint": "archive_get", "probability": 0.03, "action": "truncate",
               "at_byte": 2000})",
           R"({"endpoint": "archive_get", "probability": 0.02, "action": "corrupt",
               "at_byte": 800})"}) {
    auto r = fake::ParseFaultRule(rule);
    REQUIRE(r.ok());
    env.server->AddFault(*r);
  }
  auto run = Cli(env.SyncArgs({"--queue", "converted", "--limit", std::to_string(kBooks),
                               "--retry-base-ms", "50", "--workers", "6"}));
  INFO(run.out << run.err);
  REQUIRE(run.code == 0);
  auto up = env.Uploaded();
  CHECK(static_cast<int64_t>(up.size()) == kBooks);

  CHECK(VerifyWithBoto3(env, swift, suffix) == 0);
}

// Runs multipart_s3.py (boto3) and returns its stdout lines.
std::vector<std::string> Boto3Multipart(SyncEnv& env, const Swift& swift,
                                        std::vector<std::string> args) {
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  std::string out = (env.tmp.path() / "multipart.out").string();
  std::vector<std::string> argv = {"python3",
                                   std::string(GRIN_SOURCE_DIR) + "/tests/pipeline/multipart_s3.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  // stdout to a file: RunProgram inherits ours.
  std::vector<std::string> sh = {"sh", "-c", "exec \"$0\" \"$@\" > " + out};
  sh.insert(sh.end(), argv.begin(), argv.end());
  REQUIRE(RunProgram(sh) == 0);
  std::vector<std::string> lines;
  std::istringstream in(grin::testing::ReadFile(out));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_CASE("a multipart upload cut by kill -9 resumes from its recorded parts") {
  Swift swift(GRIN_SOURCE_DIR);
  // Books of ~40 MiB, staged (not streamed), uploaded in 8 MiB parts above an 8 MiB threshold:
  // five parts, four at a time, so the kill can land between recorded parts and completion.
  SyncEnv env(4, 1.0, 43, 12'000'000);
  std::string suffix = std::to_string(::getpid()) + "mp";
  PointRunAtSwift(env, swift, suffix);
  int64_t total = 0;
  auto converted = env.server->corpus("TEST")->List(fake::ConvertStatus::kConverted, 0, 1, &total);
  REQUIRE(!converted.empty());
  std::string book = fake::Corpus::BarcodeAt(converted[0]);
  std::vector<std::string> args = env.SyncArgs({"--barcodes", book, "--stream-max-mb", "0",
                                                "--multipart-threshold-mb", "8",
                                                });
  std::string log = (env.tmp.path() / "sync.log").string();
  pid_t pid = SpawnGrinJobs(args, log);
  // Kill once the checkpoint records at least one acknowledged part.
  auto parts = [&] {
    return env.Sql("SELECT coalesce(max(json_array_length(data, '$.upload.parts')), 0) FROM "
                   "job_checkpoints WHERE barcode = '" + book + "'");
  };
  bool killed = false;
  for (int i = 0; i < 24000 && !killed; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) break;  // finished first: see below
    if (std::filesystem::exists(env.run + "/books.db") && parts() >= 1) {
      kill(pid, SIGKILL);
      killed = WaitChild(pid) == 128 + SIGKILL;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  INFO(grin::testing::ReadFile(log));
  REQUIRE_MESSAGE(killed, "the upload finished before the kill; nothing to resume");
  int64_t recorded = parts();
  CHECK(recorded >= 1);
  CHECK(env.Uploaded().empty());
  auto plain_size = static_cast<int64_t>(env.FixturePlaintext(book).size());
  REQUIRE(plain_size > 32 * 1024 * 1024);

  // Litter beside the recorded upload: an upload of the same book that no checkpoint records
  // (abandoned: the rerun aborts it), and one of a book that is no job of this run (maybe
  // another run's: left alone).
  const std::string raw_bucket = "grin-raw-" + suffix;
  const std::string stray = "39015099999999";
  std::string abandoned =
      Boto3Multipart(env, swift, {"begin", raw_bucket, book + "/" + book + ".tar.gz"}).at(0);
  std::string foreign =
      Boto3Multipart(env, swift, {"begin", raw_bucket, stray + "/" + stray + ".tar.gz"}).at(0);

  auto rerun = Cli(args);
  INFO(rerun.out << rerun.err);
  REQUIRE(rerun.code == 0);
  REQUIRE(env.Uploaded().size() == 1);
  auto pending = Boto3Multipart(env, swift, {"list", raw_bucket});
  std::string all;
  for (const auto& l : pending) all += l + "\n";
  CHECK(all.find(abandoned) == std::string::npos);
  CHECK(all.find(foreign) != std::string::npos);
  CHECK(pending.size() == 1);  // the recorded upload was completed, the abandoned one aborted
  Boto3Multipart(env, swift, {"abort", raw_bucket, stray + "/" + stray + ".tar.gz", foreign});
  // Only the parts not recorded were sent again: fewer bytes than the archive.
  auto summary = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/process_summary.json"));
  int64_t sent = 0;
  for (const auto& h : summary["hosts"]) {
    sent += h["bytes_up"].get<int64_t>();
    // Both hosts (the fake GRIN, nginx in front of Swift) speak TLS 1.3: the preferred suite.
    CHECK(h.value("tls_cipher", "") == "TLS_AES_128_GCM_SHA256");
  }
  MESSAGE(recorded << " parts recorded before the kill; the rerun sent " << sent << " of "
                   << plain_size << " bytes");
  CHECK(sent <= plain_size - recorded * 8 * 1024 * 1024 + 1024 * 1024);
  CHECK(env.Sql("SELECT count(*) FROM job_checkpoints WHERE data LIKE '%upload%'") == 0);
  CHECK(VerifyWithBoto3(env, swift, suffix) == 0);
}

TEST_CASE("a storage bucket deleted under a running sync holds the books and stops, exit 1") {
  Swift swift(GRIN_SOURCE_DIR);
  SyncEnv env(30, 0.6, 43);
  std::string suffix = std::to_string(::getpid()) + "nb";
  PointRunAtSwift(env, swift, suffix);
  const std::string bucket = "grin-raw-" + suffix;
  // GRIN answers slowly, so the raw bucket the sync creates at its start is gone (boto3 deletes
  // it as soon as it appears) before the first upload.
  auto rule = fake::ParseFaultRule(
      R"({"endpoint": "archive", "action": "slow_first_byte", "delay_ms": 2500})");
  REQUIRE(rule.ok());
  env.server->AddFault(*rule);
  std::string script = (env.tmp.path() / "delete_bucket.py").string();
  grin::testing::WriteFile(script, R"(import os, sys, time, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["GRIN_S3_ENDPOINT"],
    aws_access_key_id=os.environ["GRIN_S3_ACCESS_KEY"],
    aws_secret_access_key=os.environ["GRIN_S3_SECRET_KEY"],
    region_name=os.environ.get("GRIN_S3_REGION", "us-east-1"),
    verify=os.environ["GRIN_S3_CA_FILE"], config=Config(s3={"addressing_style": "path"}))
deadline = time.time() + 60
while time.time() < deadline:
    try:
        s3.delete_bucket(Bucket=sys.argv[1])
        sys.exit(0)
    except Exception:
        time.sleep(0.02)
sys.exit(1)
)");
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  int deleted = -1;
  std::thread deleter([&] { deleted = RunProgram({"python3", script, bucket}); });
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  deleter.join();
  INFO(r.out << r.err);
  REQUIRE(deleted == 0);
  CHECK(r.code == 1);
  const size_t last = r.err.rfind("grin-jobs sync:");
  std::string err = last == std::string::npos ? "" : r.err.substr(last);
  CHECK(err.find("storage bucket '" + bucket + "' does not exist") != std::string::npos);
  CHECK(err.find("no book was failed") != std::string::npos);
  CHECK(env.Uploaded().empty());
  CHECK(env.Sql("SELECT count(*) FROM jobs WHERE status IN ('dead', 'retry', 'leased')") == 0);
  CHECK(env.Sql("SELECT coalesce(sum(attempts), 0) FROM jobs") == 0);

  // The same command creates the bucket again and completes.
  env.server->ClearFaults();
  auto again = Cli(env.SyncArgs({"--queue", "converted", "--limit", "8"}));
  INFO(again.out << again.err);
  CHECK(again.code == 0);
  CHECK(env.Uploaded().size() == 8);
}

TEST_CASE("storage refusing the credentials (AccessDenied) stops before any book, one line") {
  Swift swift(GRIN_SOURCE_DIR);
  SyncEnv env(20, 0.6, 44);
  std::string suffix = std::to_string(::getpid()) + "ad";
  PointRunAtSwift(env, swift, suffix);
  std::string creds = (env.tmp.path() / "aws_credentials").string();
  grin::testing::WriteFile(creds, "[default]\naws_access_key_id = " +
                                      swift.get("GRIN_S3_ACCESS_KEY") +
                                      "\naws_secret_access_key = not-the-secret\n");
  auto r = Cli(env.SyncArgs({"--queue", "converted", "--limit", "4"}));
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
  CHECK(r.err.find("storage refused access to bucket 'grin-raw-" + suffix + "'") !=
        std::string::npos);
  CHECK(r.err.find("check the storage credentials") != std::string::npos);
  CHECK(env.Sql("SELECT count(*) FROM jobs") == 0);
}

TEST_SUITE_END();

}  // namespace
}  // namespace grin::pipeline::testing
