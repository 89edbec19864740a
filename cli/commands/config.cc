// grin-jobs config show | set KEY VALUE | unset KEY: a run's settings (run_config.json), each
// checked by the rule of the command-line option it stands for (cli/commands/settings.h), and
// where each secret file would be found (cli/credentials_search.h; paths only, never contents).
#include <iostream>

#include "cli/cli.h"
#include "cli/commands/settings.h"
#include "cli/credentials_search.h"
#include "cli/run_config.h"
#include "cli/run_context.h"

namespace grin::cli {
namespace {

// A string field of a JSON object; "" when absent or not a string.
std::string Field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int Show(const std::string& run_dir, const RunConfig& config, const std::string& flag_dir,
         std::ostream& out) {
  out << "run " << run_dir << " (" << ConfigPath(run_dir) << ")\n";
  size_t width = 0;
  auto shown = ShowSettings(config);
  for (const auto& s : shown) width = std::max(width, s.key.size());
  for (const auto& s : shown) {
    std::string key = s.key;
    key.resize(width + 2, ' ');
    out << "  " << key << s.value << "  [" << s.source << "]\n";
  }
  out << "secrets (search order:";
  CredentialsSearch search(flag_dir, &config);
  for (const auto& d : search.dirs()) out << " " << d.path;
  out << "):\n";
  struct Line {
    const char* label;
    Result<FoundSecret> found;
  };
  std::vector<Line> lines;
  lines.push_back({"OAuth client", search.Find(SecretKind::kClientSecret)});
  lines.push_back({"GRIN token", search.Find(SecretKind::kToken)});
  lines.push_back({"GPG passphrase",
                   search.FindPassphrase(Field(config.sync, "passphrase_file"))});
  if (Field(config.storage, "type") == "r2") {
    std::optional<FoundSecret> r2;
    WithStorageCredentials(config.storage, search, &r2);
    if (r2) {
      lines.push_back({"R2 keys", *r2});
    } else if (Field(config.storage, "credentials_file").empty()) {
      lines.push_back({"R2 keys", search.Find(SecretKind::kR2Keys)});
    } else {
      lines.push_back({"R2 keys",
                       FoundSecret{Field(config.storage, "credentials_file"),
                                   "storage.credentials_file"}});
    }
  }
  for (const auto& l : lines) {
    std::string label = l.label;
    label.resize(16, ' ');
    out << "  " << label
        << (l.found.ok() ? Describe(*l.found) : std::string("not found")) << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunConfigCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options(
      "grin-jobs config",
      "A run's settings (run_config.json).\n"
      "  config show                  every setting, its value and where it came from (default "
      "or run config), and which secret files would be used (paths only)\n"
      "  config set KEY VALUE         check VALUE by the rule of the option KEY stands for and "
      "store it (sync.* are sync's defaults: `grin-jobs sync --run-dir R` uses them; a flag on "
      "the command line overrides a stored value for that run only)\n"
      "  config unset KEY             back to the default\n"
      "Keys: library_directory, grin_base_url, grin_token_url, credentials_dir, ca_file, "
      "storage.{type, base_path, endpoint_url, region, path_style, bucket_raw, bucket_meta, "
      "bucket_full, prefix, credentials_file, profile, ca_file}, sync.{queue, limit, workers, "
      "check_concurrency, download_concurrency, grin_rate, grin_bandwidth, grin_list_attempts, "
      "staging_dir, staging_limit_mb, stream_max_mb, memory_limit_mb, multipart_threshold_mb, "
      "no_inventory, decrypt_backend, passphrase_file, skip_extract_ocr, skip_extract_marc, "
      "skip_csv_export, durable, retry_base_ms, stop_after_systemic}.");
  AddRunOptions(options);
  options.add_options()("credentials-dir",
                        "config show: look here first for secret files",
                        cxxopts::value<std::string>())(
      "words", "show | set KEY VALUE | unset KEY", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"words"});
  options.positional_help("show | set KEY VALUE | unset KEY");
  OptionRules rules;
  rules.ExistingDir("credentials-dir");
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  std::vector<std::string> words;
  if (parsed.count("words")) words = parsed["words"].as<std::vector<std::string>>();
  const std::string action = words.empty() ? "" : words[0];
  const size_t want = action == "show" ? 1 : action == "set" ? 3 : action == "unset" ? 2 : 0;
  if (want == 0 || words.size() != want) {
    err << "grin-jobs config: say `show`, `set KEY VALUE` or `unset KEY`; see --help\n";
    return kExitUsage;
  }
  auto run_dir = ResolveRunDir(parsed);
  if (!run_dir.ok()) return ReportError(err, "config", run_dir.status());
  auto config = LoadRunConfig(*run_dir);
  if (!config.ok()) return ReportError(err, "config", config.status());
  if (action == "show") {
    return Show(*run_dir, *config,
                parsed.count("credentials-dir") ? parsed["credentials-dir"].as<std::string>()
                                                : "",
                out);
  }
  const std::string key = NormalizeKey(words[1]);
  const nlohmann::json before = GetSetting(*config, key);
  if (action == "set") {
    auto value = ParseSetting(key, words[2]);
    if (!value.ok()) return ReportError(err, "config set", value.status());
    Status s = SetSetting(&*config, key, *value);
    if (!s.ok()) return ReportError(err, "config set", s);
  } else {
    Status s = UnsetSetting(&*config, key);
    if (!s.ok()) return ReportError(err, "config unset", s);
  }
  Status saved = SaveRunConfig(*run_dir, *config);
  if (!saved.ok()) return ReportError(err, "config", saved);
  const nlohmann::json after = GetSetting(*config, key);
  auto text = [](const nlohmann::json& j) {
    if (j.is_null()) return std::string("(not set)");
    return j.is_string() ? j.get<std::string>() : j.dump();
  };
  out << key << ": " << text(before) << " -> " << text(after) << " (" << ConfigPath(*run_dir)
      << ")\n";
  return kExitOk;
}

}  // namespace grin::cli
