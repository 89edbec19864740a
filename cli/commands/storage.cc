// grin-jobs storage ls | head | cp | rm: look at and manage the object store a run uses.
//
// Objects are named BUCKET:KEY, where BUCKET is raw, meta or full (the run's configured bucket,
// with the configured prefix put before KEY), or s3://BUCKET/KEY (a literal bucket, no prefix).
// Settings come from flags and, with --run-dir/--run-name, default to the run's run_config.json
// "storage" block. Secrets are never printed.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/credentials_search.h"
#include "cli/option_rules.h"
#include "cli/run_config.h"
#include "cli/object_store_factory.h"
#include "cli/run_context.h"
#include "engine/net/curl_transport.h"
#include "engine/object_store.h"

namespace grin::cli {
namespace {

// One line on stderr, exit 1. (ReportError's mapping to 3/4 is about the run's database, which
// storage commands do not touch: every storage failure is exit code 1.)
int Fail(std::ostream& err, const Status& status) {
  err << "grin-jobs storage: " << status.message() << "\n";
  return kExitFailure;
}

constexpr const char* kUsage =
    "usage: grin-jobs storage <ls|head|cp|rm> [options] ARGS\n"
    "  ls [PREFIX-OBJECT]       list objects, e.g. `ls raw:` or `ls raw:3204` or `ls s3://b/p`\n"
    "  head OBJECT              size, ETag and user metadata of one object\n"
    "  cp SRC DST               upload (local file -> OBJECT) or download (OBJECT -> file|-)\n"
    "  rm OBJECT...             delete objects; --recursive deletes every key under a prefix;\n"
    "                           asks for confirmation unless --yes; --dry-run only lists\n"
    "OBJECT is raw:KEY, meta:KEY, full:KEY (configured buckets and prefix) or s3://BUCKET/KEY.\n";

// Keeps the transport alive as long as the store that uses it (declared first: dies last).
struct OpenedStore {
  std::unique_ptr<net::CurlTransport> transport;
  std::unique_ptr<ObjectStore> store;
  StorageLayout layout;
};

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The run config's storage block (with --run-dir/--run-name), overridden by flags, opened by the
// same factory sync uses.
Result<OpenedStore> OpenStore(const cxxopts::ParseResult& p) {
  nlohmann::json cfg = nlohmann::json::object();
  std::optional<RunConfig> run;
  if (p.count("run-dir") || p.count("run-name")) {
    GRIN_ASSIGN_OR_RETURN(std::string run_dir, ResolveRunDir(p));
    GRIN_ASSIGN_OR_RETURN(RunConfig rc, LoadRunConfig(run_dir));
    if (rc.storage.is_object()) cfg = rc.storage;
    run = std::move(rc);
  }
  static constexpr std::pair<const char*, const char*> kFlags[] = {
      {"storage", "type"},           {"storage-path", "base_path"},
      {"endpoint-url", "endpoint_url"}, {"region", "region"},
      {"bucket-raw", "bucket_raw"},  {"bucket-meta", "bucket_meta"},
      {"bucket-full", "bucket_full"}, {"prefix", "prefix"},
      {"credentials-file", "credentials_file"}, {"profile", "profile"},
      {"ca-file", "ca_file"}};
  for (const auto& [flag, key] : kFlags) {
    if (p.count(flag)) cfg[key] = p[flag].as<std::string>();
  }
  if (p.count("virtual-host") && p.count("path-style")) {
    return Status::InvalidArgument("--virtual-host and --path-style exclude each other");
  }
  if (p.count("virtual-host")) cfg["path_style"] = false;
  if (p.count("path-style")) cfg["path_style"] = true;
  if (JsonString(cfg, "type").empty()) cfg["type"] = "local";
  if (JsonString(cfg, "type") == "local" && JsonString(cfg, "base_path").empty()) {
    return Status::InvalidArgument("local storage needs --storage-path");
  }
  OpenedStore out;
  if (JsonString(cfg, "type") != "local") {
    net::TransportOptions to;
    to.ca_file = StorageCaFile(cfg);  // --ca-file, else AWS_CA_BUNDLE, else ~/.aws/config
    GRIN_ASSIGN_OR_RETURN(out.transport, net::CurlTransport::Create(to));
  }
  // R2 keys follow the one credentials search order (cli/credentials_search.h).
  cfg = WithStorageCredentials(cfg, CredentialsSearch("", run ? &*run : nullptr));
  GRIN_ASSIGN_OR_RETURN(OpenedObjectStore opened, OpenObjectStore(cfg, out.transport.get()));
  out.store = std::move(opened.store);
  out.layout = opened.layout;
  return out;
}

struct ObjectRef {
  std::string bucket, key;
  // "bucket/key" for messages: control characters escaped, so a message stays one line.
  std::string Shown() const {
    std::string out = bucket + "/";
    for (unsigned char c : key) {
      if (c < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", c);
        out += hex;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }
};

// raw:KEY / meta:KEY / full:KEY / s3://BUCKET/KEY. kInvalidArgument otherwise.
Result<ObjectRef> ParseRef(const std::string& text, const StorageLayout& layout) {
  if (text.rfind("s3://", 0) == 0) {
    std::string rest = text.substr(5);
    size_t slash = rest.find('/');
    if (slash == 0 || rest.empty()) return Status::InvalidArgument("s3://BUCKET/KEY expected");
    if (slash == std::string::npos) return ObjectRef{rest, ""};
    return ObjectRef{rest.substr(0, slash), rest.substr(slash + 1)};
  }
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("not an object name: '" + text +
                                   "' (raw:KEY, meta:KEY, full:KEY or s3://BUCKET/KEY)");
  }
  std::string which = text.substr(0, colon), key = text.substr(colon + 1);
  std::string bucket = which == "raw"    ? layout.bucket_raw
                       : which == "meta" ? layout.bucket_meta
                       : which == "full" ? layout.bucket_full
                                         : "";
  if (bucket.empty()) return Status::InvalidArgument("unknown bucket alias '" + which + "'");
  std::string prefix = layout.prefix;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) key = prefix + "/" + key;
  return ObjectRef{bucket, key};
}

bool IsRef(const std::string& s) {
  return s.rfind("s3://", 0) == 0 || s.rfind("raw:", 0) == 0 || s.rfind("meta:", 0) == 0 ||
         s.rfind("full:", 0) == 0;
}

// Writes a download to a file (or stdout for "-").
class FileSink final : public ObjectSink {
 public:
  explicit FileSink(std::FILE* f) : f_(f) {}
  Status Write(std::string_view d) override {
    if (std::fwrite(d.data(), 1, d.size(), f_) != d.size()) {
      return Status::Internal("write failed");
    }
    n_ += d.size();
    return Status::Ok();
  }
  bool Restart() override {
    if (f_ == stdout || std::fseek(f_, 0, SEEK_SET) != 0) return false;
    n_ = 0;
    return true;
  }
  uint64_t n_ = 0;

