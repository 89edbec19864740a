#pragma once
// Builds the ObjectStore a run's run_config.json "storage" block describes, on a transport the
// caller owns (so sync sends GRIN and S3 traffic through one shared transport), and the names a
// run's files get in the meta bucket.
//
// S3-compatible settings are resolved as the AWS CLI and botocore resolve them; for each one the
// first source that sets it wins:
//   1. an explicit command-line option (the `storage` command's flags, written into `storage`);
//   2. the run config (run_config.json "storage", written by `init --storage-config` and
//      `init --endpoint-url`), and for endpoint/region/buckets an R2 JSON credentials_file;
//   3. the environment: region AWS_REGION, then AWS_DEFAULT_REGION; endpoint
//      AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL; CA bundle AWS_CA_BUNDLE; profile AWS_PROFILE;
//      keys AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (storage/s3/credentials);
//   4. the AWS files of the profile (storage.profile, else $AWS_PROFILE, else "default"):
//      ~/.aws/config ($AWS_CONFIG_FILE) region, endpoint_url (the "s3 =" sub-section's first),
//      ca_bundle, "s3 =" addressing_style; ~/.aws/credentials ($AWS_SHARED_CREDENTIALS_FILE)
//      keys; for r2, ~/.config/grin-transfer/r2_credentials.json;
//   5. defaults: region us-east-1 (r2: auto); endpoint https://s3.<region>.amazonaws.com (s3),
//      http://localhost:9000 (minio), none for r2 (an error naming the setting).
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the endpoints of 3 and 4, as in botocore.
//
// Addressing (path_style): true/false from the run config, else the config file's
// addressing_style (path/virtual/auto), else auto: path style for r2 and minio, and for s3 when
// the endpoint host is an IP address or localhost (no DNS name "bucket.host" exists for them) or
// a bucket name cannot be a DNS label (upper case, '_', '.'); virtual-host style otherwise.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/net/transport.h"
#include "engine/object_store.h"
#include "storage/s3/credentials.h"

namespace grin::cli {

// The keys a run config's "storage" object (and `init --storage-config`) may hold; anything else
// is refused by init/config. The one list: keep it in step with ResolveStorage.
const std::vector<std::string>& StorageConfigKeys();

// Checks one storage setting's value as `init --storage-config KEY=VALUE` (or `config set`) gives
// it: an unknown key, a path_style other than true/false/auto, an endpoint_url that is not
// http(s)://host[:port][/]: kInvalidArgument naming the key, the value and what is allowed.
Status CheckStorageValue(const std::string& key, const std::string& value);

// One line per key for `init --help`: "endpoint_url: ..., path_style: true|false|auto ...".
std::string StorageConfigHelp();

struct OpenedObjectStore {
  std::unique_ptr<ObjectStore> store;
  StorageLayout layout;
  std::string ca_file;  // the storage CA bundle, "" if none (the transport must trust it)
};

// The settings of an S3-compatible store after the resolution above (never holds secrets).
struct StorageSettings {
  std::string type;  // local|s3|r2|minio
  std::string endpoint_url;
  std::string region;
  bool path_style = true;
  std::string ca_file;
  std::string profile;
  StorageLayout layout;
};

// Resolves `storage` (see above). kInvalidArgument naming the field for a bad value
// (e.g. path_style "yes", an unknown type, r2 without endpoint).
Result<StorageSettings> ResolveStorage(const nlohmann::json& storage,
                                       const s3::EnvLookup& env = s3::ProcessEnv());

// The CA bundle storage requests must trust: storage.ca_file, else $AWS_CA_BUNDLE, else the
// profile's ca_bundle in ~/.aws/config; "" for local storage or when none is set. For callers
// that create the transport before opening the store.
std::string StorageCaFile(const nlohmann::json& storage,
                          const s3::EnvLookup& env = s3::ProcessEnv());

// `storage` is the run config's storage object: type (local|s3|r2|minio), base_path,
// endpoint_url, region, path_style, bucket_raw/meta/full, prefix, credentials_file, profile,
// ca_file. `transport` (not owned) is used by S3-compatible stores and must outlive the store.
Result<OpenedObjectStore> OpenObjectStore(const nlohmann::json& storage, net::Transport* transport,
                                          const s3::EnvLookup& env = s3::ProcessEnv());

// A run's name as used in meta keys: run_name if set, else the run directory's base name.
// kInvalidArgument (naming run_config.json's run_name and how to fix it) if it is empty, "." or
// "..", longer than 200 bytes, or holds '/', '\\' or a control character.
Result<std::string> RunMetaName(const std::string& run_name, const std::string& run_dir);

// The layout of a run's meta objects: `layout` with "<run name>/" added to the prefix, so
// books_latest.db.gz, books_latest.csv.gz, process_summary.json and their timestamped/ copies
// of two runs sharing a meta bucket never collide. Raw and full keys never use it.
StorageLayout RunMetaLayout(const StorageLayout& layout, const std::string& run_meta_name);

}  // namespace grin::cli
