#include "cli/object_store_factory.h"

#include "storage/local_object_store.h"
#include "storage/s3/credentials.h"
#include "storage/s3/s3_object_store.h"

namespace grin::cli {
namespace {

std::string Get(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return fallback;
  return it->get<std::string>();
}

}  // namespace

Result<OpenedObjectStore> OpenObjectStore(const nlohmann::json& cfg, net::Transport* transport) {
  OpenedObjectStore out;
  std::string type = Get(cfg, "type", "local");
  out.layout.bucket_raw = Get(cfg, "bucket_raw", "raw");
  out.layout.bucket_meta = Get(cfg, "bucket_meta", "meta");
  out.layout.bucket_full = Get(cfg, "bucket_full", "full");
  out.layout.prefix = Get(cfg, "prefix");
  out.ca_file = Get(cfg, "ca_file");
  if (type == "local") {
    std::string path = Get(cfg, "base_path");
    if (path.empty()) {
      return Status::InvalidArgument("run_config.json: local storage needs storage.base_path");
    }
    GRIN_ASSIGN_OR_RETURN(auto local, storage::LocalObjectStore::Open(path));
    out.store = std::move(local);
    return out;
  }
  if (type != "s3" && type != "r2" && type != "minio") {
    return Status::InvalidArgument("run_config.json: unknown storage.type '" + type +
                                   "' (local, s3, r2 or minio)");
  }
  s3::CredentialRequest creq{Get(cfg, "credentials_file"), Get(cfg, "profile"), type == "r2"};
  GRIN_ASSIGN_OR_RETURN(s3::ResolvedCredentials creds, s3::ResolveCredentials(creq));
  if (Get(cfg, "bucket_raw").empty() && !creds.bucket_raw.empty()) {
    out.layout.bucket_raw = creds.bucket_raw;
  }
  if (Get(cfg, "bucket_meta").empty() && !creds.bucket_meta.empty()) {
    out.layout.bucket_meta = creds.bucket_meta;
  }
  if (Get(cfg, "bucket_full").empty() && !creds.bucket_full.empty()) {
    out.layout.bucket_full = creds.bucket_full;
  }
  s3::S3Config sc;
  sc.region = Get(cfg, "region", !creds.region.empty() ? creds.region
                                                        : (type == "r2" ? "auto" : "us-east-1"));
  std::string default_endpoint = type == "minio" ? "http://localhost:9000"
                                 : type == "s3"  ? "https://s3." + sc.region + ".amazonaws.com"
                                                 : "";
  sc.endpoint_url = Get(cfg, "endpoint_url",
                        !creds.endpoint_url.empty() ? creds.endpoint_url : default_endpoint);
  if (sc.endpoint_url.empty()) {
    return Status::InvalidArgument("run_config.json: r2 storage needs storage.endpoint_url");
  }
  if (auto it = cfg.find("path_style"); it != cfg.end() && it->is_boolean()) {
    sc.path_style = it->get<bool>();
  } else if (it != cfg.end() && it->is_string()) {  // from `init --storage-config path_style=..`
    sc.path_style = it->get<std::string>() == "true" || it->get<std::string>() == "1";
  } else {
    sc.path_style = type != "s3";
  }
  GRIN_ASSIGN_OR_RETURN(auto s3store, s3::S3ObjectStore::Create(sc, creds.credentials, transport));
  out.store = std::move(s3store);
  return out;
}

}  // namespace grin::cli
