#pragma once
// The AWS shared config file (~/.aws/config, or $AWS_CONFIG_FILE), read as botocore reads it:
// sections "[default]" and "[profile NAME]" ("[NAME]" is accepted too), "key = value" lines,
// and nested sub-sections such as
//
//   [profile minio]
//   region = us-east-1
//   endpoint_url = https://minio.example.org
//   ca_bundle = /etc/ssl/minio-ca.pem
//   s3 =
//     addressing_style = path
//     endpoint_url = https://s3.minio.example.org
//
// where the indented lines after "s3 =" belong to the "s3" sub-section. Other sections
// ([sso-session ...], [services ...]) are skipped.
//
// Thread safety: plain functions.

#include <map>
#include <string>

#include "engine/base/result.h"

namespace grin::s3 {

struct AwsProfileConfig {
  std::map<std::string, std::string> values;     // top-level keys of the profile
  std::map<std::string, std::string> s3_values;  // keys of its "s3 =" sub-section
  // "" when absent.
  std::string Value(const std::string& key) const;
  std::string S3Value(const std::string& key) const;
};

// Parses one profile of a config text. kNotFound if the profile has no section.
Result<AwsProfileConfig> ParseAwsConfig(const std::string& text, const std::string& profile);

}  // namespace grin::s3
