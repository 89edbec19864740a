#pragma once
// The sync command's options and their rules (cli/option_rules.h), shared by `sync` and by the
// run settings (cli/commands/settings.h), so a stored default (`grin-jobs config set
// sync.workers 16`) is checked by exactly the rule the command line's --workers is.
//
// The options a cron user sets once are stored in run_config.json's "sync" block, keyed by the
// option's name with '_' for '-' (sync.grin_rate for --grin-rate); `sync` adds each stored value
// its command line does not give (the command line wins, for that run only).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/option_rules.h"  // includes cxxopts (never splitting values at ',')
#include "engine/base/result.h"

namespace grin::cli {

// Adds sync's input and pipeline options to `options`, and their rules to `rules` (every rule
// but the barcode files', which `sync` adds itself).
void AddSyncOptions(cxxopts::Options& options, OptionRules& rules);

// The default --memory-limit-mb (memory for streamed books in flight; peak RSS is about it plus
// ~80 MiB): a quarter of the memory this process may still use, at most 512 and at least 64.
// "May still use" is MemAvailable from /proc/meminfo, lowered to what the cgroup (v2) leaves
// (memory.max - memory.current) when a container limits it. nullopt (unknown) gives 512.
// 512 MiB on a machine with 2 GiB or more to spare: the rate-optimal budget on 50 MB books
// (docs/benchmarks.md: "Sync pipeline", "Memory"); smaller machines get a smaller budget
// instead of being pushed into swap or the OOM killer.
uint64_t MemoryLimitMbFor(std::optional<uint64_t> available_bytes);
// What this process may still use, read as above; nullopt if neither source can be read.
std::optional<uint64_t> AvailableMemoryBytes();
inline constexpr uint64_t kMaxDefaultMemoryLimitMb = 512;
inline constexpr uint64_t kMinDefaultMemoryLimitMb = 64;

// How a stored sync setting becomes command-line text.
enum class SettingType { kInt, kNumber, kBool, kString, kList };

struct StoredSyncOption {
  const char* key;   // "grin_rate" (run_config.json sync.grin_rate)
  const char* flag;  // "grin-rate"
  SettingType type;
  bool selection;    // queue / limit: left out when the command line selects books itself
};

// The sync options a run may store, in help order.
const std::vector<StoredSyncOption>& StoredSyncOptions();

// The command-line arguments for the stored `value` of `option` ({"--workers", "16"}; a true
// flag is {"--durable"}, a false one {}; a list one "--queue V" per element). kInvalidArgument if
// the JSON type does not fit (e.g. an object).
Result<std::vector<std::string>> StoredArgs(const StoredSyncOption& option,
                                            const nlohmann::json& value);

}  // namespace grin::cli
