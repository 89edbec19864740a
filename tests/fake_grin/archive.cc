#include "tests/fake_grin/archive.h"

#include "tests/fake_grin/native_encrypt.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "engine/base/subprocess.h"

namespace grin::fake {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashStr(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string RandomBytes(uint64_t seed, size_t n) {
  std::string out(n, '\0');
  uint64_t s = seed;
  for (size_t i = 0; i < n; i += 8) {
    s = Mix(s);
    size_t k = std::min<size_t>(8, n - i);
    std::memcpy(out.data() + i, &s, k);
  }
  return out;
}

std::string XmlEscape(std::string_view in) {
  std::string out;
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Md5Hex(const std::string& data) { return HexEncode(Md5(data)); }

void TarAppend(std::string* tar, const std::string& name, const std::string& data) {
  char h[512];
  std::memset(h, 0, sizeof h);
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 1'500'000'000u);
  std::memset(h + 148, ' ', 8);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::snprintf(h + 265, 32, "google");
  std::snprintf(h + 297, 32, "google");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  tar->append(h, sizeof h);
  tar->append(data);
  tar->append((512 - data.size() % 512) % 512, '\0');
}

std::string Gzip(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Mets(const ArchiveSpec& spec) {
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<METS:mets xmlns:METS=\"http://www.loc.gov/METS/\" "
       "xmlns:gbs=\"http://books.google.com/gbs\" xmlns:PREMIS=\"info:lc/xmlns/premis-v2\" "
       "xmlns:xlink=\"http://www.w3.org/1999/xlink\" OBJID=\""
    << spec.barcode << "\" PROFILE=\"gbs\">\n"
    << " <METS:dmdSec ID=\"DMD1\"><METS:mdWrap MDTYPE=\"MARC\"><METS:xmlData>\n"
    << "  <slim:record xmlns:slim=\"http://www.loc.gov/MARC21/slim\">\n"
    << "   <slim:leader>00000nam a2200000 a 4500</slim:leader>\n"
    << "   <slim:controlfield tag=\"001\">" << spec.barcode.substr(5) << "</slim:controlfield>\n"
    << "   <slim:controlfield tag=\"008\">880101s1888    enk           000 0 eng d"
    << "</slim:controlfield>\n"
    << "   <slim:datafield tag=\"245\" ind1=\"1\" ind2=\"0\"><slim:subfield code=\"a\">"
    << XmlEscape(spec.title) << "</slim:subfield></slim:datafield>\n"
    << "  </slim:record>\n </METS:xmlData></METS:mdWrap></METS:dmdSec>\n"
    << " <METS:fileSec>\n";
  const char* groups[][2] = {{"image", "jp2"}, {"OCR", "txt"}, {"coordOCR", "html"}};
  for (auto& g : groups) {
    x << "  <METS:fileGrp USE=\"" << g[0] << "\">\n";
    for (int p = 1; p <= spec.pages; ++p) {
      char name[32];
      std::snprintf(name, sizeof name, "%08d.%s", p, g[1]);
      x << "   <METS:file ID=\"" << g[1] << p << "\"><METS:FLocat LOCTYPE=\"OTHER\" "
        << "xlink:href=\"" << name << "\"/></METS:file>\n";
    }
    x << "  </METS:fileGrp>\n";
  }
  x << " </METS:fileSec>\n <METS:structMap><METS:div TYPE=\"volume\">\n";
  for (int p = 1; p <= spec.pages; ++p) {
    x << "  <METS:div TYPE=\"page\" ORDER=\"" << p << "\" LABEL=\"" << p << "\">"
      << "<METS:fptr FILEID=\"jp2" << p << "\"/></METS:div>\n";
  }
  x << " </METS:div></METS:structMap>\n</METS:mets>\n";
  return x.str();
}

}  // namespace

std::string BuildTarGz(const ArchiveSpec& spec, const ArchiveParams& params, uint64_t seed) {
  uint64_t base = Mix(seed ^ HashStr(spec.dir) ^ HashStr(spec.barcode) ^ spec.version);
  std::vector<std::pair<std::string, std::string>> members;
  members.emplace_back(spec.dir + "_" + spec.barcode + ".xml", Mets(spec));
  static const char kJp2Sig[] = "\x00\x00\x00\x0cjP  \r\n\x87\n";
  for (int p = 1; p <= spec.pages; ++p) {
    char stem[16];
    std::snprintf(stem, sizeof stem, "%08d", p);
    std::string jp2(kJp2Sig, 12);
    jp2 += RandomBytes(base + static_cast<uint64_t>(p), static_cast<size_t>(params.image_bytes));
    members.emplace_back(std::string(stem) + ".jp2", std::move(jp2));
    std::string text = "Page " + std::to_string(p) + " of " + spec.barcode + " — “" + spec.title +
                       "”. Ünïcödé façade naïve Łódź 東京.\n";
    members.emplace_back(std::string(stem) + ".txt", text);
    std::string hocr =
        "<html><body><div class=\"ocr_page\" title=\"bbox 0 0 1000 1500\"><span "
        "class=\"ocr_line\" title=\"bbox 10 10 990 40\"><span class=\"ocrx_word\" title=\"bbox 10 "
        "10 90 40; x_wconf 93\">Page</span> <span class=\"ocrx_word\" title=\"bbox 100 10 150 40; "
        "x_wconf 91\">" +
        std::to_string(p) + "</span></span></div></body></html>\n";
    members.emplace_back(std::string(stem) + ".html", std::move(hocr));
  }
  std::string md5;
  for (const auto& [name, data] : members) md5 += Md5Hex(data) + "  " + name + "\n";
  std::string tar;
  TarAppend(&tar, "checksum.md5", md5);
  for (const auto& [name, data] : members) TarAppend(&tar, name, data);
  tar.append(1024, '\0');
  return Gzip(tar);
}

Status GpgEncrypt(const ArchiveParams& params, const std::string& homedir,
                  const std::string& passphrase, const std::string& plaintext,
                  const std::string& out_path) {
  const std::string in_path = out_path + ".plain";
  {
    std::ofstream f(in_path, std::ios::binary | std::ios::trunc);
    f << plaintext;
    if (!f) return Status::Internal("cannot write " + in_path);
  }
  std::vector<std::string> args = {params.gpg_program,
                                   "--homedir", homedir,
                                   "--batch", "--no-tty", "--quiet", "--yes",
                                   "--pinentry-mode", "loopback",
                                   "--passphrase-fd", "3",
                                   "--no-symkey-cache",
                                   "--symmetric",
                                   "--cipher-algo", params.cipher,
                                   "--compress-algo", params.compress,
                                   "--s2k-mode", "3",
                                   "--s2k-digest-algo", params.s2k_digest,
                                   "--s2k-count", std::to_string(params.s2k_count),
                                   "--output", out_path, in_path};
  // The passphrase goes to gpg on descriptor 3 (--passphrase-fd 3), never on its command line.
  auto run = RunAndCapture(args, InheritedEnv({}), passphrase, /*input_fd=*/3);
  std::error_code ec;
  std::filesystem::remove(in_path, ec);
  if (!run.ok()) {
    return Status::Internal("cannot start " + params.gpg_program + ": " + run.status().message());
  }
  if (!run->exited_zero()) {
    std::string err = run->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    return Status::Internal("gpg --symmetric failed: " + err);
  }
  return Status::Ok();
}

ArchiveStore::ArchiveStore(std::string cache_dir, ArchiveParams params, uint64_t seed,
                           int64_t memory_budget)
    : cache_dir_(std::move(cache_dir)),
      params_(std::move(params)),
      seed_(seed),
      memory_budget_(memory_budget) {
  std::error_code ec;
  std::filesystem::create_directories(cache_dir_, ec);
  homedir_ = cache_dir_ + "/gnupg-home";
  std::filesystem::create_directories(homedir_, ec);
  chmod(homedir_.c_str(), 0700);
}

int64_t ArchiveStore::encryptions() const {
  std::lock_guard<std::mutex> l(mu_);
  return encryptions_;
}

Result<std::shared_ptr<const std::string>> ArchiveStore::Get(const ArchiveSpec& spec,
                                                             const std::string& passphrase) {
  // The key names everything that changes the bytes, so a cache dir can hold several matrices.
  const std::string params_key = params_.cipher + "-" + params_.compress + "-" +
                                 params_.s2k_digest + "-" + std::to_string(params_.s2k_count) +
                                 "-img" + std::to_string(params_.image_bytes) + "-seed" +
                                 std::to_string(seed_) + "-pw" +
                                 std::to_string(HashStr(passphrase) % 1000000) +
                                 (params_.encryptor == "gpg" ? "" : "-" + params_.encryptor);
  const std::string rel = params_key + "/" + spec.dir + "/" + spec.barcode + ".v" +
                          std::to_string(spec.version) + ".p" + std::to_string(spec.pages) + ".gpg";
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = memory_.find(rel);
    if (it != memory_.end()) return it->second;
  }
  const std::string path = cache_dir_ + "/" + rel;
  std::error_code ec;
  {
    // Only generation is one at a time; reading a cached file is not (concurrent GETs of
    // cached archives must not queue behind each other's reads: that inflated the time to
    // first byte with the number of downloads in flight).
    std::lock_guard<std::mutex> gen(gen_mu_);
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = memory_.find(rel);
      if (it != memory_.end()) return it->second;
    }
    if (!std::filesystem::exists(path, ec)) {
      std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
      const std::string tmp = path + ".tmp" + std::to_string(getpid());
      if (params_.encryptor == "native") {
        GRIN_ASSIGN_OR_RETURN(std::string enc, NativeEncrypt(params_, passphrase,
                                                             BuildTarGz(spec, params_, seed_)));
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << enc;
        if (!f.flush()) return Status::Internal("cannot write " + tmp);
      } else if (params_.encryptor == "gpg") {
        GRIN_RETURN_IF_ERROR(GpgEncrypt(params_, homedir_, passphrase,
                                        BuildTarGz(spec, params_, seed_), tmp));
      } else {
        return Status::InvalidArgument("unknown archive encryptor " + params_.encryptor +
                                       " (gpg or native)");
      }
      std::filesystem::rename(tmp, path, ec);  // atomic: a reader never sees half a file
      if (ec) return Status::Internal("cannot rename " + tmp + ": " + ec.message());
      std::lock_guard<std::mutex> l(mu_);
      ++encryptions_;
    }
  }
  auto bytes = std::make_shared<std::string>();
  {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Internal("cannot open cached archive " + path);
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      bytes->resize(static_cast<size_t>(st.st_size));
      size_t got = 0;
      while (got < bytes->size()) {
        const ssize_t n = read(fd, bytes->data() + got, bytes->size() - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      bytes->resize(got);
    }
    close(fd);
  }
  if (bytes->empty()) return Status::Internal("empty cached archive " + path);
  std::shared_ptr<const std::string> out = std::move(bytes);
  std::lock_guard<std::mutex> l(mu_);
  if (memory_bytes_ + static_cast<int64_t>(out->size()) > memory_budget_) {
    memory_.clear();
    memory_bytes_ = 0;
  }
  memory_[rel] = out;
  memory_bytes_ += static_cast<int64_t>(out->size());
  return out;
}

std::string SizeOnlyHeader(uint64_t total_size, uint64_t seed) {
  std::string h;
  // SKESK v4: new-format tag 3, length 13: version 4, cipher 9 (AES-256), S2K type 3, hash 8
  // (SHA-256), 8 salt bytes, coded count 96 (65,536).
  h += static_cast<char>(0xC3);
  h += static_cast<char>(13);
  h += '\x04';
  h += '\x09';
  h += '\x03';
  h += '\x08';
  h += RandomBytes(seed, 8);
  h += static_cast<char>(96);
  // SEIPD: new-format tag 18 with a five-octet length covering the rest of the message.
  const uint64_t body = total_size - h.size() - 6;
  h += static_cast<char>(0xD2);
  h += static_cast<char>(0xFF);
  for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((body >> s) & 0xFF);
  h += '\x01';  // SEIPD version 1
  return h;
}

}  // namespace grin::fake
