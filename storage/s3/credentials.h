#pragma once
// Credentials for S3-compatible stores, from (first match wins):
//   1. an explicit credentials file: a JSON file in the reference tool's r2_credentials.json
//      format ({"endpoint_url", "access_key", "secret_key", optional "bucket_raw|meta|full"}), or
//      an AWS shared credentials file (INI) read with the given profile;
//   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
//   3. the AWS shared credentials file ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
//      profile = the given one, else $AWS_PROFILE, else "default";
//   4. the AWS config file ($AWS_CONFIG_FILE or ~/.aws/config), the same profile's
//      aws_access_key_id / aws_secret_access_key (as botocore reads them);
//   5. for R2, ~/.config/grin-transfer/r2_credentials.json (the reference tool's location).
// Secrets never appear in a Status message or in Describe().
//
// Thread safety: plain functions; the environment lookup is injected for tests.

#include <functional>
#include <optional>
#include <string>

#include "engine/base/result.h"
#include "storage/s3/sigv4.h"

namespace grin::s3 {

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads the process environment.
EnvLookup ProcessEnv();

struct CredentialRequest {
  std::string credentials_file;  // "" = none given
  std::string profile;           // "" = $AWS_PROFILE or "default"
  bool r2 = false;               // also look at the reference tool's R2 file
};

struct ResolvedCredentials {
  Credentials credentials;
  std::string source;  // "env", "file:<path> [profile]", for messages
  // Extra settings some files carry (R2 JSON): "" when absent.
  std::string endpoint_url;
  std::string region;
  std::string bucket_raw, bucket_meta, bucket_full;
};

Result<ResolvedCredentials> ResolveCredentials(const CredentialRequest& request,
                                               const EnvLookup& env = ProcessEnv());

// Parses one profile of an AWS shared credentials (INI) text. kNotFound if the profile is absent.
Result<ResolvedCredentials> ParseSharedCredentials(const std::string& text,
                                                   const std::string& profile);
// Parses the reference tool's R2 JSON.
Result<ResolvedCredentials> ParseR2CredentialsJson(const std::string& text);

// "key AKIA****MPLE from env": safe to log.
std::string DescribeCredentials(const ResolvedCredentials& c);

}  // namespace grin::s3
