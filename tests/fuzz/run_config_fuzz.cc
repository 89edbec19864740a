// Fuzz target: a run's run_config.json (cli/run_config, LoadRunConfig), read from a run
// directory as every command reads it, then written back and read again (SaveRunConfig):
// what loads must round-trip. The storage block is then read the way the commands read it
// (doctor: storage.value("type", ""), which throws on a field of the wrong type; the factory's
// fields), so a config that loads must be one they can read.

#include <cstdlib>

#include "cli/run_config.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = grin::fuzz::ScratchDir();
  grin::fuzz::WriteFileOrDie(ConfigPath(dir), grin::fuzz::AsView(data, size), 0644);
  auto config = LoadRunConfig(dir);
  if (!config.ok()) return 0;
  for (const char* key : {"type", "base_path", "endpoint_url", "region", "bucket_raw",
                          "bucket_meta", "bucket_full", "prefix", "credentials_file", "profile",
                          "ca_file"}) {
    (void)config->storage.value(key, "");  // an uncaught exception is a finding
  }
  if (!SaveRunConfig(dir, *config).ok()) std::abort();
  auto again = LoadRunConfig(dir);
  if (!again.ok() || ToJson(*again) != ToJson(*config)) std::abort();
  return 0;
}
