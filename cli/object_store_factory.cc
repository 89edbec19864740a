#include "cli/object_store_factory.h"

#include <algorithm>
#include <arpa/inet.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/local_object_store.h"
#include "storage/s3/aws_config.h"
#include "storage/s3/s3_object_store.h"

namespace grin::cli {
namespace {

struct KeyHelp {
  const char* key;
  const char* help;
};

// The one list of storage keys (StorageConfigKeys, StorageConfigHelp).
constexpr KeyHelp kKeys[] = {
    {"endpoint_url", "S3 endpoint, e.g. https://<account>.r2.cloudflarestorage.com"},
    {"region", "signing region (default: AWS_REGION, ~/.aws/config, us-east-1; r2: auto)"},
    {"path_style",
     "true (https://host/bucket/key), false (https://bucket.host/key) or auto (default: path "
     "style for r2, minio, IP-address and localhost endpoints)"},
    {"bucket_raw", "bucket of decrypted archives (default raw)"},
    {"bucket_meta", "bucket of run files: CSV, database backups, summaries (default meta)"},
    {"bucket_full", "bucket of OCR text (default full)"},
    {"prefix", "key prefix in every bucket"},
    {"credentials_file", "AWS credentials (INI) or R2 JSON file"},
    {"profile", "AWS profile (default: AWS_PROFILE, else default)"},
    {"ca_file", "CA bundle the storage endpoint's certificate chains to (default: AWS_CA_BUNDLE)"},
    {"base_path", "folder of local storage"},
};

std::string Get(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return fallback;
  return it->get<std::string>();
}

std::string EnvOr(const s3::EnvLookup& env, const char* name) {
  auto v = env(name);
  return v ? *v : "";
}

std::string Profile(const nlohmann::json& cfg, const s3::EnvLookup& env) {
  std::string p = Get(cfg, "profile");
  if (p.empty()) p = EnvOr(env, "AWS_PROFILE");
  return p.empty() ? "default" : p;
}

// The profile's section of ~/.aws/config ($AWS_CONFIG_FILE); empty if none.
s3::AwsProfileConfig LoadAwsConfig(const std::string& profile, const s3::EnvLookup& env) {
  std::string path = EnvOr(env, "AWS_CONFIG_FILE");
  if (path.empty()) {
    std::string home = EnvOr(env, "HOME");
    if (home.empty()) return {};
    path = home + "/.aws/config";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  auto parsed = s3::ParseAwsConfig(ss.str(), profile);
  return parsed.ok() ? *parsed : s3::AwsProfileConfig{};
}

std::string CaFile(const nlohmann::json& cfg, const s3::EnvLookup& env,
                   const s3::AwsProfileConfig& aws) {
  std::string ca = Get(cfg, "ca_file");
  if (ca.empty()) ca = EnvOr(env, "AWS_CA_BUNDLE");
  if (ca.empty()) ca = aws.Value("ca_bundle");
  return ca;
}

bool IpOrLocalhost(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') return true;  // IPv6 literal
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return true;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return h == "localhost" || (h.size() > 10 && h.substr(h.size() - 10) == ".localhost");
}

// A bucket name usable as one DNS label under https (botocore's virtual-hostable check).
bool DnsLabel(const std::string& b) {
  if (b.size() < 3 || b.size() > 63 || b.front() == '-' || b.back() == '-') return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Result<std::string> Addressing(const nlohmann::json& cfg, const s3::AwsProfileConfig& aws) {
  auto it = cfg.find("path_style");
  if (it != cfg.end() && it->is_boolean()) return std::string(it->get<bool>() ? "path" : "virtual");
  if (it != cfg.end() && it->is_string()) {  // from `init --storage-config path_style=..`
    std::string v = it->get<std::string>();
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "true" || v == "1") return std::string("path");
    if (v == "false" || v == "0") return std::string("virtual");
    if (v == "auto" || v.empty()) return std::string("auto");
    return Status::InvalidArgument("run_config.json: storage.path_style '" +
                                   it->get<std::string>().substr(0, 50) +
                                   "': use true, false or auto");
  }
  if (it != cfg.end() && !it->is_null()) {
    return Status::InvalidArgument("run_config.json: storage.path_style must be true, false or "
                                   "auto");
  }
  std::string style = aws.S3Value("addressing_style");
  if (style == "path" || style == "virtual") return style;
  return std::string("auto");
}

}  // namespace

const std::vector<std::string>& StorageConfigKeys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const auto& e : kKeys) k.emplace_back(e.key);
    return k;
  }();
  return keys;
}

