// See sync_plan.h.
#include "cli/commands/sync_plan.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "engine/base/clock.h"
#include "engine/base/format.h"

namespace grin::cli {

bool AskAgain(const std::string& reason) {
  return reason == "conversion_queue_full" || reason == "conversion_not_requested" ||
         reason == "conversion_unanswered" || reason == "archive_expired";
}

Status ListBarcodes(grin_client::GrinClient& client, std::string_view list,
                    std::set<std::string>* out) {
  return client.ForEachTextLine(list, "", [out](const std::string& b) {
    if (IsValidBarcode(b)) out->insert(b);
    return Status::Ok();
  });
}

std::map<std::string, std::string> ChooseWake(const std::map<std::string, std::string>& awaiting,
                                              const std::set<std::string>& converted,
                                              const std::set<std::string>& named) {
  std::map<std::string, std::string> wake;
  for (const auto& [b, reason] : awaiting) {
    if (converted.count(b)) {
      wake[b] = "now in _converted";
    } else if (named.count(b)) {
      wake[b] = "named";
    } else if (AskAgain(reason)) {
      wake[b] = "to ask GRIN again (" + reason + ")";
    }
  }
  return wake;
}

Status PreparePlan(storage::SyncReader& reader, const std::vector<std::string>& selected,
                   grin_client::GrinClient& client, std::set<std::string>* converted,
                   bool* converted_listed, std::set<std::string>* known_failed, PlanInput* plan) {
  plan->books = selected;
  {
    auto jobs = reader.ReadJobStates(selected, selected.empty());  // none without a database
    if (!jobs.ok()) return jobs.status();
    plan->jobs = std::move(jobs).value();
  }
  if (selected.empty()) {
    for (const auto& [b, j] : plan->jobs) plan->books.push_back(b);
    std::sort(plan->books.begin(), plan->books.end());
  }
  bool any_unchecked = false;
  for (const auto& b : plan->books) {
    auto it = plan->jobs.find(b);
    if (it == plan->jobs.end() || it->second.stage == "pending") any_unchecked = true;
  }
  if (any_unchecked && !*converted_listed) {
    *converted_listed = ListBarcodes(client, "converted", converted).ok();
  }
  const bool failed_listed = any_unchecked && ListBarcodes(client, "failed", known_failed).ok();
  plan->converted = *converted_listed ? converted : nullptr;
  plan->known_failed = failed_listed ? known_failed : nullptr;
  return Status::Ok();
}

void PrintPlan(std::ostream& out, const PlanInput& in) {
  std::map<std::string, int64_t> totals;
  for (const auto& b : in.books) {
    auto it = in.jobs.find(b);
    const JobState* j = it == in.jobs.end() ? nullptr : &it->second;
    std::string action, why;
    const bool listed = in.converted != nullptr && in.converted->count(b) > 0;
    if (j != nullptr && j->status == "leased") {
      action = "in flight";
      why = "leased by another run: taken back when this run starts, then resumed at " + j->stage;
    } else if (j != nullptr && j->stage == "uploaded" && !in.keep_done) {
      action = "stored";
      why = "skip";
    } else if (j != nullptr && j->stage == "uploaded") {
      action = "recheck";
      why = "stored; check the ETag (HEAD), download again if it changed";
    } else if (j != nullptr && j->status == "dead") {
      action = "dead";
      why = "skip (" + j->reason + "); `grin-jobs retry` requeues it";
    } else if (j != nullptr && j->status == "awaiting" && in.wake.count(b) == 0) {
      action = "awaiting";
      why = "waiting for GRIN's conversion since " + FormatIsoUtc(j->since_micros) + " (" +
            j->reason + "); skip until _converted lists it";
    } else if (j != nullptr && j->stage == "checked") {
      action = "download";
      why = "resume: " + in.per_book;
    } else if (j != nullptr && j->stage == "downloaded") {
      action = "process";
      why = "resume: decrypt the staged archive -> upload";
    } else if (in.known_failed != nullptr && in.known_failed->count(b) && !in.keep_done) {
      action = "skip";
      why = "in GRIN's _failed list: dead by rule (known_conversion_failure)";
    } else if (listed || (in.converted == nullptr)) {
      action = "check";
      auto w = in.wake.find(b);
      why = std::string(w == in.wake.end() ? "" : "awaiting conversion, " + w->second +
                                                      ": ready again; ") +
            (listed ? "check (GET or HEAD) -> " + in.per_book
                    : "check (HEAD): converted -> " + in.per_book +
                          "; not converted -> convert request (_process) -> awaiting");
    } else {
      action = "convert";
      auto w = in.wake.find(b);
      why = std::string(w == in.wake.end() ? "" : "awaiting conversion, " + w->second +
                                                      ": ready again; ") +
            "not in _converted: check (HEAD), convert request (_process) -> awaiting "
            "conversion (a full GRIN queue stops requests: the rest wait, not requested)";
    }
    if (j != nullptr && j->status == "retry") why += " (retrying after: " + j->reason + ")";
    ++totals[action];
    out << "  " << b << "  " << action << ": " << why << "\n";
  }
  out << "Plan:";
  if (totals.empty()) out << " nothing to do";
  bool first = true;
  for (const auto& [action, n] : totals) {
    out << (first ? " " : ", ") << n << " " << action;
    first = false;
  }
  out << ".\n";
}

namespace {

// "2026-12-05T03:45:00Z" (or with milliseconds) -> micros; -1 if it does not parse.
int64_t ParseIsoUtc(const std::string& iso) {
  std::tm tm{};
  int y, mo, d, h, mi, s;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6) {
    return -1;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

// A word of the shell: quoted when it holds anything but [A-Za-z0-9_./:=,+-].
std::string ShellWord(const std::string& w) {
  bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           (c != '\0' && std::strchr("_./:=,+-", c) != nullptr);
  });
  if (plain) return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

void PrintRecheckHint(std::ostream& out, storage::SyncReader& reader, const std::string& run_dir,
                      bool selection_given, int64_t now_micros) {
  auto c = reader.ReadEtagChecks();
  if (!c.ok() || c->stored == 0) return;
  const std::string books =
      std::to_string(c->stored) + " stored book" + (c->stored == 1 ? "" : "s");
  if (c->checked == 0) {
    out << "No ETag check is recorded for the " << books << ".";
  } else {
    out << "ETags of the " << books << " were last checked " << c->newest;
    if (int64_t t = ParseIsoUtc(c->newest); t > 0 && now_micros >= t) {
      out << " (" << FormatDuration(static_cast<double>(now_micros - t) / 1e6) << " ago)";
    }
    if (c->oldest != c->newest) out << "; the oldest check " << c->oldest;
    if (c->checked < c->stored) out << "; " << c->stored - c->checked << " never checked";
    out << ".";
  }
  out << " A stored book is not checked against GRIN again unless asked; to check";
  if (selection_given) {
    out << " the selected ones (a changed archive is downloaded again), rerun the same command "
           "with --recheck\n";
  } else {
    out << " them (a changed archive is downloaded again): grin-jobs sync --run-dir "
        << ShellWord(run_dir) << " --queue converted --recheck\n";
  }
}

}  // namespace grin::cli
