#include "cli/commands/settings.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "cli/commands/sync_options.h"
#include "cli/state_factory.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

enum class Rule {
  kLibraryDirectory,
  kUrl,
  kExistingDir,
  kReadableFile,
  kDirOrAbsent,
  kStorageType,
  kBool,
  kPathStyle,  // true, false or auto (cli/object_store_factory.h)
  kBucket,
  kPrefix,
  kWord,
};

struct PlainKey {
  const char* name;
  Rule rule;
  bool path;  // stored absolute, so a cron job in another directory finds it
};

constexpr PlainKey kTopKeys[] = {
    {"library_directory", Rule::kLibraryDirectory, false},
    {"grin_base_url", Rule::kUrl, false},
    {"grin_token_url", Rule::kUrl, false},
    {"credentials_dir", Rule::kExistingDir, true},
    {"ca_file", Rule::kReadableFile, true},
};

constexpr PlainKey kStorageKeys[] = {
    {"type", Rule::kStorageType, false},     {"base_path", Rule::kDirOrAbsent, true},
    {"endpoint_url", Rule::kUrl, false},     {"region", Rule::kWord, false},
    {"path_style", Rule::kPathStyle, false},      {"bucket_raw", Rule::kBucket, false},
    {"bucket_meta", Rule::kBucket, false},   {"bucket_full", Rule::kBucket, false},
    {"prefix", Rule::kPrefix, false},        {"credentials_file", Rule::kReadableFile, true},
    {"profile", Rule::kWord, false},         {"ca_file", Rule::kReadableFile, true},
};

std::string Shown(const std::string& v) {
  if (v.empty()) return "''";
  std::string s = v.size() > 200 ? v.substr(0, 200) + "..." : v;
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';  // one line
  }
  return s;
}

