#pragma once
// Builds the ObjectStore a run's run_config.json "storage" block describes, on a transport the
// caller owns (so sync sends GRIN and S3 traffic through one shared transport).

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/net/transport.h"
#include "engine/object_store.h"

namespace grin::cli {

struct OpenedObjectStore {
  std::unique_ptr<ObjectStore> store;
  StorageLayout layout;
  std::string ca_file;  // storage.ca_file, "" if none (the transport must trust it)
};

// `storage` is the run config's storage object: type (local|s3|r2|minio), base_path,
// endpoint_url, region, path_style, bucket_raw/meta/full, prefix, credentials_file, profile,
// ca_file. `transport` (not owned) is used by S3-compatible stores and must outlive the store.
Result<OpenedObjectStore> OpenObjectStore(const nlohmann::json& storage, net::Transport* transport);

}  // namespace grin::cli
