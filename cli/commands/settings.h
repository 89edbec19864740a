#pragma once
// A run's settings: every key of run_config.json an operator may set (`grin-jobs init` flags,
// `grin-jobs config set KEY VALUE`), each checked by the rule of the command-line option it
// stands for, so a value refused on the command line is refused in the run config too.
//
//   library_directory, grin_base_url, grin_token_url, credentials_dir, ca_file
//   storage.{type, base_path, endpoint_url, region, path_style, bucket_raw, bucket_meta,
//            bucket_full, prefix, credentials_file, profile, ca_file}
//   sync.{queue, limit, workers, grin_rate, ...}   (cli/commands/sync_options.h)
//
// "state" (where the job state lives, cli/run_config.h) is not a setting: `init --state` sets it
// once; `config show` lists it (password-free) on a PostgreSQL run.
//
// Keys may be written with '-' for '_' (sync.grin-rate). Unknown keys are refused with the list
// of known keys. Secrets never go in the run config: credentials are found by
// cli/credentials_search.h, and the run config only names paths.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/option_rules.h"
#include "cli/run_config.h"
#include "engine/base/result.h"

namespace grin::cli {

// Every settable key, in `config show` order.
std::vector<std::string> SettingKeys();

// `key` with '-' spelled '_' (the stored spelling).
std::string NormalizeKey(const std::string& key);

// Checks `text` as the value of `key` and returns what run_config.json stores (a number, a
// boolean, a list for sync.queue, an absolute path for a path). kInvalidArgument, one line:
// "KEY VALUE: what is allowed" (`shown_as` replaces "KEY VALUE" when given, e.g.
// "--storage-config prefix=/a"), or "unknown setting 'KEY'; use one of ..." for an unknown key.
Result<nlohmann::json> ParseSetting(const std::string& key, const std::string& text,
                                    const std::string& shown_as = "");

// The stored value of `key` (null when not set) and setting/removing it. Unknown key:
// kInvalidArgument as ParseSetting's.
nlohmann::json GetSetting(const RunConfig& config, const std::string& key);
Status SetSetting(RunConfig* config, const std::string& key, const nlohmann::json& value);
Status UnsetSetting(RunConfig* config, const std::string& key);

struct ShownSetting {
  std::string key;
  std::string value;   // "(not set)" when neither stored nor defaulted
  std::string source;  // "run config" or "default"
};
// Every key with its value and where it came from. Keys in the run config that grin-jobs does
// not know are listed too, with their value hidden (it might be a secret someone put there).
std::vector<ShownSetting> ShowSettings(const RunConfig& config);

// The command-line arguments of the run's stored sync settings that `given` (sync's parsed
// command line) does not give; stored queue/limit are left out when the command line selects
// books itself (--queue, --barcodes, --barcodes-file). kInvalidArgument naming the key, the value
// and the `grin-jobs config set|unset` that fixes it, for a stored value the rule refuses or an
// unknown sync key.
Result<std::vector<std::string>> StoredSyncArgs(const RunConfig& config,
                                                const cxxopts::ParseResult& given);

// Parses `args` again with `options` (which ParseArgs has already seen) and checks `rules`:
// how sync reads its command line with the stored settings added. kInvalidArgument, one line.
Status ReparseArgs(cxxopts::Options& options, const std::vector<std::string>& args,
                   const OptionRules& rules, cxxopts::ParseResult* parsed);

}  // namespace grin::cli
