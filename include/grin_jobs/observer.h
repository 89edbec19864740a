#pragma once
// What a host hears while a run works: messages (the lines the CLI prints), progress, the
// engine's structured log events. Every method has an empty default; override what you need.
//
// Thread safety: OnProgress and OnLog are called from the sync's worker threads (one call at a
// time for OnProgress, concurrently for OnLog); OnMessage and OnEvent from the thread that
// called the facade, except kAborted and the warnings just before it, which may come from the
// sync's own abort thread. Calls must return quickly and must not call back into the Run.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grin::jobs {

enum class MessageKind {
  kInfo,     // what the run does ("Sync of RUN: 3 new jobs, ..."); the CLI prints it on stdout
  kWarning,  // something degraded; the run goes on (the CLI: stderr, "warning: ...")
  kError,    // part of the work failed (a queue not listed); the run goes on but will not be
             // done() (the CLI: stderr). Also, just before a failed call returns its Status,
             // what the failure leaves (a collect stopped part-way: rerun to resume).
};

enum class EventKind {
  kConnected,         // transport, GRIN client and object store are open
  kPipelineStarting,  // books are about to be claimed (cancellation now drains)
  kAborted,           // Abort(): what the sync held was given back (the leases of the books
                      // in flight; on PostgreSQL its worker registration and GRIN slots), or
                      // a kWarning message before it said what could not be
  kPipelineFinished,  // the pipeline returned; teardown (CSV, backup, summary) follows
};

struct Progress {
  int64_t done = 0;   // books finished (stored, skipped or failed for good) in this sync
  int64_t total = 0;  // books the sync started with
  double elapsed_s = 0;
  int64_t bytes_downloaded = 0;
  int active_downloads = 0;
  int processing = 0;
  // SyncOptions::progress_lines: the reference tool's progress line (then only `line` is set,
  // every SyncOptions::progress_every books); otherwise "" and one call per finished book.
  std::string line;
};

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
using LogFields = std::vector<std::pair<std::string, std::string>>;

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void OnMessage(MessageKind, std::string_view /*text*/) {}
  virtual void OnEvent(EventKind) {}
  virtual void OnProgress(const Progress&) {}
  // The engine's log events ("book.done barcode=..."); a host that writes them to a file
  // should redact values as the CLI does (cli/log_setup.h RedactLogValue).
  // Only levels at or above log_level() are formatted and passed.
  virtual LogLevel log_level() const { return LogLevel::kWarning; }
  virtual void OnLog(LogLevel, std::string_view /*event*/, const LogFields&) {}
};

}  // namespace grin::jobs