// "" when `text` keeps `rule`; else what is allowed.
std::string Allowed(Rule rule, const std::string& text) {
  auto all = [&](auto pred) { return std::all_of(text.begin(), text.end(), pred); };
  switch (rule) {
    case Rule::kLibraryDirectory: {
      bool ok = !text.empty() && text.size() <= 100 && text != "." && text != ".." &&
                all([](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                         c == '.';
                });
      return ok ? "" : "use GRIN's directory name (letters, digits, '-', '_', '.'), e.g. Harvard";
    }
    case Rule::kUrl: {
      bool ok = (text.rfind("https://", 0) == 0 || text.rfind("http://", 0) == 0) &&
                text.find_first_of(" \t\r\n") == std::string::npos;
      return ok ? "" : "use an http:// or https:// URL";
    }
    case Rule::kExistingDir: {
      std::error_code ec;
      return !text.empty() && fs::is_directory(text, ec) ? ""
                                                          : "not an existing directory; give one";
    }
    case Rule::kReadableFile: {
      struct stat st {};
      if (text.empty()) return "give a file name";
      if (::stat(text.c_str(), &st) != 0) {
        return (errno == ENOENT ? std::string("no such file") : std::string(std::strerror(errno))) +
               "; give an existing, readable file";
      }
      if (!S_ISREG(st.st_mode)) return "not a regular file; give a file";
      if (::access(text.c_str(), R_OK) != 0) return "cannot be read; give a readable file";
      return "";
    }
    case Rule::kDirOrAbsent: {
      if (text.empty()) return "give a directory";
      std::error_code ec;
      auto st = fs::status(text, ec);
      return !fs::exists(st) || fs::is_directory(st)
                 ? ""
                 : "exists and is not a directory; give a directory";
    }
    case Rule::kStorageType:
      return text == "local" || text == "s3" || text == "r2" || text == "minio"
                 ? ""
                 : "use local, s3, r2 or minio";
    case Rule::kBool:
      return text == "true" || text == "false" ? "" : "use true or false";
    case Rule::kPathStyle:
      return text == "true" || text == "false" || text == "auto" ? ""
                                                                  : "use true, false or auto";
    case Rule::kBucket: {
      bool ok = !text.empty() && text.size() <= 63 && text != "." && text != ".." &&
                all([](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                         c == '.';
                });
      return ok ? "" : "use a bucket name (letters, digits, '-', '_', '.'; at most 63)";
    }
    case Rule::kPrefix: {
      bool ok = text.size() <= 512 && (text.empty() || text[0] != '/') &&
                all([](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
      return ok ? "" : "use a key prefix of at most 512 characters, no leading '/' or control "
                       "characters";
    }
    case Rule::kWord: {
      bool ok = !text.empty() && text.size() <= 100 &&
                all([](char c) { return std::isgraph(static_cast<unsigned char>(c)) != 0; });
      return ok ? "" : "use a name without spaces";
    }
  }
  return "";
}

const PlainKey* FindPlain(const std::string& key) {
  for (const auto& k : kTopKeys) {
    if (key == k.name) return &k;
  }
  if (key.rfind("storage.", 0) == 0) {
    for (const auto& k : kStorageKeys) {
      if (key.substr(8) == k.name) return &k;
    }
  }
  return nullptr;
}

const StoredSyncOption* FindSync(const std::string& key) {
  if (key.rfind("sync.", 0) != 0) return nullptr;
  for (const auto& o : StoredSyncOptions()) {
    if (key.substr(5) == o.key) return &o;
  }
  return nullptr;
}

Status Unknown(const std::string& key) {
  std::string list;
  for (const auto& k : SettingKeys()) list += (list.empty() ? "" : ", ") + k;
  return Status::InvalidArgument("unknown setting '" + Shown(key) + "'; use one of " + list);
}

// Parses sync option arguments as `sync` would and checks their rules; "" or the refusal, with
// "--FLAG" replaced by `label`.
Status CheckSyncArgs(const StoredSyncOption& option, const std::vector<std::string>& args,
                     const std::string& label, cxxopts::ParseResult* parsed) {
  cxxopts::Options options("grin-jobs config");
  OptionRules rules;
  AddSyncOptions(options, rules);
  std::vector<std::string> storage = {"grin-jobs"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  std::string message;
  try {
    *parsed = options.parse(static_cast<int>(argv.size()), argv.data());
    Status s = rules.Check(*parsed);
    if (s.ok()) return s;
    message = s.message();
  } catch (const std::exception& e) {
    message = rules.ExplainParseError(args);
    if (message.empty()) message = std::string("--") + option.flag + " " + e.what();
  }
  // "--workers 0: use ..." -> "<label>: use ..."
  const std::string flag = std::string("--") + option.flag;
  if (message.rfind(flag, 0) == 0) {
    auto colon = message.find(": ");
    if (colon != std::string::npos) message = label + message.substr(colon);
  }
  return Status::InvalidArgument(message);
}

std::string AbsolutePath(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

// The stored spelling of a JSON value for `config show`.
std::string ShowValue(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + (e.is_string() ? e.get<std::string>()
                                                                          : e.dump());
    return s;
  }
  return v.dump();
}

// sync's defaults as its help shows them, by option name.
std::map<std::string, std::string> SyncDefaults() {
  cxxopts::Options options("grin-jobs sync");
  OptionRules rules;
  AddSyncOptions(options, rules);
  std::map<std::string, std::string> out;
  for (const char* group : {"input", "pipeline"}) {
    for (const auto& o : options.group_help(group).options) {
      if (o.l.empty()) continue;
      if (o.is_boolean) {
        out[o.l.front()] = "false";
      } else if (o.has_default) {
        out[o.l.front()] = o.default_value;
      }
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> SettingKeys() {
  std::vector<std::string> out;
  for (const auto& k : kTopKeys) out.push_back(k.name);
  for (const auto& k : kStorageKeys) out.push_back(std::string("storage.") + k.name);
  for (const auto& o : StoredSyncOptions()) out.push_back(std::string("sync.") + o.key);
  return out;
}

std::string NormalizeKey(const std::string& key) {
  std::string k = key;
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

Result<json> ParseSetting(const std::string& raw_key, const std::string& text,
                          const std::string& shown_as) {
  const std::string key = NormalizeKey(raw_key);
  const std::string label = shown_as.empty() ? key + " " + Shown(text) : shown_as;
  if (const PlainKey* k = FindPlain(key)) {
    std::string allowed = Allowed(k->rule, text);
    if (!allowed.empty()) return Status::InvalidArgument(label + ": " + allowed);
    if (k->rule == Rule::kBool) return json(text == "true");
    if (k->rule == Rule::kPathStyle && text != "auto") return json(text == "true");
    return json(k->path ? AbsolutePath(text) : text);
  }
  const StoredSyncOption* o = FindSync(key);
  if (o == nullptr) return Unknown(raw_key);
  const std::string flag = std::string("--") + o->flag;
  std::vector<std::string> args;
  switch (o->type) {
    case SettingType::kBool:
      if (text != "true" && text != "false") {
        return Status::InvalidArgument(label + ": use true or false");
      }
      return json(text == "true");
    case SettingType::kList: {
      json list = json::array();
      size_t pos = 0;
      while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(pos, comma - pos);
        args.push_back(flag);
        args.push_back(item);
        list.push_back(item);
        pos = comma + 1;
      }
      cxxopts::ParseResult parsed;
      GRIN_RETURN_IF_ERROR(CheckSyncArgs(*o, args, label, &parsed));
      return list;
    }
    default:
      break;
  }
  if (text.empty()) {
    return Status::InvalidArgument(label + ": give a value (`grin-jobs config unset " + key +
                                   "` goes back to the default)");
  }
  cxxopts::ParseResult parsed;
  GRIN_RETURN_IF_ERROR(CheckSyncArgs(*o, {flag, text}, label, &parsed));
  const auto& v = parsed[o->flag];
  if (o->type == SettingType::kNumber) return json(v.as<double>());
  if (o->type == SettingType::kString) {
    return json(o->key == std::string("decrypt_backend") ? text : AbsolutePath(text));
  }
  // A whole number, as the option declares it.
  try {
    return json(v.as<int>());
  } catch (const std::exception&) {
  }
  try {
    return json(v.as<int64_t>());
  } catch (const std::exception&) {
  }
  return json(v.as<uint64_t>());
}

json GetSetting(const RunConfig& c, const std::string& raw_key) {
  const std::string key = NormalizeKey(raw_key);
  auto str = [](const std::string& s) { return s.empty() ? json() : json(s); };
  if (key == "library_directory") return str(c.library_directory);
  if (key == "grin_base_url") return str(c.grin_base_url);
  if (key == "grin_token_url") return str(c.grin_token_url);
  if (key == "credentials_dir") return str(c.credentials_dir);
  if (key == "ca_file") return str(c.ca_file);
  for (const char* block : {"storage", "sync"}) {
    const std::string head = std::string(block) + ".";
    if (key.rfind(head, 0) != 0) continue;
    const json& j = block == std::string("storage") ? c.storage : c.sync;
    auto it = j.find(key.substr(head.size()));
    return it == j.end() ? json() : *it;
  }
  return json();
}

Status SetSetting(RunConfig* c, const std::string& raw_key, const json& value) {
  const std::string key = NormalizeKey(raw_key);
  if (FindPlain(key) == nullptr && FindSync(key) == nullptr) return Unknown(raw_key);
  auto text = [&]() { return value.is_string() ? value.get<std::string>() : std::string(); };
  if (key == "library_directory") {
    c->library_directory = text();
  } else if (key == "grin_base_url") {
    c->grin_base_url = text();
  } else if (key == "grin_token_url") {
    c->grin_token_url = text();
  } else if (key == "credentials_dir") {
    c->credentials_dir = text();
  } else if (key == "ca_file") {
    c->ca_file = text();
  } else if (key.rfind("storage.", 0) == 0) {
    c->storage[key.substr(8)] = value;
  } else {
    c->sync[key.substr(5)] = value;
  }
  return Status::Ok();
}

Status UnsetSetting(RunConfig* c, const std::string& raw_key) {
  const std::string key = NormalizeKey(raw_key);
  // A key someone put in the run config by hand may always be removed.
  for (const char* block : {"storage", "sync"}) {
    const std::string head = std::string(block) + ".";
    if (key.rfind(head, 0) != 0) continue;
    json& j = block == std::string("storage") ? c->storage : c->sync;
    if (j.contains(key.substr(head.size()))) {
      j.erase(key.substr(head.size()));
      return Status::Ok();
    }
  }
  if (FindPlain(key) == nullptr && FindSync(key) == nullptr) return Unknown(raw_key);
  if (key == "grin_base_url") {
    c->grin_base_url = kDefaultGrinBaseUrl;
  } else if (key == "grin_token_url") {
    c->grin_token_url = kDefaultGrinTokenUrl;
  } else if (key == "library_directory") {
    c->library_directory.clear();
  } else if (key == "credentials_dir") {
    c->credentials_dir.clear();
  } else if (key == "ca_file") {
    c->ca_file.clear();
  }
  return Status::Ok();
}

std::vector<ShownSetting> ShowSettings(const RunConfig& c) {
  std::vector<ShownSetting> out;
  const auto sync_defaults = SyncDefaults();
  for (const auto& key : SettingKeys()) {
    json v = GetSetting(c, key);
    ShownSetting s{key, "(not set)", "default"};
    bool is_default_url = (key == "grin_base_url" && c.grin_base_url == kDefaultGrinBaseUrl) ||
                          (key == "grin_token_url" && c.grin_token_url == kDefaultGrinTokenUrl);
    if (!v.is_null() && !is_default_url) {
      s.value = ShowValue(v);
      s.source = "run config";
    } else if (is_default_url) {
      s.value = v.get<std::string>();
    } else if (const StoredSyncOption* o = FindSync(key)) {
      auto it = sync_defaults.find(o->flag);
      if (it != sync_defaults.end()) s.value = it->second;
      if (o->type == SettingType::kList) s.value = "(none: continue the run's jobs)";
    }
    out.push_back(s);
  }
  // Where the job state lives: set by `init --state`, never by `config set` (state_factory.h).
  if (IsPostgresRun(c)) {
    out.push_back({"state", DescribeState("", c), "run config (init --state; fixed)"});
  }
  // Keys grin-jobs does not know: named, never shown (a secret may have been put there).
  for (const char* block : {"storage", "sync"}) {
    const json& j = block == std::string("storage") ? c.storage : c.sync;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string key = std::string(block) + "." + it.key();
      if (FindPlain(key) == nullptr && FindSync(key) == nullptr) {
        out.push_back({key, "(hidden: unknown key; remove it with `grin-jobs config unset " +
                                key + "`)",
                       "run config"});
      }
    }
  }
  return out;
}

Result<std::vector<std::string>> StoredSyncArgs(const RunConfig& config,
                                                const cxxopts::ParseResult& given) {
  std::vector<std::string> out;
  const bool selects = given.count("queue") || given.count("barcodes") ||
                       given.count("barcodes-file");
  for (auto it = config.sync.begin(); it != config.sync.end(); ++it) {
    if (FindSync("sync." + it.key()) == nullptr) {
      return Status::InvalidArgument(
          "run_config.json has an unknown setting sync." + Shown(it.key()) +
          "; remove it with `grin-jobs config unset sync." + Shown(it.key()) + "`");
    }
  }
  for (const auto& o : StoredSyncOptions()) {
    auto it = config.sync.find(o.key);
    if (it == config.sync.end() || it->is_null()) continue;
    if (given.count(o.flag) || (o.selection && selects)) continue;
    const std::string key = std::string("sync.") + o.key;
    const std::string fix = "; fix it with `grin-jobs config set " + key + " VALUE` or `grin-jobs "
                            "config unset " + key + "`";
    auto args = StoredArgs(o, *it);
    if (!args.ok()) {
      return Status::InvalidArgument("run_config.json " + args.status().message() + fix);
    }
    if (args->empty()) continue;
    cxxopts::ParseResult parsed;
    Status s = CheckSyncArgs(o, *args, "run_config.json " + key + " " + Shown(ShowValue(*it)),
                             &parsed);
    if (!s.ok()) return Status::InvalidArgument(s.message() + fix);
    out.insert(out.end(), args->begin(), args->end());
  }
  return out;
}

Status ReparseArgs(cxxopts::Options& options, const std::vector<std::string>& args,
                   const OptionRules& rules, cxxopts::ParseResult* parsed) {
  std::vector<std::string> storage = {options.program()};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  try {
    *parsed = options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const std::exception& e) {
    std::string why = rules.ExplainParseError(args);
    return Status::InvalidArgument(why.empty() ? e.what() : why);
  }
  return rules.Check(*parsed);
}

}  // namespace grin::cli