 private:
  std::FILE* f_;
};

int Ls(OpenedStore& s, const std::vector<std::string>& args, std::ostream& out,
       std::ostream& err) {
  std::string what = args.empty() ? "raw:" : args[0];
  auto ref = ParseRef(what, s.layout);
  if (!ref.ok()) return Fail(err, ref.status());
  auto all = s.store->ListAll(ref->bucket, ref->key);
  if (!all.ok()) return Fail(err, all.status());
  uint64_t total = 0;
  for (const auto& o : *all) {
    char line[64];
    std::snprintf(line, sizeof line, "%14llu  ", static_cast<unsigned long long>(o.size));
    out << line << o.etag << "  " << o.key << "\n";
    total += o.size;
  }
  out << all->size() << " objects, " << total << " bytes in " << ref->bucket << "\n";
  return kExitOk;
}

int Head(OpenedStore& s, const std::vector<std::string>& args, std::ostream& out,
         std::ostream& err) {
  if (args.size() != 1) {
    err << "grin-jobs storage head: exactly one OBJECT expected\n";
    return kExitUsage;
  }
  auto ref = ParseRef(args[0], s.layout);
  if (!ref.ok()) return Fail(err, ref.status());
  auto info = s.store->Head(ref->bucket, ref->key);
  if (!info.ok()) return Fail(err, info.status().WithContext(ref->Shown()));
  out << "bucket: " << ref->bucket << "\nkey: " << info->key << "\nsize: " << info->size
      << "\netag: " << info->etag << "\nlast_modified: " << info->last_modified << "\n";
  for (const auto& [k, v] : info->metadata) out << "meta." << k << ": " << v << "\n";
  return kExitOk;
}

int Cp(OpenedStore& s, const std::vector<std::string>& args, const cxxopts::ParseResult& p,
       std::ostream& out, std::ostream& err) {
  if (args.size() != 2 || IsRef(args[0]) == IsRef(args[1])) {
    err << "grin-jobs storage cp: expected `cp FILE OBJECT` or `cp OBJECT FILE|-`\n";
    return kExitUsage;
  }
  if (IsRef(args[1])) {
    auto ref = ParseRef(args[1], s.layout);
    if (!ref.ok()) return Fail(err, ref.status());
    auto src = FileSource::Open(args[0]);
    if (!src.ok()) return Fail(err, src.status());
    UploadOptions u;
    for (const auto& m : p["meta"].as<std::vector<std::string>>()) {
      size_t eq = m.find('=');
      if (m.empty()) continue;  // the option's empty default
      if (eq == std::string::npos) {
        err << "grin-jobs storage cp: --meta takes NAME=VALUE\n";
        return kExitUsage;
      }
      u.put.metadata[m.substr(0, eq)] = m.substr(eq + 1);
    }
    if (p.count("dry-run")) {
      out << "would upload " << (*src)->size() << " bytes to " << ref->bucket << "/" << ref->key
          << "\n";
      return kExitOk;
    }
    // A local store's buckets are plain folders: create them on first use.
    if (s.transport == nullptr) {
      Status st = s.store->EnsureBucket(ref->bucket);
      if (!st.ok()) return Fail(err, st);
    }
    auto r = s.store->Upload(ref->bucket, ref->key, **src, u);
    if (!r.ok()) return Fail(err, r.status().WithContext(ref->Shown()));
    out << "uploaded " << r->size << " bytes to " << ref->bucket << "/" << ref->key
        << " etag " << r->etag << "\n";
    return kExitOk;
  }
  auto ref = ParseRef(args[0], s.layout);
  if (!ref.ok()) return Fail(err, ref.status());
  const bool to_stdout = args[1] == "-";
  std::FILE* f = to_stdout ? stdout : std::fopen(args[1].c_str(), "wb");
  if (f == nullptr) {
    return Fail(err, Status::InvalidArgument("cannot create " + args[1]));
  }
  FileSink sink(f);
  auto r = s.store->Get(ref->bucket, ref->key, sink);
  if (!to_stdout) std::fclose(f);
  if (!r.ok()) {
    if (!to_stdout) std::remove(args[1].c_str());
    return Fail(err, r.status().WithContext(ref->Shown()));
  }
  if (!to_stdout) out << "downloaded " << sink.n_ << " bytes to " << args[1] << "\n";
  return kExitOk;
}

int Rm(OpenedStore& s, const std::vector<std::string>& args, const cxxopts::ParseResult& p,
       std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << "grin-jobs storage rm: at least one OBJECT expected\n";
    return kExitUsage;
  }
  std::map<std::string, std::vector<std::string>> by_bucket;
  size_t count = 0;
  for (const auto& a : args) {
    auto ref = ParseRef(a, s.layout);
    if (!ref.ok()) return Fail(err, ref.status());
    if (p.count("recursive")) {
      auto all = s.store->ListAll(ref->bucket, ref->key);
      if (!all.ok()) return Fail(err, all.status());
      for (const auto& o : *all) by_bucket[ref->bucket].push_back(o.key);
      count += all->size();
    } else {
      if (ref->key.empty()) {
        err << "grin-jobs storage rm: " << a << " names no key (use --recursive for a prefix)\n";
        return kExitUsage;
      }
      by_bucket[ref->bucket].push_back(ref->key);
      ++count;
    }
  }
  if (p.count("dry-run")) {
    for (const auto& [b, keys] : by_bucket) {
      for (const auto& k : keys) out << "would delete " << b << "/" << k << "\n";
    }
    out << count << " objects would be deleted\n";
    return kExitOk;
  }
  if (count == 0) {
    out << "nothing to delete\n";
    return kExitOk;
  }
  if (!p.count("yes")) {
    err << "delete " << count << " object(s) from " << s.store->Describe() << "? [y/N] ";
    std::string answer;
    if (!std::getline(std::cin, answer) || (answer != "y" && answer != "yes")) {
      err << "grin-jobs storage rm: not confirmed; nothing deleted\n";
      return kExitFailure;
    }
  }
  size_t failed = 0;
  for (const auto& [b, keys] : by_bucket) {
    auto r = s.store->DeleteMany(b, keys);
    if (!r.ok()) return Fail(err, r.status());
    for (const auto& f : *r) {
      err << "grin-jobs storage rm: " << ObjectRef{b, f.key}.Shown() << ": " << f.status.message()
          << "\n";
    }
    failed += r->size();
  }
  out << "deleted " << (count - failed) << " object(s)\n";
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace

int RunStorage(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs storage", kUsage);
  AddRunOptions(options);
  options.add_options()("storage", "local|s3|r2|minio (default: run config, else local)",
                        cxxopts::value<std::string>())(
      "storage-path", "Base folder for --storage local", cxxopts::value<std::string>())(
      "endpoint-url", "S3 endpoint, e.g. https://<acct>.r2.cloudflarestorage.com",
      cxxopts::value<std::string>())("region", "Signing region (auto for R2)",
                                     cxxopts::value<std::string>())(
      "virtual-host", "Virtual-host addressing (bucket.host) instead of path style")(
      "path-style", "Path-style addressing (host/bucket; the default for r2, minio and IP or "
                    "localhost endpoints, else from ~/.aws/config addressing_style)")(
      "bucket-raw", "Bucket for raw archives", cxxopts::value<std::string>())(
      "bucket-meta", "Bucket for run metadata", cxxopts::value<std::string>())(
      "bucket-full", "Bucket for OCR text", cxxopts::value<std::string>())(
      "prefix", "Key prefix inside the buckets", cxxopts::value<std::string>())(
      "credentials-file", "AWS credentials (INI) or r2_credentials.json",
      cxxopts::value<std::string>())("profile", "Profile in the credentials file",
                                     cxxopts::value<std::string>())(
      "ca-file", "Extra trusted CA bundle (PEM)", cxxopts::value<std::string>())(
      "meta", "cp upload: user metadata NAME=VALUE (repeatable)",
      cxxopts::value<std::vector<std::string>>()->default_value({}))(
      "recursive", "rm: delete every key under the prefix")(
      "yes", "rm: do not ask for confirmation")("dry-run", "cp/rm: only say what would happen")(
      "args", "sub-command and its arguments", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"args"});
  options.positional_help("<ls|head|cp|rm> ARGS");
  OptionRules rules;
  rules.OneOf("storage", {"local", "s3", "r2", "minio"})
      .DirOrAbsent("storage-path")  // the local store creates it
      .ReadableFile("credentials-file")
      .ReadableFile("ca-file")
      .Satisfies("endpoint-url", [](const std::string& url) {
        bool ok = (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0) &&
                  url.find_first_of(" \t\r\n") == std::string::npos;
        return ok ? Status::Ok()
                  : Status::InvalidArgument("--endpoint-url '" + url.substr(0, 200) +
                                            "': use an http:// or https:// URL");
      });
  cxxopts::ParseResult parsed;
  int code = 0;
  if (!ParseArgs(options, args, out, err, &parsed, &code, &rules)) return code;
  std::vector<std::string> rest =
      parsed.count("args") ? parsed["args"].as<std::vector<std::string>>()
                           : std::vector<std::string>();
  if (rest.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string sub = rest[0];
  rest.erase(rest.begin());
  if (sub != "ls" && sub != "head" && sub != "cp" && sub != "rm") {
    err << "grin-jobs storage: unknown sub-command '" << sub << "'\n" << kUsage;
    return kExitUsage;
  }
  auto opened = OpenStore(parsed);
  if (!opened.ok()) return Fail(err, opened.status());
  if (sub == "ls") return Ls(*opened, rest, out, err);
  if (sub == "head") return Head(*opened, rest, out, err);
  if (sub == "cp") return Cp(*opened, rest, parsed, out, err);
  return Rm(*opened, rest, parsed, out, err);
}

}  // namespace grin::cli
