// grin-jobs extract FILE.tar.gz[.gpg]... — decrypt (if .gpg) and extract OCR JSONL and MARC
// metadata from archives already on disk, streaming (nothing unpacked). Per file writes
// <OUT>/<BARCODE>_ocr.jsonl.gz and <OUT>/<BARCODE>_metadata.json, both via a temporary name and
// a rename, so a failed book leaves nothing behind. One line per failed file on stderr; exit 1 if
// any failed.

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/credentials_search.h"
#include "cli/log_setup.h"
#include "cli/option_rules.h"
#include "engine/archive/book.h"
#include "engine/archive/ocr.h"
#include "engine/archive/passphrase.h"
#include "engine/base/subprocess.h"

namespace grin::cli {
namespace {

namespace fs = std::filesystem;
using namespace grin::archive;

// "39015012345678.tar.gz.gpg" -> "39015012345678".
std::string BarcodeFromPath(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (const char* ext : {".gpg", ".gz", ".tgz", ".tar"}) {
    size_t n = std::string(ext).size();
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) name.resize(name.size() - n);
  }
  return name;
}

std::string JsonValue(const std::optional<std::string>& v) {
  if (!v) return "null";
  std::string out;
  AppendJsonString(&out, SanitizeUtf8(*v));
  return out;
}

std::string MetadataJson(const std::string& barcode, const std::string& source,
                         const BookResult& r) {
  const Extraction& x = *r.extraction;
  std::string j = "{\n";
  auto field = [&](const std::string& k, const std::string& raw_json) {
    j += "  ";
    AppendJsonString(&j, k);
    j += ": " + raw_json + ",\n";
  };
  field("barcode", JsonValue(barcode));
  field("source_file", JsonValue(source));
  field("encrypted", r.backend == DecryptBackend::kAuto ? "false" : "true");
  field("decryption_backend", r.backend == DecryptBackend::kAuto
                                  ? "null"
                                  : JsonValue(std::string(BackendName(r.backend))));
  field("archive_bytes", std::to_string(r.archive_bytes));
  field("archive_sha256", JsonValue(r.sha256_hex));
  field("archive_md5", JsonValue(r.md5_hex));
  field("page_count", std::to_string(x.page_count));
  field("ocr_pages_present", std::to_string(x.ocr_pages_present));
  field("members", std::to_string(x.members));
  field("mets_member", JsonValue(x.mets_member));
  field("checksums_verified", std::to_string(x.checksums.verified));
  if (x.marc) {
    for (const auto& [k, v] : x.marc->Columns()) field(k, JsonValue(v));
  }
  j += "  \"warnings\": [";
  for (size_t i = 0; i < x.warnings.size(); ++i) {
    j += i ? ", " : "";
    AppendJsonString(&j, SanitizeUtf8(x.warnings[i]));
  }
  j += "]\n}\n";
  return j;
}

Status WriteFileAtomic(const fs::path& path, const std::string& data) {
  fs::path tmp = path;
  tmp += ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Status::ResourceExhausted("cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::Internal("cannot rename " + tmp.string() + ": " + ec.message());
  return Status();
}

Status ExtractOne(const std::string& file, const fs::path& out_dir, DecryptBackend backend,
                  const Secret* passphrase, const std::string& gpg_program) {
  bool encrypted = file.size() > 4 && file.compare(file.size() - 4, 4, ".gpg") == 0;
  if (encrypted && passphrase == nullptr) {
    return Status::NotFound("no passphrase file (use --passphrase-file)");
  }
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::NotFound("cannot open: " + std::string(strerror(errno)));
  std::error_code ec;
  uint64_t size = fs::file_size(file, ec);

  BookOptions o;
  o.barcode = BarcodeFromPath(file);
  o.encrypted = encrypted;
  o.decrypt.backend = backend;
  o.decrypt.gpg_program = gpg_program;
  if (!ec) o.decrypt.size_hint = size;
  GRIN_ASSIGN_OR_RETURN(auto book, BookProcessor::Open(o, passphrase));
  std::vector<uint8_t> buf(1 << 20);
  while (true) {
    ssize_t r = ::read(fd.get(), buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Internal("read: " + std::string(strerror(errno)));
    if (r == 0) break;
    if (!book->Write(buf.data(), static_cast<size_t>(r)).ok()) break;  // Finish() says why
  }
  GRIN_ASSIGN_OR_RETURN(BookResult result, book->Finish());
  fs::path ocr = out_dir / (o.barcode + "_ocr.jsonl.gz");
  fs::path meta = out_dir / (o.barcode + "_metadata.json");
  GRIN_RETURN_IF_ERROR(WriteFileAtomic(ocr, result.extraction->ocr_jsonl_gz));
  Status s = WriteFileAtomic(meta, MetadataJson(o.barcode, file, result));
  if (!s.ok()) fs::remove(ocr, ec);
  return s;
}

}  // namespace

int RunExtract(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  cxxopts::Options options("grin-jobs extract",
                           "Decrypt (if .gpg) and extract OCR text and MARC metadata from GRIN "
                           "archives on disk, without unpacking them.\nWrites "
                           "<BARCODE>_ocr.jsonl.gz and <BARCODE>_metadata.json per file.");
  options.positional_help("FILE.tar.gz[.gpg]...");
  options.add_options()
      ("o,output-dir", "Directory for the outputs", cxxopts::value<std::string>()->default_value("."))
      ("p,passphrase-file", "Passphrase file (default: gpg_passphrase.asc in --credentials-dir, "
       "$GRIN_JOBS_CONFIG_DIR, $GRIN_CREDENTIALS_DIR, ~/.config/grin-jobs, "
       "~/.config/grin-transfer)",
       cxxopts::value<std::string>()->default_value(""))
      ("credentials-dir", "Directory searched first for gpg_passphrase.asc",
       cxxopts::value<std::string>()->default_value(""))
      ("secrets-dir", "The reference tool's name for --credentials-dir",
       cxxopts::value<std::string>()->default_value(""))
      ("backend", "Decryption backend: auto, native, gpg or rnp",
       cxxopts::value<std::string>()->default_value("auto"))
      ("gpg", "gpg program for the gpg backend", cxxopts::value<std::string>()->default_value("gpg"))
      ("h,help", "Show this help")
      ("files", "Archives", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"files"});
  AddLogOptions(options);  // accepted like every command's; extract logs nothing
  OptionRules rules;
  rules.DirOrAbsent("output-dir")
      .ReadableFile("passphrase-file")
      .ExistingDir("credentials-dir")
      .ExistingDir("secrets-dir")
      .OneOf("backend", {"auto", "native", "gpg", "rnp"});
  std::vector<const char*> argv = {"extract"};
  for (const auto& a : args) argv.push_back(a.c_str());
  cxxopts::ParseResult parsed;
  try {
    parsed = options.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const std::exception& e) {
    err << "grin-jobs extract: " << e.what() << "\n" << options.help();
    return kExitUsage;
  }
  if (parsed.count("help")) {
    out << options.help();
    return kExitOk;
  }
  if (Status s = rules.Check(parsed); !s.ok() || !(s = CheckLogOptions(parsed)).ok()) {
    err << "grin-jobs extract: " << s.message() << "\n";
    return kExitUsage;
  }
  if (!parsed.count("files")) {
    err << "grin-jobs extract: no archive given\n" << options.help();
    return kExitUsage;
  }
  auto backend = ParseBackend(parsed["backend"].as<std::string>());
  if (!backend.ok()) {
    err << "grin-jobs extract: " << backend.status().message() << "\n";
    return kExitUsage;
  }
  const auto files = parsed["files"].as<std::vector<std::string>>();
  fs::path out_dir = parsed["output-dir"].as<std::string>();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    err << "grin-jobs extract: cannot create " << out_dir.string() << ": " << ec.message() << "\n";
    return kExitFailure;
  }

