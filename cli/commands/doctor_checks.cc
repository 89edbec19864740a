#include "cli/commands/doctor_checks.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>

#include "cli/state_factory.h"
#include "engine/archive/passphrase.h"
#include "engine/archive/passphrase_check.h"
#include "engine/base/format.h"
#include "engine/state_store.h"
#include "schema/migrations.h"
#include "storage/database.h"
#include "storage/run_lock.h"

#ifdef GRIN_HAVE_POSTGRES
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_health.h"
#endif

namespace grin::cli::doctor {
namespace {

namespace fs = std::filesystem;

double NowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

CheckResult Make(std::string name, Level level, std::string message, std::string fix = "") {
  return {std::move(name), level, std::move(message), std::move(fix)};
}

void NoteDate(const net::Headers& headers, double t0, double t1, ServerTime* out) {
  if (!out) return;
  int64_t d = ParseHttpDate(net::FindHeader(headers, "Date").value_or(""));
  if (d < 0) return;
  *out = {true, d, (t0 + t1) / 2};
}

std::string UtcTime(int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// The fix for a failure talking to GRIN or its token endpoint.
std::string GrinFix(const Status& s, const std::string& account, const std::string& directory) {
  if (net::IsTlsTrustFailure(s)) {
    return "set ca_file in run_config.json to the CA that signed GRIN's certificate (or remove a "
           "wrong one)";
  }
  if (s.code() == StatusCode::kPermissionDenied) {
    if (s.message().find("access list") != std::string::npos) {
      return "ask the library's GRIN contact to add " +
             (account.empty() ? std::string("this Google account") : account) +
             " to the access list of '" + directory + "' (changes take up to 12 h)";
    }
    return "run `grin-jobs auth setup` (the saved sign-in was revoked or expired)";
  }
  if (s.code() == StatusCode::kUnavailable) {
    return "GRIN is busy or down (it answers 429 / 5xx): run doctor again in a few minutes";
  }
  return "check the network and grin_base_url / grin_token_url in run_config.json";
}

// The fix for a storage probe failure on `bucket`.
std::string StorageFix(const Status& s, const std::string& bucket, const RunConfig& config) {
  const std::string& m = s.message();
  if (m.find("resolve host") != std::string::npos && m.find(bucket + ".") != std::string::npos) {
    return "the endpoint is addressed as <bucket>.<host> (virtual-hosted style) and that name "
           "does not resolve: set \"path_style\": true in run_config.json's storage block";
  }
  if (net::IsTlsTrustFailure(s)) {
    return "set storage.ca_file in run_config.json to the CA that signed the endpoint's "
           "certificate";
  }
  if (s.code() == StatusCode::kNoSpace) return "free space where the storage folder lives";
  if (config.storage.value("type", "") == "local") {
    return "make the storage folder (bucket '" + bucket +
           "') writable by this user: not a "
           "read-only mount, a folder not a file, permissions and ownership; or choose another "
           "with `grin-jobs config set storage.base_path DIR`";
  }
  if (s.code() == StatusCode::kNotFound) {
    return "create the bucket '" + bucket + "' (e.g. `aws s3 mb s3://" + bucket +
           "`) or name an existing one in run_config.json's storage block (bucket_raw, "
           "bucket_full, bucket_meta)";
  }
  if (s.code() == StatusCode::kPermissionDenied) {
    return "give the storage credentials read, write and delete rights on bucket '" + bucket +
           "' (and check the key, secret and region)";
  }
  return "check endpoint_url, region, path_style and the credentials in run_config.json's "
         "storage block";
}

// Whether another process holds the run lock (the host-local lock file beside `db`).
CheckResult CheckRunLock(const std::string& db) {
  auto lock = storage::RunLock::Acquire(db);
  if (lock.ok()) {
    return Make("run lock", Level::kPass, "free: no other grin-jobs process holds the run");
  }
  if (lock.status().code() == StatusCode::kBusy) {
    return Make("run lock", Level::kWarn, lock.status().message(),
                "a sync now would wait for that process; let it finish or stop it");
  }
  return Make("run lock", Level::kWarn, lock.status().message(),
              "check the run folder's permissions");
}

}  // namespace

const char* LevelName(Level level) {
  switch (level) {
    case Level::kPass:
      return "pass";
    case Level::kWarn:
      return "warn";
    case Level::kSkip:
      return "skip";
    case Level::kFail:
      break;
  }
  return "fail";
}

int64_t ParseHttpDate(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return -1;
  return static_cast<int64_t>(timegm(&tm));
}

CheckResult CheckOAuth(TransferStack& stack, ServerTime* grin_time) {
  auto& tokens = *stack.tokens;
  auto& client = *stack.client;
  const std::string dir = client.options().directory;
  Status s = tokens.ForceRefresh(tokens.CachedToken());
  if (!s.ok()) {
    return Make(
        "oauth", Level::kFail, "cannot refresh the GRIN access token: " + s.message(),
        s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kInvalidArgument
            ? "run `grin-jobs auth setup` (the refresh token was revoked or expired)"
            : GrinFix(s, "", dir));
  }
  const int64_t expiry_s = tokens.expiry_micros() / 1'000'000;
  const std::string account = tokens.account();
  std::string token_line = "token refreshed" + (account.empty() ? "" : " for " + account) +
                           ", valid until " + UtcTime(expiry_s) + " (" +
                           FormatDuration(static_cast<double>(expiry_s) - NowSeconds()) + ")";
  net::Request q;
  q.url = client.DirectoryUrl() + "?format=text&result_count=1";
  q.sink = net::ResponseSink::Memory(1 << 20);
  q.label = "doctor.probe";
  const double t0 = NowSeconds();
  auto r = client.Send(std::move(q));
  const double t1 = NowSeconds();
  if (!r.ok()) {
    return Make("oauth", Level::kFail,
                token_line + "; GRIN refused '" + dir + "': " + r.status().message(),
                GrinFix(r.status(), account, dir));
  }
  NoteDate(r->headers, t0, t1, grin_time);
  if (r->http_status != 200) {
    return Make("oauth", Level::kFail,
                token_line + "; GRIN answered HTTP " + std::to_string(r->http_status) +
                    " for the library directory '" + dir + "'",
                r->http_status == 404 ? "check library_directory in run_config.json (it is "
                                        "case-sensitive; `grin-jobs config set library_directory DIR`)"
                                      : GrinFix(r->ToStatus(), account, dir));
  }
  return Make("oauth", Level::kPass, token_line + "; GRIN lists '" + dir + "' for this account");
}

CheckResult CheckPassphrase(TransferStack& stack, const RunConfig& config,
                            const std::string& passphrase_file) {
  auto found = CredentialsSearch("", &config).FindPassphrase(passphrase_file);
  if (!found.ok()) {
    return Make("passphrase", Level::kFail, found.status().message(),
                "put the library's GRIN passphrase on the first line of "
                "~/.config/grin-jobs/gpg_passphrase.asc (chmod 600), or give --passphrase-file");
  }
  auto path = Result<std::string>(found->path);
  auto secret = archive::ReadPassphraseFile(*path);
  if (!secret.ok()) {
    return Make("passphrase", Level::kFail, secret.status().message(),
                secret.status().code() == StatusCode::kPermissionDenied
                    ? "chmod 600 " + *path
                    : "put the passphrase on the first line of " + *path);
  }
  // One converted book: the first entry of _converted.
  std::string barcode;
  Status ls = stack.client->ForEachTextLine("converted", "", [&](const std::string& b) {
    if (!IsValidBarcode(b)) return Status::Ok();
    barcode = b;
    return Status::Cancelled("found one");
  });
  if (barcode.empty()) {
    if (!ls.ok()) {
      return Make("passphrase", Level::kWarn,
                  "cannot list GRIN's converted books to test against: " + ls.message(),
                  "fix the oauth check first, then run doctor again");
    }
    return Make("passphrase", Level::kWarn, "no converted archive to test against",
                "request conversions (`grin-jobs request`) and run doctor again once GRIN has "
                "converted a book");
  }
  // The first bytes only: a Range request, and the transfer cut there if GRIN ignores it.
  constexpr size_t kWant = archive::kPassphraseCheckBytes;
  auto buf = std::make_shared<std::string>();
  net::Request q = stack.client->ArchiveRequest(
      barcode, net::ResponseSink::Callback([buf](const char* d, size_t n) -> size_t {
        size_t room = kWant - buf->size();
        if (n > room) {
          buf->append(d, room);
          return net::kBodyAbort;
        }
        buf->append(d, n);
        return n;
      }));
  q.headers.emplace_back("Range", "bytes=0-" + std::to_string(kWant - 1));
  q.label = "doctor.archive_prefix";
  auto r = stack.client->Send(std::move(q));
  const bool have_prefix = buf->size() >= kWant;
  if (!have_prefix && (!r.ok() || (r->http_status != 200 && r->http_status != 206))) {
    Status s = r.ok() ? r->ToStatus() : r.status();
    return Make("passphrase", Level::kWarn,
                "cannot fetch the first bytes of " + barcode + "'s archive: " + s.message(),
                "fix the oauth check first; if it passes, run doctor again later");
  }
  auto v =
      archive::CheckPassphrase(reinterpret_cast<const uint8_t*>(buf->data()), buf->size(), *secret);
  const std::string on =
      barcode + "'s archive (its first " + std::to_string(buf->size()) + " bytes)";
  switch (v.verdict) {
    case archive::PassphraseCheck::Verdict::kOk:
      return Make("passphrase", Level::kPass, *path + " opens " + on);
    case archive::PassphraseCheck::Verdict::kWrong:
      return Make("passphrase", Level::kFail, *path + " does not open " + on + ": " + v.detail,
                  "put the library's GRIN passphrase (from the GRIN contact) on the first line "
                  "of " +
                      *path);
    case archive::PassphraseCheck::Verdict::kUndecidable:
      break;
  }
  return Make("passphrase", Level::kWarn, "cannot tell from " + on + ": " + v.detail,
              "sync one book (`grin-jobs sync --barcodes " + barcode + "`) to test it");
}

std::vector<CheckResult> CheckStorage(TransferStack& stack, const RunConfig& config,
                                      ServerTime* storage_time) {
  std::vector<CheckResult> out;
  ObjectStore& store = *stack.objects.store;
  const StorageLayout& layout = stack.objects.layout;
  const std::string where = store.Describe();
  const std::string key = (layout.prefix.empty() ? "" : layout.prefix + "/") +
                          "grin-jobs-doctor-probe-" + std::to_string(::getpid()) + "-" +
                          std::to_string(static_cast<int64_t>(NowSeconds() * 1000));
  const std::string body = "grin-jobs doctor probe " + key + "\n";
  std::set<std::string> seen;
  for (const auto& [role, bucket] :
       {std::pair{"raw", layout.bucket_raw}, std::pair{"full", layout.bucket_full},
        std::pair{"meta", layout.bucket_meta}}) {
    const std::string name = std::string("storage ") + role;
    if (!seen.insert(bucket).second) {
      out.push_back(Make(name, Level::kPass, "bucket '" + bucket + "' checked above"));
      continue;
    }
    auto fail = [&](const char* step, const Status& s) {
      out.push_back(
          Make(name, Level::kFail,
               "bucket '" + bucket + "' on " + where + ": " + step + " failed: " + s.message(),
               StorageFix(s, bucket, config)));
    };
    // A local store's bucket is a folder sync creates as it starts; S3 buckets must exist.
    if (config.storage.value("type", "") == "local") {
      Status e = store.EnsureBucket(bucket);
      if (!e.ok()) {
        fail("creating the bucket's folder", e);
        continue;
      }
    }
    MemorySource src(body);
    PutOptions po;
    po.content_type = "text/plain";
    auto put = store.Put(bucket, key, src, po);
    if (!put.ok()) {
      fail("writing a probe object", put.status());
      continue;
    }
    StringObjectSink back;
    auto got = store.Get(bucket, key, back);
    if (!got.ok()) {
      fail("reading the probe object back", got.status());
      (void)store.DeleteMany(bucket, {key});
      continue;
    }
    auto del = store.DeleteMany(bucket, {key});
    if (!del.ok() || !del->empty()) {
      fail("deleting the probe object", del.ok() ? del->front().status : del.status());
      continue;
    }
    if (back.str() != body) {
      out.push_back(Make(name, Level::kFail,
                         "bucket '" + bucket + "' on " + where + " returned " +
                             std::to_string(back.str().size()) + " bytes for a " +
                             std::to_string(body.size()) + "-byte probe object",
                         "check that endpoint_url names the storage server itself (no proxy "
                         "rewriting bodies)"));
      continue;
    }
    out.push_back(Make(
        name, Level::kPass,
        "bucket '" + bucket + "' on " + where + ": wrote, read back and deleted a probe object"));
  }
  // The endpoint's Date, from an unsigned request (any S3 server dates its error replies too).
  std::string endpoint = config.storage.value("endpoint_url", "");
  if (!endpoint.empty() && config.storage.value("type", "") != "local") {
    net::Request q;
    q.method = net::Method::kHead;
    q.url = endpoint;
    q.sink = net::ResponseSink::Discard();
    q.label = "doctor.storage_date";
    const double t0 = NowSeconds();
    net::Response r = stack.transport->SubmitFuture(std::move(q)).get();
    const double t1 = NowSeconds();
    if (r.transport_status.ok()) NoteDate(r.headers, t0, t1, storage_time);
  }
  return out;
}

CheckResult CheckClock(const std::string& server, const ServerTime& time) {
  const std::string name = "clock " + server;
  if (!time.known) {
    return Make(name, Level::kPass, server + " sent no Date header; skew not measured");
  }
  // Date truncates to whole seconds (the server's clock is half a second later on average);
  // the skew is reported in whole seconds.
  const double skew = std::round(static_cast<double>(time.server_s) + 0.5 - time.local_s);
  const double abs_skew = skew < 0 ? -skew : skew;
  std::string line = "this machine's clock is " + FormatDuration(abs_skew) +
                     (skew > 0 ? " behind " : " ahead of ") + server +
                     "'s (its Date: " + UtcTime(time.server_s) + ")";
  const std::string fix = "synchronise the clock (e.g. `timedatectl set-ntp true`, chrony)";
  if (abs_skew > 15 * 60) {
    return Make(name, Level::kFail, line + "; S3 refuses signatures more than 15 min off", fix);
  }
  if (abs_skew > 60) return Make(name, Level::kWarn, line, fix);
  if (abs_skew < 2) line = "this machine's clock agrees with " + server + "'s";
  return Make(name, Level::kPass, line);
}

CheckResult CheckDiskSpace(const std::string& run_dir, const std::string& staging_dir,
                           uint64_t staging_limit_bytes) {
  // The nearest existing folder of a path (staging may not exist yet).
  auto existing = [](fs::path p) {
    std::error_code ec;
    while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
    return p.empty() ? fs::path(".") : p;
  };
  struct Place {
    std::string what;
    fs::path path;  // the nearest existing folder
    uint64_t needed;
    std::string shown;
  };
  std::error_code ec;
  const uint64_t db_bytes =
      fs::exists(DbPath(run_dir), ec) ? fs::file_size(DbPath(run_dir), ec) : 0;
  // The database grows with the run, has a WAL beside it and a gzip backup written next to it
  // at the end of each sync: room for twice its size plus 64 MiB.
  const uint64_t db_needed = 2 * (ec ? 0 : db_bytes) + (64ull << 20);
  std::vector<Place> places = {
      {"run dir", existing(run_dir), db_needed, run_dir},
      {"staging", existing(staging_dir), staging_limit_bytes, staging_dir}};
  std::string line;
  Level level = Level::kPass;
  std::string fix;
  struct statvfs run_vfs {};
  bool same_fs = false;
  for (size_t i = 0; i < places.size(); ++i) {
    struct statvfs v {};
    if (::statvfs(places[i].path.c_str(), &v) != 0) {
      return Make("disk", Level::kWarn, "cannot read the free space of " + places[i].path.string(),
                  "check that " + places[i].path.string() + " is reachable");
    }
    if (i == 0) run_vfs = v;
    if (i == 1) same_fs = v.f_fsid == run_vfs.f_fsid;
    const uint64_t free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    uint64_t needed = places[i].needed + (i == 1 && same_fs ? places[0].needed : 0);
    if (!line.empty()) line += "; ";
    line += places[i].what + " " + places[i].shown + ": " + Mib(free_bytes) + " free, needs " +
            Mib(needed);
    if (i == 1 && staging_limit_bytes == 0) line += " (no staging limit set)";
    if (free_bytes < needed) {
      level = Level::kFail;
      fix = "free space on " + places[i].path.string() +
            (i == 1 ? ", or lower --staging-limit-mb / point --staging-dir elsewhere" : "");
    } else if (free_bytes < 2 * needed && level == Level::kPass) {
      level = Level::kWarn;
      fix = "free space on " + places[i].path.string() + " before a long run";
    }
  }
  return Make("disk", level, line, fix);
}

std::vector<CheckResult> CheckRunDb(const std::string& run_dir) {
  std::vector<CheckResult> out;
  const std::string db = DbPath(run_dir);
  if (!fs::exists(db)) {
    out.push_back(Make("database", Level::kFail, db + ": no run database here",
                       "create the run with `grin-jobs init`"));
    return out;
  }
  auto health = storage::ReadDatabaseHealth(db);
  const int latest = schema::LatestVersion();
  if (!health.ok()) {
    out.push_back(Make("database", Level::kFail, health.status().message(),
                       "check the file's permissions, or restore the latest backup"));
  } else if (health->quick_check != "ok") {
    out.push_back(Make("database", Level::kFail,
                       db + ": quick_check says: " + health->quick_check.substr(0, 200),
                       "restore the latest backup (books_latest.db.gz in the meta bucket) "
                       "into the run folder"));
  } else if (const int version = health->schema_version; version > latest) {
    out.push_back(Make("database", Level::kFail,
                       db + ": schema version " + std::to_string(version) +
                           " is newer than this build's " + std::to_string(latest),
                       "use the grin-jobs version that last wrote this run (or newer)"));
  } else {
    out.push_back(Make(
        "database", Level::kPass,
        db + ": quick_check ok, schema version " + std::to_string(version) +
            (version < latest ? " (the next sync migrates it to " + std::to_string(latest) + ")"
                              : " (current)")));
  }
  out.push_back(CheckRunLock(db));
  return out;
}

std::vector<CheckResult> CheckPgRunDb(const std::string& run_dir, const std::string& uri) {
  std::vector<CheckResult> out;
#ifdef GRIN_HAVE_POSTGRES
  const std::string where = storage::pg::RedactConninfo(uri);
  const int latest = schema::PgLatestVersion();
  auto health = storage::ReadPgHealth(uri);
  bool reachable = health.ok();
  if (!health.ok()) {
    const StatusCode code = health.status().code();
    out.push_back(Make(
        "database", Level::kFail, health.status().message(),
        code == StatusCode::kPermissionDenied
            ? "check the role in run_config.json's state and its password (~/.pgpass, "
              "PGPASSFILE or PGPASSWORD) and the server's pg_hba.conf"
        : code == StatusCode::kUnavailable
            ? "start the PostgreSQL server or make it reachable from this host (host, port, "
              "firewall), then run doctor again"
            : "check the database run_config.json's state names"));
  } else if (health->schema_version == 0) {
    out.push_back(Make("database", Level::kFail, where + ": no grin-jobs run in this database",
                       "create one with `grin-jobs init --state URI` (or fix run_config.json's "
                       "state)"));
  } else if (health->schema_version > latest) {
    out.push_back(Make("database", Level::kFail,
                       where + ": schema version " + std::to_string(health->schema_version) +
                           " is newer than this build's " + std::to_string(latest),
                       "use the grin-jobs version that last wrote this run (or newer)"));
  } else if (health->check != "ok" && !health->check.empty()) {
    out.push_back(Make("database", Level::kFail,
                       where + ": the kept counts disagree with the rows: " + health->check,
                       "the jobs and books themselves are not affected, but status and report "
                       "count wrong: keep the server's log and report it as a grin-jobs bug"));
  } else {
    const int version = health->schema_version;
    out.push_back(Make(
        "database", Level::kPass,
        where + ": connected, schema version " + std::to_string(version) +
            (version < latest ? " (the next sync migrates it to " + std::to_string(latest) + ")"
                              : " (current)") +
            (health->check == "ok" ? ", kept counts match the rows" : "")));
  }
  out.push_back(Make("database file", Level::kSkip,
                     "not checked: the run keeps its state on PostgreSQL, not in " +
                         DbPath(run_dir) + " (quick_check and the books.db backup are "
                         "SQLite's; the server's own backups, e.g. pg_dump, are the run's)"));
  out.push_back(CheckRunLock(DbPath(run_dir)));
  if (reachable) {
    auto workers = ListRunWorkers(uri);
    if (!workers.ok()) {
      out.push_back(Make("sync workers", Level::kWarn, workers.status().message(),
                         "check the database role's grants"));
    } else if (workers->empty()) {
      out.push_back(Make("sync workers", Level::kPass, "none live on the run (any host)"));
    } else {
      std::string line = std::to_string(workers->size()) + " live on the run:";
      for (size_t i = 0; i < workers->size(); ++i) {
        const auto& w = (*workers)[i];
        line += (i ? ", " : " ") + w.host + " pid " + std::to_string(w.pid) + " (heartbeat " +
                FormatDuration(w.heartbeat_age_s) + " ago)";
      }
      out.push_back(Make("sync workers", Level::kPass,
                         line + "; a sync now shares the run's GRIN slots with them"));
    }
  }
#else
  (void)uri;
  out.push_back(Make("database", Level::kFail,
                     "run " + run_dir + " keeps its state on PostgreSQL, but this grin-jobs was "
                     "built without PostgreSQL support",
                     "use a grin-jobs built with libpq-dev installed (-DGRIN_POSTGRES=ON)"));
#endif
  return out;
}

CheckResult CheckQueue(TransferStack& stack) {
  int64_t n = 0;
  Status s = stack.client->ForEachTextLine("in_process", "", [&](const std::string&) {
    ++n;
    return Status::Ok();
  });
  if (!s.ok()) {
    return Make("queue", Level::kWarn, "cannot list GRIN's books in process: " + s.message(),
                "fix the oauth check first");
  }
  const int64_t cap = grin_client::kQueueCap;
  std::string line =
      FormatThousands(n) + " of " + FormatThousands(cap) + " books in GRIN's conversion queue";
  if (n >= cap) {
    return Make("queue", Level::kWarn, line + ": full, conversion requests will be refused",
                "wait for GRIN to convert books (sync the converted queue meanwhile)");
  }
  return Make("queue", Level::kPass, line + ", room for " + FormatThousands(cap - n));
}

}  // namespace grin::cli::doctor
