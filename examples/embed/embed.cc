// A program that embeds grin-jobs: opens (or creates) a run and syncs a few converted books,
// printing progress as books finish. Ctrl-C drains: the books in flight finish, then it stops.
//
//   grin-jobs-embed RUN_DIR [LIMIT]                      an existing run (grin-jobs init)
//   grin-jobs-embed RUN_DIR LIMIT --create LIBRARY_DIR GRIN_BASE_URL TOKEN_URL CREDENTIALS_DIR
//                   CA_FILE STORAGE_PATH [STATE]         a new run on local storage; its job
//                                                        state in books.db, or with STATE (a
//                                                        postgresql:// URI) on PostgreSQL
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "grin_jobs/grin_jobs.h"

namespace {

grin::jobs::Cancellation cancel;

class PrintProgress : public grin::jobs::Observer {
 public:
  void OnMessage(grin::jobs::MessageKind kind, std::string_view text) override {
    (kind == grin::jobs::MessageKind::kInfo ? std::cout : std::cerr) << text << "\n";
  }
  void OnProgress(const grin::jobs::Progress& p) override {
    std::cout << "progress: " << p.done << "/" << p.total << " books\n" << std::flush;
  }
};

int Usage() {
  std::cerr << "usage: grin-jobs-embed RUN_DIR [LIMIT] [--create LIBRARY_DIR GRIN_BASE_URL "
               "TOKEN_URL CREDENTIALS_DIR CA_FILE STORAGE_PATH [POSTGRESQL_URI]]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") return argc < 2 ? Usage() : (Usage(), 0);
  const std::string run_dir = argv[1];
  const long limit = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 5;
  const bool create = (argc == 10 || argc == 11) && std::string(argv[3]) == "--create";
  if (argc > 3 && !create) return Usage();
  auto run = [&]() -> grin::jobs::Result<std::unique_ptr<grin::jobs::Run>> {
    if (!create) return grin::jobs::Run::Open({run_dir, ""});
    grin::jobs::CreateOptions c;
    c.run_dir = run_dir;
    c.library_directory = argv[4];
    c.grin_base_url = argv[5];
    c.grin_token_url = argv[6];
    c.credentials_dir = argv[7];
    c.ca_file = argv[8];
    c.storage = {{"type", "local"}, {"base_path", argv[9]}};
    if (argc == 11) c.state = argv[10];  // "" or absent: books.db in RUN_DIR
    return grin::jobs::Run::Create(c);
  }();
  if (!run.ok()) {
    std::cerr << "grin-jobs-embed: " << run.status().message() << "\n";
    return 1;
  }
  std::cout << "run " << (*run)->run_dir() << ", state in " << (*run)->state_location() << "\n";
  std::signal(SIGINT, [](int) { cancel.Drain(); });
  grin::jobs::SyncOptions options;
  options.queues = {"converted"};
  options.limit = limit;
  options.workers = 2;
  PrintProgress observer;
  auto report = (*run)->Sync(options, &observer, &cancel);
  if (!report.ok()) {
    std::cerr << "grin-jobs-embed: " << report.status().message() << "\n";
    return 1;
  }
  std::cout << report->uploaded << " books stored, " << report->failed_for_good
            << " failed for good" << (report->done() ? "; done" : "; not done") << "\n";
  return report->done() ? 0 : 1;
}
