// grin-jobs verify: the adapter over jobs::Run::Verify (cli/facade/verify.cc): a run's storage
// checked against its state: every done book's raw archive (size; with --deep its metadata and
// SHA-256) and OCR object, its MARC columns; objects the run does not know; litter (removed).
// --requeue sends mismatching books back to work for the next sync. Exit 0 all match, 6 some
// book mismatches (see cli.h).
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "cli/facade/run_impl.h"
#include "cli/log_setup.h"
#include "cli/run_context.h"

namespace grin::cli {
namespace {

std::string Problems(const std::map<std::string, int64_t>& by_problem) {
  std::string out;
  for (const auto& [p, n] : by_problem) {
    out += (out.empty() ? "" : ", ") + p + " " + std::to_string(n);
  }
  return out;
}

}  // namespace

int RunVerify(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options(
      "grin-jobs verify",
      "Check a run's storage against its state: every done book has its raw archive (of the "
      "size recorded at upload), its OCR object and its MARC columns. One listing pass per "
      "bucket, no request per book. Objects the run does not know are reported; litter "
      "(temporary objects, abandoned multipart uploads) is removed as a sync removes it.\n\n"
      "Exit status: 0 every done book matches; 6 some do not (listed); 1 verify could not run "
      "(storage unreachable, ...); 2 bad usage; 3 the run is in use; 4 its database cannot be "
      "used.");
  AddRunOptions(options);
  options.add_options()(
      "deep",
      "Also download every raw archive: its encrypted_etag and barcode metadata, and its "
      "SHA-256 against the one recorded at upload")(
      "requeue",
      "Send mismatching books back to work so the next sync redoes what is missing (a bad raw "
      "archive is deleted first, so it is downloaded again)")("json", "Print the report as JSON")(
      "skip-extract-ocr", "The run's syncs skip OCR: expect no OCR objects")(
      "skip-extract-marc", "The run's syncs skip MARC: expect no MARC columns")(
      "deep-concurrency", "Downloads in flight with --deep",
      cxxopts::value<int>()->default_value("4"));
  OptionRules rules;
  rules.Int<int>("deep-concurrency", 1, 64, "1 to 64");
  cxxopts::ParseResult p;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &p, &code, &rules)) return code;
  auto run_dir = ResolveRunDir(p);
  if (!run_dir.ok()) return ReportError(err, "verify", run_dir.status());
  auto run = jobs::Run::Open({*run_dir, ""});
  if (!run.ok()) return ReportError(err, "verify", run.status());
  CommandLog log("verify", *run_dir, p, out, err, p.count("json") ? &err : &out);
  jobs::VerifyOptions vo;
  vo.deep = p.count("deep") > 0;
  vo.requeue = p.count("requeue") > 0;
  vo.skip_ocr = p.count("skip-extract-ocr") > 0;
  vo.skip_marc = p.count("skip-extract-marc") > 0;
  vo.deep_concurrency = p["deep-concurrency"].as<int>();
  auto rep = jobs::VerifyWithLogger(*(*run)->impl(), vo, log.logger());
  if (!rep.ok()) return ReportError(err, "verify", rep.status());
  std::map<std::string, int64_t> by_problem;
  for (const auto& m : rep->mismatches) ++by_problem[m.problem];

  if (p.count("json")) {
    nlohmann::json j = {{"run_dir", *run_dir},
                        {"storage", rep->storage},
                        {"ok", rep->ok()},
                        {"deep", vo.deep},
                        {"books", rep->books},
                        {"done", rep->done},
                        {"objects_listed", rep->objects_listed},
                        {"books_mismatched", rep->books_mismatched},
                        {"problems", by_problem},
                        {"mismatches", nlohmann::json::array()},
                        {"unknown_objects", rep->unknown_objects},
                        {"unknown_sample", rep->unknown_sample},
                        {"litter", {{"temporary_objects_removed", rep->temporaries_removed},
                                    {"multipart_uploads_aborted", rep->uploads_aborted},
                                    {"errors", rep->litter_errors}}},
                        {"elapsed_s", rep->elapsed_s}};
    if (vo.deep) {
      j["deep_checked"] = rep->deep_checked;
      j["deep_bytes"] = rep->deep_bytes;
      j["deep_unrecorded"] = rep->deep_unrecorded;
    }
    if (vo.requeue) {
      j["requeued"] = rep->requeued;
      j["raw_deleted"] = rep->raw_deleted;
      j["requeue_errors"] = rep->requeue_errors;
    }
    for (const auto& m : rep->mismatches) {
      j["mismatches"].push_back(
          {{"barcode", m.barcode}, {"problem", m.problem}, {"detail", m.detail}});
    }
    out << j.dump(2) << "\n";
  } else {
    if (!rep->mismatches.empty()) {
      out << std::left << std::setw(24) << "BARCODE" << std::setw(14) << "PROBLEM"
          << "DETAIL\n";
      for (const auto& m : rep->mismatches) {
        out << std::setw(24) << m.barcode << std::setw(14) << m.problem << m.detail << "\n";
      }
    }
    for (const auto& k : rep->unknown_sample) out << "unknown object  " << k << "\n";
    if (rep->unknown_objects > static_cast<int64_t>(rep->unknown_sample.size())) {
      out << "unknown object  ... and "
          << rep->unknown_objects - static_cast<int64_t>(rep->unknown_sample.size())
          << " more\n";
    }
    for (const auto& u : rep->uploads_aborted) out << "litter aborted  multipart upload " << u << "\n";
    for (const auto& e : rep->litter_errors) out << "litter error    " << e << "\n";
    for (const auto& e : rep->requeue_errors) out << "not requeued    " << e << "\n";
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << rep->elapsed_s;
    out << "verify: " << rep->done << " done books of " << rep->books << " checked against "
        << rep->objects_listed << " listed objects";
    if (vo.deep) {
      out << ", " << rep->deep_checked << " raw archives downloaded";
      if (rep->deep_unrecorded > 0) {
        out << " (" << rep->deep_unrecorded << " without a recorded SHA-256)";
      }
    }
    out << " in " << s.str() << " s: ";
    if (rep->ok()) {
      out << "all match";
    } else {
      out << rep->books_mismatched << " books mismatch (" << Problems(by_problem) << ")";
    }
    out << "; " << rep->unknown_objects << " unknown objects; litter removed: "
        << rep->temporaries_removed << " temporary objects, " << rep->uploads_aborted.size()
        << " multipart uploads.\n";
    if (vo.requeue && !rep->ok()) {
      out << "requeued " << rep->requeued << " books (" << rep->raw_deleted
          << " bad raw archives deleted): run `grin-jobs sync --run-dir " << *run_dir
          << "` to redo them.\n";
    } else if (!rep->ok()) {
      out << "run `grin-jobs verify --run-dir " << *run_dir
          << " --requeue` then `grin-jobs sync` to redo them.\n";
    }
  }
  return rep->ok() ? kExitOk : kExitVerifyMismatch;
}

}  // namespace grin::cli