Status CheckStorageValue(const std::string& key, const std::string& value) {
  const auto& keys = StorageConfigKeys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
    std::string all;
    for (const auto& k : keys) all += (all.empty() ? "" : ", ") + k;
    return Status::InvalidArgument("storage setting '" + key.substr(0, 100) +
                                   "' is unknown; use one of " + all);
  }
  if (key == "path_style") {
    auto r = Addressing(nlohmann::json{{"path_style", value}}, s3::AwsProfileConfig{});
    if (!r.ok()) {
      return Status::InvalidArgument("path_style '" + value.substr(0, 50) +
                                     "': use true, false or auto");
    }
  }
  if (key == "endpoint_url") {
    auto ep = s3::ParseEndpoint(value);
    if (!ep.ok()) {
      return Status::InvalidArgument("endpoint_url '" + value.substr(0, 200) +
                                     "': use http(s)://host[:port], e.g. "
                                     "https://<account>.r2.cloudflarestorage.com");
    }
  }
  return Status::Ok();
}

std::string StorageConfigHelp() {
  std::string out;
  for (const auto& e : kKeys) {
    out += std::string(out.empty() ? "" : "; ") + e.key + ": " + e.help;
  }
  return out;
}

std::string StorageCaFile(const nlohmann::json& storage, const s3::EnvLookup& env) {
  if (Get(storage, "type", "local") == "local") return "";
  return CaFile(storage, env, LoadAwsConfig(Profile(storage, env), env));
}

