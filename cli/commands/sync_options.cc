#include "cli/commands/sync_options.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace grin::cli {
namespace {

// The first whole number in a file (memory.max's "max" and unreadable files give nullopt).
std::optional<uint64_t> ReadNumber(const char* path) {
  std::ifstream f(path);
  uint64_t v = 0;
  if (f >> v) return v;
  return std::nullopt;
}

}  // namespace

uint64_t MemoryLimitMbFor(std::optional<uint64_t> available_bytes) {
  if (!available_bytes) return kMaxDefaultMemoryLimitMb;
  const uint64_t quarter_mb = (*available_bytes >> 20) / 4;
  return std::clamp(quarter_mb, kMinDefaultMemoryLimitMb, kMaxDefaultMemoryLimitMb);
}

std::optional<uint64_t> AvailableMemoryBytes() {
  std::optional<uint64_t> available;
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream in(line.substr(13));
      uint64_t kib = 0;
      if (in >> kib) available = kib << 10;
      break;
    }
  }
  // A cgroup v2 limit (a container, a systemd unit's MemoryMax): what is left under it, if less.
  std::string group;  // "0::/system.slice/x.service" -> "/system.slice/x.service"
  std::ifstream cgroup("/proc/self/cgroup");
  while (std::getline(cgroup, line)) {
    if (line.rfind("0::", 0) == 0) group = line.substr(3);
  }
  if (group.find("..") != std::string::npos) group.clear();
  const std::string dir = "/sys/fs/cgroup" + (group == "/" ? std::string() : group);
  auto max = ReadNumber((dir + "/memory.max").c_str());
  auto current = ReadNumber((dir + "/memory.current").c_str());
  if (max && current) {
    const uint64_t left = *max > *current ? *max - *current : 0;
    available = available ? std::min(*available, left) : left;
  }
  return available;
}