  // The passphrase is needed only for .gpg inputs; look it up once.
  std::optional<Secret> passphrase;
  Status pass_status;
  bool any_encrypted = false;
  for (const auto& f : files) any_encrypted |= f.size() > 4 && f.substr(f.size() - 4) == ".gpg";
  if (any_encrypted) {
    std::string dir = parsed["credentials-dir"].as<std::string>();
    if (dir.empty()) dir = parsed["secrets-dir"].as<std::string>();
    auto path = CredentialsSearch(dir, nullptr)
                    .FindPassphrase(parsed["passphrase-file"].as<std::string>());
    if (path.ok()) {
      auto secret = ReadPassphraseFile(path->path);
      if (secret.ok()) {
        passphrase = std::move(secret).value();
      } else {
        pass_status = secret.status();
      }
    } else {
      pass_status = path.status();
    }
    if (!pass_status.ok()) {
      err << "grin-jobs extract: " << pass_status.message() << "\n";
      return kExitFailure;
    }
  }

  int failed = 0;
  for (const auto& f : files) {
    Status s = ExtractOne(f, out_dir, *backend, passphrase ? &*passphrase : nullptr,
                          parsed["gpg"].as<std::string>());
    if (s.ok()) {
      out << f << ": ok\n";
    } else {
      ++failed;
      err << f << ": " << s.message() << "\n";
    }
  }
  return failed ? kExitFailure : kExitOk;
}

}  // namespace grin::cli
