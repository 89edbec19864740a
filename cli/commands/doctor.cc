// grin-jobs doctor: a preflight of a run in seconds. GRIN sign-in and access list, the
// passphrase (on the first bytes of one converted archive), every storage bucket (write, read
// back, delete), the clock against GRIN's and storage's, free disk space, the run database and
// its lock, GRIN's queue. Each check: pass / warn / fail with the fix; exit 0 unless one failed.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands/doctor_capture.h"
#include "cli/commands/doctor_checks.h"
#include "cli/commands/grin_stack.h"
#include "cli/run_config.h"
#include "cli/run_context.h"
#include "cli/state_factory.h"
#include "storage/open_run_queries.h"

namespace grin::cli {

using doctor::CheckResult;
using doctor::Level;

int RunDoctor(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options(
      "grin-jobs doctor",
      "Check a run before a long sync, in seconds: the GRIN sign-in (refreshes the token, one "
      "GRIN request), the passphrase (against the first 64 KiB of one converted archive), each "
      "storage bucket (writes, reads back and deletes a probe object), the clock against GRIN's "
      "and storage's, free disk space, the run database (SQLite: quick_check, schema version, "
      "lock; PostgreSQL: connection, schema version, kept counts, lock, live workers) and "
      "GRIN's conversion queue. Each check passes, warns or fails with the fix on one line.\n\n"
      "Exit status: 0 no check failed (warnings allowed); 1 a check failed; 2 bad usage.");
  AddRunOptions(options);
  options.add_options()("json", "Print the checks as JSON")(
      "passphrase-file",
      "The GPG passphrase file (default: the run's sync.passphrase_file, else "
      "gpg_passphrase.asc found in the credentials search order, docs/configuration.md)",
      cxxopts::value<std::string>())("staging-dir",
                                     "Staging directory sync will use (default <run>/staging)",
                                     cxxopts::value<std::string>())(
      "staging-limit-mb", "The staging limit sync will use (needs this much free space)",
      cxxopts::value<uint64_t>()->default_value("4096"))(
      "capture",
      "Also write a sample pack of what GRIN sends into DIR (new or empty): the first page of "
      "each list (HTML and text), a _barcode_search reply for three books, the HEAD and GET "
      "response headers of one converted archive (downloaded whole), its OpenPGP packets and "
      "tar member list. Secrets redacted; send it with any report of a parse failure",
      cxxopts::value<std::string>(), "DIR");
  OptionRules rules;
  rules.Int<uint64_t>("staging-limit-mb", 0, int64_t{1} << 24, "0 = no limit")
      .ReadableFile("passphrase-file")
      .DirOrAbsent("staging-dir");
  cxxopts::ParseResult p;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &p, &code, &rules)) return code;
  auto run_dir_r = ResolveRunDir(p);
  if (!run_dir_r.ok()) return ReportError(err, "doctor", run_dir_r.status());
  const std::string run_dir = *run_dir_r;
  // <run>/logs/doctor-*.log; with --json, its "Log:" lines go to stderr.
  CommandLog log("doctor", run_dir, p, out, err, p.count("json") ? &err : &out);
  Logger& logger = *log.logger();
  auto config = LoadRunConfig(run_dir);
  if (!config.ok()) return ReportError(err, "doctor", config.status());
  const std::string staging_dir = p.count("staging-dir")
                                      ? p["staging-dir"].as<std::string>()
                                      : (std::filesystem::path(run_dir) / "staging").string();

  std::vector<CheckResult> checks;
  auto add = [&checks](CheckResult r) { checks.push_back(std::move(r)); };
  auto add_all = [&checks](std::vector<CheckResult> rs) {
    for (auto& r : rs) checks.push_back(std::move(r));
  };
  // The run's state: books.db, or the PostgreSQL database run_config.json names.
  auto location = RunStateLocation(run_dir);
  if (!location.ok()) return ReportError(err, "doctor", location.status());
  add_all(storage::IsPostgresLocation(*location) ? doctor::CheckPgRunDb(run_dir, *location)
                                                 : doctor::CheckRunDb(run_dir));
  add(doctor::CheckDiskSpace(run_dir, staging_dir, p["staging-limit-mb"].as<uint64_t>() << 20));

  TransferStackOptions tso;
  tso.logger = &logger;
  tso.grin_requests_per_second = 0;  // a handful of requests
  tso.fail_fast = true;
  std::unique_ptr<TransferStack> stack;
  if (config->library_directory.empty()) {
    add({"oauth", Level::kFail, "run_config.json has no library_directory",
         "set it with `grin-jobs config set library_directory DIR`"});
  } else if (auto s = OpenTransferStack(run_dir, *config, tso); !s.ok()) {
    add({"setup", Level::kFail, s.status().message(),
         s.status().message().find("credentials") != std::string::npos
             ? "run `grin-jobs auth setup`"
             : "fix run_config.json (storage block, ca_file)"});
  } else {
    stack = std::move(s).value();
  }
  if (stack) {
    doctor::ServerTime grin_time, storage_time;
    CheckResult oauth = doctor::CheckOAuth(*stack, &grin_time);
    const bool grin_ok = oauth.level != Level::kFail;
    add(std::move(oauth));
    if (grin_ok) {
      add(doctor::CheckPassphrase(
          *stack, *config,
          p.count("passphrase-file") ? p["passphrase-file"].as<std::string>()
          : config->sync.contains("passphrase_file") && config->sync["passphrase_file"].is_string()
              ? config->sync["passphrase_file"].get<std::string>()
              : std::string()));
    } else {
      add({"passphrase", Level::kWarn, "not checked: the oauth check failed",
           "fix the oauth check first"});
    }
    add_all(doctor::CheckStorage(*stack, *config, &storage_time));
    if (grin_ok) add(doctor::CheckClock("GRIN", grin_time));
    if (config->storage.value("type", "") != "local") {
      add(doctor::CheckClock("storage", storage_time));
    }
    if (grin_ok) add(doctor::CheckQueue(*stack));
    if (p.count("capture")) {
      if (grin_ok) {
        add(doctor::CaptureSamplePack(
            *stack, *config,
            p.count("passphrase-file") ? p["passphrase-file"].as<std::string>() : "",
            p["capture"].as<std::string>()));
      } else {
        add({"capture", Level::kFail, "not captured: the oauth check failed",
             "fix the oauth check first"});
      }
    }
  } else if (p.count("capture")) {
    add({"capture", Level::kFail, "not captured: GRIN could not be reached",
         "fix the failing checks above first"});
  }

  bool failed = false;
  for (const auto& c : checks) failed = failed || c.level == Level::kFail;
  if (p.count("json")) {
    nlohmann::json j = {{"run_dir", run_dir}, {"ok", !failed}, {"checks", nlohmann::json::array()}};
    for (const auto& c : checks) {
      j["checks"].push_back({{"name", c.name},
                             {"status", doctor::LevelName(c.level)},
                             {"message", c.message},
                             {"fix", c.fix}});
    }
    out << j.dump(2) << "\n";
  } else {
    for (const auto& c : checks) {
      std::string message = c.message;
      while (!message.empty() && message.back() == '.') message.pop_back();
      out << doctor::LevelName(c.level) << "  " << c.name << ": " << message;
      if (!c.fix.empty()) out << ". Fix: " << c.fix;
      out << "\n";
    }
    int n_fail = 0, n_warn = 0;
    for (const auto& c : checks) {
      n_fail += c.level == Level::kFail;
      n_warn += c.level == Level::kWarn;
    }
    out << (failed ? "doctor: " + std::to_string(n_fail) + " failed, " : "doctor: ok, ") << n_warn
        << " warning" << (n_warn == 1 ? "" : "s") << ", " << checks.size() << " checks.\n";
  }
  return failed ? kExitFailure : kExitOk;
}

}  // namespace grin::cli