void AddSyncOptions(cxxopts::Options& options, OptionRules& rules) {
  options.add_options("input")(
      "queue", "converted, previous or unconverted (repeatable; in order)",
      cxxopts::value<std::vector<std::string>>())(
      "barcodes", "Comma-separated barcodes", cxxopts::value<std::string>())(
      "barcodes-file", "File with one barcode per line (# comments)",
      cxxopts::value<std::string>())(
      "limit", "At most N books per queue (in barcode order)", cxxopts::value<int64_t>())(
      "force", "Download again even when the stored ETag matches")(
      "recheck", "Check the ETags of selected books already stored (a changed archive is "
                 "downloaded again)")(
      "dry-run", "Print the plan; change nothing");
  options.add_options("pipeline")(
      "workers", "Worker threads", cxxopts::value<int>()->default_value("8"))(
      "check-concurrency", "GRIN HEAD checks in flight", cxxopts::value<int>()->default_value("2"))(
      "download-concurrency", "GRIN downloads in flight",
      cxxopts::value<int>()->default_value("4"))(
      "grin-rate", "GRIN requests per second (0 = unlimited)",
      cxxopts::value<double>()->default_value("5"))(
      "grin-bandwidth", "GRIN download bytes per second (0 = unlimited)",
      cxxopts::value<double>()->default_value("0"))(
      "staging-dir", "Staging directory (default <run>/staging)", cxxopts::value<std::string>())(
      "staging-limit-mb", "Pause downloads while staging holds more than this (0 = no limit)",
      cxxopts::value<uint64_t>()->default_value("4096"))(
      "stream-max-mb", "Stream books up to this size (decrypt while downloading, no staging); "
      "larger ones are staged (0 = stage every book)",
      cxxopts::value<uint64_t>()->default_value("128"))(
      "memory-limit-mb", "Memory for streamed books in flight (peak RSS is about this plus "
      "~80 MiB): streamed books wait for it; a book larger than it is staged. Default: a "
      "quarter of the memory available, 64 to 512",
      cxxopts::value<uint64_t>()->default_value(
          std::to_string(MemoryLimitMbFor(AvailableMemoryBytes()))))(
      "no-inventory", "HEAD every book in storage instead of listing the raw bucket once")(
      "multipart-threshold-mb", "Upload archives of this size or more in parts (resumable)",
      cxxopts::value<uint64_t>()->default_value("64"))(
      "decrypt-backend", "auto, native, gpg or rnp", cxxopts::value<std::string>()->default_value("auto"))(
      "passphrase-file", "The GPG passphrase file (default: gpg_passphrase.asc found in the "
                         "credentials search order, see --credentials-dir)",
      cxxopts::value<std::string>())(
      "credentials-dir", "Look here first for credentials.json, gpg_passphrase.asc and "
      "r2_credentials.json; then the run's credentials_dir, $GRIN_JOBS_CONFIG_DIR, "
      "$GRIN_CREDENTIALS_DIR, ~/.config/grin-jobs, ~/.config/grin-transfer",
      cxxopts::value<std::string>())(
      "skip-extract-ocr", "Do not extract or upload OCR text")(
      "skip-extract-marc", "Do not extract MARC metadata")(
      "skip-csv-export", "No CSV export at the end")(
      "durable", "synchronous=FULL: survive power loss, at some speed cost")(
      "retry-base-ms", "First retry of a failed book after up to this long (full jitter, "
      "doubling, at most 60 s; 5 attempts)", cxxopts::value<int64_t>()->default_value("2000"))(
      "stop-after-systemic", "Stop after this many consecutive books failed for a reason that is "
      "not theirs (GRIN access, TLS trust, storage access or bucket, a full disk); such books "
      "are kept as they were, never failed", cxxopts::value<int>()->default_value("3"))(
      "grin-list-attempts", "Attempts for a GRIN list request refused with 429 or 5xx, waited "
      "out patiently (backoff from 1-5 s doubling up to 5 min; Retry-After honoured)",
      cxxopts::value<int>()->default_value("12"));
  constexpr int64_t kMaxMb = int64_t{1} << 24;  // 16 TiB: MB << 20 stays far from overflow
  rules.Int<int64_t>("limit", 1, kNoMax)
      .Int<int>("grin-list-attempts", 1, 100)
      .Int<int>("workers", 1, 512)
      .Int<int>("check-concurrency", 1, 512)
      .Int<int>("download-concurrency", 1, 512)
      .Number("grin-rate", 0, 1e6, "requests per second; 0 = unlimited")
      .Number("grin-bandwidth", 0, 1e12, "bytes per second; 0 = unlimited")
      .Int<uint64_t>("staging-limit-mb", 0, kMaxMb, "0 = no limit")
      .Int<uint64_t>("stream-max-mb", 0, kMaxMb, "0 = stage every book")
      .Int<uint64_t>("memory-limit-mb", 1, kMaxMb)
      .Int<uint64_t>("multipart-threshold-mb", 5, 5 << 20, "S3 parts are at least 5 MiB")
      .Int<int64_t>("retry-base-ms", 1, 60'000)
      .Int<int>("stop-after-systemic", 1, 1'000'000)
      .EachOneOf("queue", {"converted", "previous", "unconverted"})
      .OneOf("decrypt-backend", {"auto", "native", "gpg", "rnp"})
      .ReadableFile("passphrase-file")
      .ExistingDir("credentials-dir")
      .DirOrAbsent("staging-dir");
}

const std::vector<StoredSyncOption>& StoredSyncOptions() {
  using T = SettingType;
  static const std::vector<StoredSyncOption> kOptions = {
      {"queue", "queue", T::kList, true},
      {"limit", "limit", T::kInt, true},
      {"workers", "workers", T::kInt, false},
      {"check_concurrency", "check-concurrency", T::kInt, false},
      {"download_concurrency", "download-concurrency", T::kInt, false},
      {"grin_rate", "grin-rate", T::kNumber, false},
      {"grin_bandwidth", "grin-bandwidth", T::kNumber, false},
      {"grin_list_attempts", "grin-list-attempts", T::kInt, false},
      {"staging_dir", "staging-dir", T::kString, false},
      {"staging_limit_mb", "staging-limit-mb", T::kInt, false},
      {"stream_max_mb", "stream-max-mb", T::kInt, false},
      {"memory_limit_mb", "memory-limit-mb", T::kInt, false},
      {"multipart_threshold_mb", "multipart-threshold-mb", T::kInt, false},
      {"no_inventory", "no-inventory", T::kBool, false},
      {"decrypt_backend", "decrypt-backend", T::kString, false},
      {"passphrase_file", "passphrase-file", T::kString, false},
      {"skip_extract_ocr", "skip-extract-ocr", T::kBool, false},
      {"skip_extract_marc", "skip-extract-marc", T::kBool, false},
      {"skip_csv_export", "skip-csv-export", T::kBool, false},
      {"durable", "durable", T::kBool, false},
      {"retry_base_ms", "retry-base-ms", T::kInt, false},
      {"stop_after_systemic", "stop-after-systemic", T::kInt, false},
  };
  return kOptions;
}

Result<std::vector<std::string>> StoredArgs(const StoredSyncOption& option,
                                            const nlohmann::json& value) {
  const std::string flag = std::string("--") + option.flag;
  auto wrong = [&](const char* what) {
    return Status::InvalidArgument(std::string("sync.") + option.key + " " +
                                   value.dump().substr(0, 100) + ": " + what);
  };
  switch (option.type) {
    case SettingType::kBool:
      if (!value.is_boolean()) return wrong("use true or false");
      if (value.get<bool>()) return std::vector<std::string>{flag};
      return std::vector<std::string>{};
    case SettingType::kList: {
      std::vector<std::string> out;
      if (value.is_string()) return std::vector<std::string>{flag, value.get<std::string>()};
      if (!value.is_array() || value.empty()) return wrong("use a list of names");
      for (const auto& v : value) {
        if (!v.is_string()) return wrong("use a list of names");
        out.push_back(flag);
        out.push_back(v.get<std::string>());
      }
      return out;
    }
    case SettingType::kInt:
    case SettingType::kNumber:
      if (value.is_number_integer() || value.is_number_unsigned()) {
        return std::vector<std::string>{flag, value.dump()};
      }
      if (option.type == SettingType::kNumber && value.is_number()) {
        return std::vector<std::string>{flag, value.dump()};
      }
      if (value.is_string()) return std::vector<std::string>{flag, value.get<std::string>()};
      return wrong(option.type == SettingType::kInt ? "use a whole number" : "use a number");
    case SettingType::kString:
      if (!value.is_string()) return wrong("use a text value");
      return std::vector<std::string>{flag, value.get<std::string>()};
  }
  return wrong("unknown setting type");
}

}  // namespace grin::cli
