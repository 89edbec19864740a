// The progress line: the reference tool's exact format.
#include <doctest/doctest.h>

#include "engine/pipeline/progress.h"

namespace grin::pipeline {
namespace {

TEST_CASE("progress line in the reference tool's format") {
  ProgressSnapshot s;
  s.done = 1234;
  s.total = 150926;
  s.elapsed_s = 3725;
  s.active_downloads = 3;
  s.download_limit = 5;
  s.processing = 23;
  s.waiting_download = 100;
  s.waiting_process = 0;
  CHECK(FormatProgressLine(s, 0.4) ==
        "1,234/150,926 (0.8%) - 0.4 books/sec - elapsed: 1h 2m (ETA: 103h 57m) [downloads: 3/5, "
        "processing: 23, waiting to download: 100, waiting to be processed: 0]");
  s.done = 20;
  s.total = 20;
  s.elapsed_s = 12.34;
  CHECK(FormatProgressLine(s, 0) ==
        "20/20 (100.0%) - 0.0 books/sec - elapsed: 12.3s [downloads: 3/5, processing: 23, "
        "waiting to download: 100, waiting to be processed: 0]");
}

TEST_CASE("rate: overall before two points, then a smoothed window") {
  ProgressTracker t;
  CHECK(t.Record(10, 20) == doctest::Approx(2.0));
  double r = t.Record(20, 40);
  CHECK(r == doctest::Approx(2.0));
  r = t.Record(30, 100);  // a burst moves the EMA only a little
  CHECK(r > 2.0);
  CHECK(r < 3.0);
}

}  // namespace
}  // namespace grin::pipeline
