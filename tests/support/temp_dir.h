#pragma once
// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.

#include <filesystem>
#include <string>

namespace grin::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Reads a whole file; empty string if it cannot be read.
std::string ReadFile(const std::filesystem::path& p);
// Writes (replaces) a whole file.
void WriteFile(const std::filesystem::path& p, const std::string& data);

}  // namespace grin::testing
