// grin-jobs sync into a real, strict S3 server: OpenStack Swift + s3api behind nginx TLS
// (scripts/s3-server), from the fake GRIN over HTTPS with faults switched on; then boto3 — an
// independent client — checks every stored object and the CSV (verify_sync_s3.py).
#include <fstream>
#include <map>

#include "tests/pipeline/sync_fixture.h"

namespace grin::pipeline::testing {
namespace {

TEST_SUITE_BEGIN("integration");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kBooks = 120;  // sanitizers make every book ~5x slower; same paths
#else
constexpr int64_t kBooks = 300;
#endif

// The Swift server named by GRIN_S3_ENV, or a private one, stopped at the end.
class Swift {
 public:
  Swift() {
    std::string env_file;
    if (const char* e = std::getenv("GRIN_S3_ENV"); e != nullptr && *e != '\0') {
      env_file = e;
    } else {
      state_ = (dir_.path() / "swift").string();
      REQUIRE(RunProgram({std::string(GRIN_SOURCE_DIR) + "/scripts/s3-server", "start", state_}) ==
              0);
      env_file = state_ + "/env";
    }
    std::ifstream in(env_file);
    REQUIRE_MESSAGE(in.good(), "cannot read " << env_file);
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) vars_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    REQUIRE(!Get("GRIN_S3_ENDPOINT").empty());
  }
  ~Swift() {
    if (!state_.empty()) RunProgram({std::string(GRIN_SOURCE_DIR) + "/scripts/s3-server", "stop",
                                     state_});
  }
  std::string Get(const std::string& k) const {
    auto it = vars_.find(k);
    return it == vars_.end() ? "" : it->second;
  }
  const std::map<std::string, std::string>& vars() const { return vars_; }

 private:
  grin::testing::TempDir dir_;
  std::string state_;
  std::map<std::string, std::string> vars_;
};

TEST_CASE("books from the fake GRIN with faults into Swift S3 over HTTPS, verified by boto3") {
  Swift swift;
  SyncEnv env(kBooks * 2, 0.6, 41);
  std::string creds = (env.tmp.path() / "aws_credentials").string();
  grin::testing::WriteFile(creds, "[default]\naws_access_key_id = " +
                                      swift.Get("GRIN_S3_ACCESS_KEY") +
                                      "\naws_secret_access_key = " +
                                      swift.Get("GRIN_S3_SECRET_KEY") + "\n");
  std::filesystem::permissions(creds, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  std::string suffix = std::to_string(::getpid());
  auto cfg = nlohmann::json::parse(grin::testing::ReadFile(env.run + "/run_config.json"));
  cfg["storage"] = {{"type", "s3"},
                    {"endpoint_url", swift.Get("GRIN_S3_ENDPOINT")},
                    {"region", swift.Get("GRIN_S3_REGION")},
                    {"ca_file", swift.Get("GRIN_S3_CA_FILE")},
                    {"credentials_file", creds},
                    {"path_style", true},
                    {"bucket_raw", "grin-raw-" + suffix},
                    {"bucket_meta", "grin-meta-" + suffix},
                    {"bucket_full", "grin-full-" + suffix}};
  grin::testing::WriteFile(env.run + "/run_config.json", cfg.dump(2));

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

  // What the independent client should find.
  nlohmann::json expected = {{"raw_bucket", "grin-raw-" + suffix},
                             {"full_bucket", "grin-full-" + suffix},
                             {"books", nlohmann::json::object()}};
  for (const auto& b : up) {
    std::string plain = (env.tmp.path() / (b + ".expected.tar.gz")).string();
    grin::testing::WriteFile(plain, env.FixturePlaintext(b));
    std::string etag = env.server->CurrentETag("TEST", b);
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    expected["books"][b] = {{"plaintext", plain}, {"etag", etag}};
  }
  std::string exp_path = (env.tmp.path() / "expected.json").string();
  grin::testing::WriteFile(exp_path, expected.dump());
  for (const auto& [k, v] : swift.vars()) setenv(k.c_str(), v.c_str(), 1);
  int rc = RunProgram({"python3", std::string(GRIN_SOURCE_DIR) + "/tests/pipeline/verify_sync_s3.py",
                       exp_path, env.run + "/books.db", env.run + "/books_export.csv"});
  CHECK(rc == 0);
}

TEST_SUITE_END();

}  // namespace
}  // namespace grin::pipeline::testing
