#include "storage/s3/credentials.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace grin::s3 {

namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status CheckComplete(const ResolvedCredentials& c, const std::string& where) {
  if (c.credentials.access_key_id.empty() || c.credentials.secret_access_key.empty()) {
    return Status::InvalidArgument(where + ": access key id or secret missing");
  }
  return Status::Ok();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<ResolvedCredentials> ParseSharedCredentials(const std::string& text,
                                                   const std::string& profile) {
  std::istringstream in(text);
  std::string line;
  std::string section;
  bool found = false;
  ResolvedCredentials out;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = Trim(line.substr(1, line.size() - 2));
      // ~/.aws/config spells non-default sections "profile NAME"; accept both.
      if (section.rfind("profile ", 0) == 0) section = Trim(section.substr(8));
      if (section == profile) found = true;
      continue;
    }
    if (section != profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = Trim(line.substr(0, eq));
    std::string v = Trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") out.credentials.access_key_id = v;
    else if (k == "aws_secret_access_key") out.credentials.secret_access_key = v;
    else if (k == "aws_session_token") out.credentials.session_token = v;
    else if (k == "region") out.region = v;
    else if (k == "endpoint_url") out.endpoint_url = v;
  }
  if (!found) return Status::NotFound("profile '" + profile + "' not in credentials file");
  GRIN_RETURN_IF_ERROR(CheckComplete(out, "profile '" + profile + "'"));
  return out;
}

Result<ResolvedCredentials> ParseR2CredentialsJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("credentials JSON is not an object");
  }
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ResolvedCredentials out;
  out.credentials.access_key_id = str("access_key");
  if (out.credentials.access_key_id.empty()) out.credentials.access_key_id = str("access_key_id");
  out.credentials.secret_access_key = str("secret_key");
  if (out.credentials.secret_access_key.empty()) {
    out.credentials.secret_access_key = str("secret_access_key");
  }
  out.credentials.session_token = str("session_token");
  out.endpoint_url = str("endpoint_url");
  out.region = str("region");
  out.bucket_raw = str("bucket_raw");
  out.bucket_meta = str("bucket_meta");
  out.bucket_full = str("bucket_full");
  GRIN_RETURN_IF_ERROR(CheckComplete(out, "credentials JSON"));
  return out;
}

Result<ResolvedCredentials> ResolveCredentials(const CredentialRequest& request,
                                               const EnvLookup& env) {
  std::string profile = request.profile;
  if (profile.empty()) profile = env("AWS_PROFILE").value_or("default");

  auto from_file = [&](const std::string& path, bool json_ok) -> Result<ResolvedCredentials> {
    auto text = ReadWholeFile(path);
    if (!text) return Status::NotFound("cannot read credentials file " + path);
    std::string t = Trim(*text);
    Result<ResolvedCredentials> r =
        json_ok && !t.empty() && t[0] == '{'
            ? ParseR2CredentialsJson(t)
            : ParseSharedCredentials(*text, profile);
    if (!r.ok()) return r.status().WithContext(path);
    r->source = "file:" + path + (t[0] == '{' ? "" : " [" + profile + "]");
    return r;
  };

  if (!request.credentials_file.empty()) return from_file(request.credentials_file, true);

  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret && !id->empty() && !secret->empty() && request.profile.empty()) {
    ResolvedCredentials out;
    out.credentials = {*id, *secret, env("AWS_SESSION_TOKEN").value_or("")};
    out.source = "env";
    return out;
  }

  std::string shared = env("AWS_SHARED_CREDENTIALS_FILE").value_or("");
  auto home = env("HOME");
  if (shared.empty() && home) shared = *home + "/.aws/credentials";
  Status shared_error;  // the credentials file exists but lacks the profile
  if (!shared.empty()) {
    auto r = from_file(shared, false);
    if (r.ok()) return r;
    // The file exists and holds the profile, but without both keys: say so.
    if (r.status().code() != StatusCode::kNotFound && !request.r2) return r;
    if (r.status().message().find("cannot read") == std::string::npos) shared_error = r.status();
  }
  // botocore also reads keys from the config file's profile.
  std::string config = env("AWS_CONFIG_FILE").value_or("");
  if (config.empty() && home) config = *home + "/.aws/config";
  if (!config.empty()) {
    auto r = from_file(config, false);
    if (r.ok()) {
      r->endpoint_url.clear();  // the config file's settings are resolved by the caller
      r->region.clear();
      return r;
    }
  }
  if (request.r2 && home) {
    auto r = from_file(*home + "/.config/grin-transfer/r2_credentials.json", true);
    if (r.ok()) return r;
  }
  if (!shared_error.ok() && !request.r2) return shared_error;
  return Status::NotFound(
      "no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, pass --credentials-file, "
      "or create ~/.aws/credentials");
}

std::string DescribeCredentials(const ResolvedCredentials& c) {
  const std::string& id = c.credentials.access_key_id;
  std::string shown = id.size() <= 8 ? std::string(id.size(), '*')
                                     : id.substr(0, 4) + "****" + id.substr(id.size() - 4);
  return "key " + shown + " from " + c.source;
}

}  // namespace grin::s3
