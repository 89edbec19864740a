#pragma once
// The conversion side of `grin-jobs sync` (issue 16 items 11-13): which of the run's books wait
// for GRIN to convert them, waking those GRIN now lists in _converted, and the per-book plan
// `sync --dry-run` prints. Read-only on the run database except through StateStore::Wake.

#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "engine/base/result.h"
#include "engine/grin/client.h"
#include "engine/state_store.h"
#include "storage/sync_queries.h"
#include "storage/sync_reader.h"

namespace grin::cli {

// The run database's side (storage/sync_queries.h): a job's state, the jobs of some barcodes,
// the books awaiting conversion.
using storage::AwaitingBooks;
using storage::JobState;
using storage::ReadJobStates;

// True for a reason to wait under which GRIN was never asked to convert the book (queue full,
// requests stopped, no answer) or its archive expired: the next sync asks again.
bool AskAgain(const std::string& awaiting_reason);

// What `sync --dry-run` is told to plan.
struct PlanInput {
  std::vector<std::string> books;             // in the order the run would take them
  std::map<std::string, JobState> jobs;       // their jobs, if any
  const std::set<std::string>* converted = nullptr;     // GRIN's _converted, if listed
  const std::set<std::string>* known_failed = nullptr;  // GRIN's _failed, if listed
  std::map<std::string, std::string> wake;    // awaiting books the run makes ready -> why
  bool keep_done = false;                     // --force / --recheck
  std::string per_book;                       // "download -> decrypt -> ... -> upload to X"
};

// Adds the valid barcodes of GRIN's text list `list` ("converted", "failed") to *out.
Status ListBarcodes(grin_client::GrinClient& client, std::string_view list,
                    std::set<std::string>* out);

// Which awaiting books (barcode -> reason) a sync makes ready, each with why: listed in
// _converted, named on the command line, or AskAgain.
std::map<std::string, std::string> ChooseWake(const std::map<std::string, std::string>& awaiting,
                                              const std::set<std::string>& converted,
                                              const std::set<std::string>& named);

// Fills plan->books (the selection, or every unfinished job when it is empty) and plan->jobs,
// and lists _converted (unless *converted_listed) and _failed when some book would be checked,
// as the run would; a list GRIN does not give leaves that pointer null. Errors: the database.
Status PreparePlan(storage::SyncReader& reader, const std::vector<std::string>& selected,
                   grin_client::GrinClient& client, std::set<std::string>* converted,
                   bool* converted_listed, std::set<std::string>* known_failed, PlanInput* plan);

// Prints one line per book saying what the run would do with it, then the totals per action.
void PrintPlan(std::ostream& out, const PlanInput& in);

// When the stored books' GRIN ETags were last checked (storage/sync_queries.h).
using storage::EtagChecks;
using storage::ReadEtagChecks;

// For a sync that found nothing to do: says when the stored books' ETags were last checked
// (a stored book is not checked again unless asked) and the command that checks them:
// the same command with --recheck when it selected books (`selection_given`), else
// `grin-jobs sync --run-dir RUN --queue converted --recheck`. Prints nothing when no book is
// stored or the database cannot be read (it is only a hint).
void PrintRecheckHint(std::ostream& out, storage::SyncReader& reader, const std::string& run_dir,
                      bool selection_given, int64_t now_micros);

}  // namespace grin::cli