namespace {

// ResolveStorage, with a region and endpoint found in AWS files other than ~/.aws/config (a
// shared credentials file's profile, the reference tool's R2 file): used after that file's.
Result<StorageSettings> Resolve(const nlohmann::json& cfg, const s3::EnvLookup& env,
                                const std::string& file_region,
                                const std::string& file_endpoint) {
  StorageSettings out;
  out.type = Get(cfg, "type", "local");
  out.layout.bucket_raw = Get(cfg, "bucket_raw", "raw");
  out.layout.bucket_meta = Get(cfg, "bucket_meta", "meta");
  out.layout.bucket_full = Get(cfg, "bucket_full", "full");
  out.layout.prefix = Get(cfg, "prefix");
  if (out.type == "local") return out;
  if (out.type != "s3" && out.type != "r2" && out.type != "minio") {
    return Status::InvalidArgument("run_config.json: unknown storage.type '" + out.type +
                                   "' (local, s3, r2 or minio)");
  }
  out.profile = Profile(cfg, env);
  s3::AwsProfileConfig aws = LoadAwsConfig(out.profile, env);
  out.ca_file = CaFile(cfg, env, aws);
  // Region: run config > env > ~/.aws/config > default.
  out.region = Get(cfg, "region");
  if (out.region.empty()) out.region = EnvOr(env, "AWS_REGION");
  if (out.region.empty()) out.region = EnvOr(env, "AWS_DEFAULT_REGION");
  if (out.region.empty()) out.region = aws.Value("region");
  if (out.region.empty()) out.region = file_region;
  // Endpoint: run config > env > ~/.aws/config (s3 sub-section first) > default.
  bool ignore_configured = EnvOr(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") == "true";
  out.endpoint_url = Get(cfg, "endpoint_url");
  if (out.endpoint_url.empty() && !ignore_configured) {
    for (std::string v : {EnvOr(env, "AWS_ENDPOINT_URL_S3"), EnvOr(env, "AWS_ENDPOINT_URL"),
                          aws.S3Value("endpoint_url"), aws.Value("endpoint_url"),
                          file_endpoint}) {
      if (!v.empty()) {
        out.endpoint_url = v;
        break;
      }
    }
  }
  GRIN_ASSIGN_OR_RETURN(std::string style, Addressing(cfg, aws));
  if (out.endpoint_url.empty() && out.type == "minio") out.endpoint_url = "http://localhost:9000";
  if (out.endpoint_url.empty() && out.type == "r2") {
    return Status::InvalidArgument(
        "run_config.json: r2 storage needs an endpoint: init --endpoint-url "
        "https://<account>.r2.cloudflarestorage.com (or AWS_ENDPOINT_URL_S3)");
  }
  if (out.region.empty()) out.region = out.type == "r2" ? "auto" : "us-east-1";
  if (out.endpoint_url.empty()) out.endpoint_url = "https://s3." + out.region + ".amazonaws.com";
  if (style == "auto") {
    auto ep = s3::ParseEndpoint(out.endpoint_url);
    if (!ep.ok()) {
      return Status::InvalidArgument("storage endpoint_url '" + out.endpoint_url.substr(0, 200) +
                                     "': " + ep.status().message());
    }
    bool dns = DnsLabel(out.layout.bucket_raw) && DnsLabel(out.layout.bucket_meta) &&
               DnsLabel(out.layout.bucket_full);
    out.path_style = out.type != "s3" || IpOrLocalhost(ep->host) || !dns;
  } else {
    out.path_style = style == "path";
  }
  return out;
}

}  // namespace

Result<StorageSettings> ResolveStorage(const nlohmann::json& cfg, const s3::EnvLookup& env) {
  return Resolve(cfg, env, "", "");
}

Result<OpenedObjectStore> OpenObjectStore(const nlohmann::json& cfg, net::Transport* transport,
                                          const s3::EnvLookup& env) {
  OpenedObjectStore out;
  std::string type = Get(cfg, "type", "local");
  if (type == "local") {
    GRIN_ASSIGN_OR_RETURN(StorageSettings st, ResolveStorage(cfg, env));
    out.layout = st.layout;
    out.ca_file = Get(cfg, "ca_file");
    std::string path = Get(cfg, "base_path");
    if (path.empty()) {
      return Status::InvalidArgument("run_config.json: local storage needs storage.base_path");
    }
    GRIN_ASSIGN_OR_RETURN(auto local, storage::LocalObjectStore::Open(path));
    out.store = std::move(local);
    return out;
  }
  // An explicit R2 JSON credentials file may carry endpoint, region and buckets: they count as
  // run config (the run config names the file), so they go in before the resolution.
  nlohmann::json eff = cfg;
  if (type != "local" && type != "s3" && type != "r2" && type != "minio") {
    return ResolveStorage(cfg, env).status();
  }
  s3::CredentialRequest creq{Get(cfg, "credentials_file"), Get(cfg, "profile"), type == "r2"};
  GRIN_ASSIGN_OR_RETURN(s3::ResolvedCredentials creds, s3::ResolveCredentials(creq, env));
  auto fill = [&](const char* key, const std::string& value) {
    if (Get(eff, key).empty() && !value.empty()) eff[key] = value;
  };
  fill("bucket_raw", creds.bucket_raw);
  fill("bucket_meta", creds.bucket_meta);
  fill("bucket_full", creds.bucket_full);
  if (!Get(cfg, "credentials_file").empty()) {
    fill("endpoint_url", creds.endpoint_url);
    fill("region", creds.region);
  }
  // Settings a shared credentials file or the reference tool's R2 file carry count as AWS files.
  std::string file_region, file_endpoint;
  if (Get(cfg, "credentials_file").empty()) {
    file_region = creds.region;
    file_endpoint = creds.endpoint_url;
  }
  GRIN_ASSIGN_OR_RETURN(StorageSettings st, Resolve(eff, env, file_region, file_endpoint));
  out.layout = st.layout;
  out.ca_file = st.ca_file;
  s3::S3Config sc;
  sc.region = st.region;
  sc.endpoint_url = st.endpoint_url;
  sc.path_style = st.path_style;
  GRIN_ASSIGN_OR_RETURN(auto s3store, s3::S3ObjectStore::Create(sc, creds.credentials, transport));
  out.store = std::move(s3store);
  return out;
}

Result<std::string> RunMetaName(const std::string& run_name, const std::string& run_dir) {
  std::string name = run_name;
  if (name.empty()) {
    std::error_code ec;
    auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(run_dir, ec), ec);
    name = abs.filename().string();
    if (name.empty()) name = abs.parent_path().filename().string();
  }
  bool ok = !name.empty() && name.size() <= 200 && name != "." && name != ".." &&
            std::none_of(name.begin(), name.end(), [](unsigned char c) {
              return c == '/' || c == '\\' || c < 0x20 || c == 0x7f;
            });
  if (!ok) {
    std::string shown;
    for (unsigned char c : name.substr(0, 60)) shown += c < 0x20 || c == 0x7f ? '?' : char(c);
    return Status::InvalidArgument(
        "run_config.json: run_name '" + shown +
        "' cannot name the run's files in the meta bucket; set run_name in the run's "
        "run_config.json to a name without '/', '\\' or control characters (not '.' or '..')");
  }
  return name;
}

StorageLayout RunMetaLayout(const StorageLayout& layout, const std::string& run_meta_name) {
  StorageLayout out = layout;
  std::string p = layout.prefix;
  while (!p.empty() && p.back() == '/') p.pop_back();
  out.prefix = p.empty() ? run_meta_name : p + "/" + run_meta_name;
  return out;
}

}  // namespace grin::cli
