#include "storage/s3/aws_config.h"

#include <sstream>

namespace grin::s3 {
namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

// Strips an inline comment (" #..." or " ;...") as botocore does.
std::string StripComment(const std::string& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if ((v[i] == '#' || v[i] == ';') && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      return Trim(v.substr(0, i));
    }
  }
  return v;
}

}  // namespace

std::string AwsProfileConfig::Value(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? "" : it->second;
}

std::string AwsProfileConfig::S3Value(const std::string& key) const {
  auto it = s3_values.find(key);
  return it == s3_values.end() ? "" : it->second;
}

Result<AwsProfileConfig> ParseAwsConfig(const std::string& text, const std::string& profile) {
  std::istringstream in(text);
  std::string raw;
  bool in_profile = false;
  bool found = false;
  std::string sub;  // the open sub-section ("s3", ...) while indented lines follow it
  AwsProfileConfig out;
  while (std::getline(in, raw)) {
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    bool indented = raw[0] == ' ' || raw[0] == '\t';
    if (line.front() == '[' && line.back() == ']') {
      std::string section = Trim(line.substr(1, line.size() - 2));
      if (section.rfind("profile ", 0) == 0) section = Trim(section.substr(8));
      in_profile = section == profile;
      found = found || in_profile;
      sub.clear();
      continue;
    }
    if (!in_profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = Trim(line.substr(0, eq));
    std::string v = StripComment(Trim(line.substr(eq + 1)));
    if (indented && !sub.empty()) {
      if (sub == "s3") out.s3_values[k] = v;
      continue;
    }
    sub.clear();
    if (v.empty()) {  // "s3 =": a sub-section starts
      sub = k;
      continue;
    }
    out.values[k] = v;
  }
  if (!found) return Status::NotFound("profile '" + profile + "' not in the AWS config file");
  return out;
}

}  // namespace grin::s3
