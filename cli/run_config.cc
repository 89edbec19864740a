#include "cli/run_config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace grin::cli {

std::string DbPath(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / "books.db").string();
}

std::string ConfigPath(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / "run_config.json").string();
}

nlohmann::json ToJson(const RunConfig& c) {
  nlohmann::json j{{"run_name", c.run_name},
                        {"library_directory", c.library_directory},
                        {"grin_base_url", c.grin_base_url},
                        {"grin_token_url", c.grin_token_url},
                        {"credentials_dir", c.credentials_dir},
                        {"ca_file", c.ca_file},
                        {"storage", c.storage},
                        {"sync", c.sync}};
  if (!c.state.empty()) j["state"] = c.state;  // absent: SQLite, as every run before it
  return j;
}

Result<RunConfig> LoadRunConfig(const std::string& run_dir) {
  std::string path = ConfigPath(run_dir);
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": no run config; create the run with 'grin-jobs init'");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(path + ": not a JSON object; fix or recreate it");
  }
  RunConfig c;
  struct Field {
    const char* name;
    std::string* dst;
  } fields[] = {{"run_name", &c.run_name},
                {"library_directory", &c.library_directory},
                {"grin_base_url", &c.grin_base_url},
                {"grin_token_url", &c.grin_token_url},
                {"credentials_dir", &c.credentials_dir},
                {"ca_file", &c.ca_file},
                {"state", &c.state}};
  for (const auto& f : fields) {
    if (!j.contains(f.name) || j[f.name].is_null()) continue;
    if (!j[f.name].is_string()) {
      if (std::string(f.name) == "state") {  // not a setting: init --state writes it
        return Status::InvalidArgument(path + ": field 'state' must be a string (a "
                                       "postgresql:// URI, or \"\" for books.db); fix the file "
                                       "by hand");
      }
      return Status::InvalidArgument(path + ": field '" + f.name + "' must be a string; set it "
                                     "with `grin-jobs config set " + f.name + " VALUE`");
    }
    *f.dst = j[f.name].get<std::string>();
  }
  for (const char* obj : {"storage", "sync"}) {
    if (!j.contains(obj) || j[obj].is_null()) continue;
    if (!j[obj].is_object()) {
      return Status::InvalidArgument(path + ": field '" + obj + "' must be an object (of " +
                                     obj + ".KEY settings, see `grin-jobs config --help`); fix "
                                     "the file by hand or recreate the run with `grin-jobs init`");
    }
  }
  if (j.contains("storage") && j["storage"].is_object()) {
    // The commands read these as strings (object_store_factory, doctor): a number or a list
    // there must be refused here, naming the field, not silently replaced by a default (a type
    // of 5 read as "local") nor thrown as a JSON exception later.
    const nlohmann::json& st = j["storage"];
    for (const char* key : {"type", "base_path", "endpoint_url", "region", "bucket_raw",
                            "bucket_meta", "bucket_full", "prefix", "credentials_file", "profile",
                            "ca_file"}) {
      auto it = st.find(key);
      if (it != st.end() && !it->is_string()) {
        return Status::InvalidArgument(path + ": field 'storage." + key + "' must be a string");
      }
    }
    if (auto it = st.find("path_style");
        it != st.end() && !it->is_boolean() && !it->is_string() && !it->is_null()) {
      return Status::InvalidArgument(path + ": field 'storage.path_style' must be true or false");
    }
    c.storage = st;
  }
  if (j.contains("sync") && j["sync"].is_object()) c.sync = j["sync"];
  if (!c.state.empty() && c.state.rfind("postgresql://", 0) != 0 &&
      c.state.rfind("postgres://", 0) != 0) {
    return Status::InvalidArgument(path + ": field 'state' must be \"\" (SQLite books.db) or a "
                                   "postgresql:// URI; fix the file by hand");
  }
  return c;
}

Status SaveRunConfig(const std::string& run_dir, const RunConfig& config) {
  std::string path = ConfigPath(run_dir);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::PermissionDenied(tmp + ": cannot write the run config");
    out << ToJson(config).dump(2) << "\n";
    out.flush();
    if (!out) return Status::ResourceExhausted(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::PermissionDenied(path + ": cannot replace the run config");
  }
  return Status::Ok();
}

}  // namespace grin::cli
