#include "tests/archive/fixtures.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "engine/base/digest.h"
#include "engine/base/encoding.h"
#include "engine/base/subprocess.h"
#include "engine/base/fn_deleter.h"

namespace grin::archive::testing {
namespace {

using ArchiveWrite = std::unique_ptr<struct archive, FnDeleter<archive_write_free>>;
using Entry = std::unique_ptr<archive_entry, FnDeleter<archive_entry_free>>;

la_ssize_t WriteCb(struct archive*, void* ctx, const void* buf, size_t n) {
  auto* sink = static_cast<ByteSink*>(ctx);
  if (!sink->Write(static_cast<const uint8_t*>(buf), n).ok()) return -1;
  return static_cast<la_ssize_t>(n);
}

std::string Md5Hex(const std::string& data) {
  Hasher m(Hasher::Kind::kMd5);
  m.Update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return m.FinalHex();
}

std::string Page8(uint32_t n, const char* ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08u.%s", n, ext);
  return buf;
}

}  // namespace

Status WriteTarGz(const std::vector<Member>& members, ByteSink* sink, int level) {
  ArchiveWrite a(archive_write_new());
  archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  std::string lvl = std::to_string(level);
  if (archive_write_set_filter_option(a.get(), "gzip", "compression-level", lvl.c_str()) !=
      ARCHIVE_OK) {
    return Status::Internal("gzip level");
  }
  if (archive_write_open(a.get(), sink, nullptr, &WriteCb, nullptr) != ARCHIVE_OK) {
    return Status::Internal(archive_error_string(a.get()));
  }
  for (const Member& m : members) {
    Entry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), m.name.c_str());
    archive_entry_set_mtime(e.get(), 1700000000, 0);
    archive_entry_set_perm(e.get(), 0644);
    switch (m.type) {
      case Member::kFile:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.data.size()));
        break;
      case Member::kDir:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        archive_entry_set_perm(e.get(), 0755);
        break;
      case Member::kSymlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), m.link.c_str());
        break;
      case Member::kHardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), m.link.c_str());
        break;
      case Member::kCharDevice:
        archive_entry_set_filetype(e.get(), AE_IFCHR);
        archive_entry_set_rdev(e.get(), makedev(1, 3));
        break;
      case Member::kFifo:
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        break;
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      return Status::Internal(std::string("write_header: ") + archive_error_string(a.get()));
    }
    if (m.type == Member::kFile && !m.data.empty()) {
      if (archive_write_data(a.get(), m.data.data(), m.data.size()) !=
          static_cast<la_ssize_t>(m.data.size())) {
        return Status::Internal("write_data");
      }
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Status::Internal("write_close");
  return Status();
}

std::string TarGz(const std::vector<Member>& members, int level) {
  StringSink s;
  Status st = WriteTarGz(members, &s, level);
  if (!st.ok()) std::abort();
  return std::move(s.data());
}

void FillRandom(uint64_t seed, uint8_t* out, size_t n) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out + i, &x, 8);
  }
  for (; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<uint8_t>(x);
  }
}

std::string PageText(uint32_t page) {
  std::string t = "Page " + std::to_string(page) + " \xE2\x80\x94 \"Gr\xC3\xBC\xC3\x9F" +
                  "e\" aus M\xC3\xBCnchen \\ caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\t" +
                  "tab\nsecond line\r\nthird \x01 ctrl \xF0\x9F\x93\x96\n";
  if (page % 4 == 0) t += "bad bytes: \xFF\xC3 end \xE2\x82\n";
  return t;
}

std::string MetsXml(const std::string& dir, const std::string& barcode) {
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<METS:mets xmlns:METS="http://www.loc.gov/METS/" xmlns:gbs="http://books.google.com/gbs"
    xmlns:slim="http://www.loc.gov/MARC21/slim" xmlns:xlink="http://www.w3.org/1999/xlink"
    PROFILE="gbs" OBJID=")" + barcode + R"(" LABEL=")" + dir + R"(">
  <METS:metsHdr CREATEDATE="2014-03-01T00:00:00"/>
  <METS:dmdSec ID="DMD1">
    <METS:mdWrap MDTYPE="MARC">
      <METS:xmlData>
        <slim:record>
          <slim:leader>01234nam a2200301 a 4500</slim:leader>
          <slim:controlfield tag="001">  ocm12345678 </slim:controlfield>
          <slim:controlfield tag="008">850101m19991999nyu           000 0 eng d</slim:controlfield>
          <slim:datafield tag="010" ind1=" " ind2=" "><slim:subfield code="a">  85012345 </slim:subfield></slim:datafield>
          <slim:datafield tag="020" ind1=" " ind2=" "><slim:subfield code="a">0123456789</slim:subfield></slim:datafield>
          <slim:datafield tag="020" ind1=" " ind2=" "><slim:subfield code="a">9780123456786</slim:subfield></slim:datafield>
          <slim:datafield tag="035" ind1=" " ind2=" "><slim:subfield code="a">(OCoLC)12345678</slim:subfield></slim:datafield>
          <slim:datafield tag="035" ind1=" " ind2=" "><slim:subfield code="a">(MiU)990012345</slim:subfield></slim:datafield>
          <slim:datafield tag="035" ind1=" " ind2=" "><slim:subfield code="a">(OCoLC)ocm87654321</slim:subfield></slim:datafield>
          <slim:datafield tag="050" ind1="0" ind2="0"><slim:subfield code="a">QA76.73</slim:subfield><slim:subfield code="b">.P98</slim:subfield></slim:datafield>
          <slim:datafield tag="100" ind1="1" ind2=" "><slim:subfield code="a">M&#252;ller, Hans,</slim:subfield><slim:subfield code="d">1900-1980.</slim:subfield></slim:datafield>
          <slim:datafield tag="110" ind1="2" ind2=" "><slim:subfield code="a">Acme &amp; Sons</slim:subfield></slim:datafield>
          <slim:datafield tag="245" ind1="1" ind2="0"><slim:subfield code="a">Die Geschichte :</slim:subfield><slim:subfield code="b">ein Versuch /</slim:subfield></slim:datafield>
          <slim:datafield tag="500" ind1=" " ind2=" "><slim:subfield code="a">Includes index.</slim:subfield></slim:datafield>
          <slim:datafield tag="500" ind1=" " ind2=" "><slim:subfield code="a">Bibliography: p. 300.</slim:subfield></slim:datafield>
          <slim:datafield tag="650" ind1=" " ind2="0"><slim:subfield code="a">History.</slim:subfield></slim:datafield>
          <slim:datafield tag="650" ind1=" " ind2="0"><slim:subfield code="a">Germany...</slim:subfield></slim:datafield>
          <slim:datafield tag="655" ind1=" " ind2="7"><slim:subfield code="a">Essays.</slim:subfield></slim:datafield>
        </slim:record>
      </METS:xmlData>
    </METS:mdWrap>
  </METS:dmdSec>
  <METS:fileSec>
    <METS:fileGrp USE="image"/>
    <METS:fileGrp USE="OCR"/>
  </METS:fileSec>
  <METS:structMap><METS:div TYPE="volume"/></METS:structMap>
</METS:mets>
)";
}

std::vector<Member> BookMembers(const BookSpec& spec) {
  std::vector<Member> pages;
  for (uint32_t p = 1; p <= spec.pages; ++p) {
    Member img{Page8(p, "jp2"), std::string(spec.image_bytes, '\0')};
    FillRandom(p, reinterpret_cast<uint8_t*>(img.data.data()), img.data.size());
    if (spec.jp2_like_images) {
      std::string mask(img.data.size(), '\0');
      FillRandom(p + 1000003, reinterpret_cast<uint8_t*>(mask.data()), mask.size());
      for (size_t i = 0; i < mask.size(); ++i) img.data[i] &= static_cast<char>(mask[i] | 0x3f);
    }
    pages.push_back(std::move(img));
    if (!spec.missing_text.count(p)) pages.push_back({Page8(p, "txt"), PageText(p)});
    pages.push_back({Page8(p, "html"),
                     "<html><body><div class='ocr_page' title='bbox 0 0 100 100'><span "
                     "class='ocrx_word' title='bbox 1 1 9 9; x_wconf 90'>p" +
                         std::to_string(p) + "</span></div></body></html>\n"});
  }
  std::vector<Member> body;
  if (spec.mets) body.push_back({spec.dir + "_" + spec.barcode + ".xml", MetsXml(spec.dir, spec.barcode)});
  for (auto& m : pages) body.push_back(std::move(m));
  for (const auto& m : spec.extra) body.push_back(m);
  std::vector<Member> out;
  if (spec.checksum) {
    std::string sums;
    for (const auto& m : body) {
      if (m.type == Member::kFile) sums += Md5Hex(m.data) + "  " + m.name + "\n";
    }
    out.push_back({"checksum.md5", sums});
  }
  for (auto& m : body) out.push_back(std::move(m));
  if (spec.reverse_order) std::reverse(out.begin(), out.end());
  return out;
}

std::string BookTarGz(const BookSpec& spec) { return TarGz(BookMembers(spec)); }

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const std::string& stdin_data, const std::string& fd3_data) {
  std::vector<ChildPipe> pipes = {{0, PipeDir::kChildReads},
                                  {1, PipeDir::kChildWrites},
                                  {2, PipeDir::kChildWrites}};
  if (!fd3_data.empty()) pipes.push_back({3, PipeDir::kChildReads});
  GRIN_ASSIGN_OR_RETURN(Subprocess child, Subprocess::Spawn(argv, MinimalEnv({"GPG_TTY="}), pipes));
  auto& fds = child.parent_fds();
  ScopedSigpipeBlock no_sigpipe;
  if (!fd3_data.empty()) {
    GRIN_RETURN_IF_ERROR(WriteAll(fds[3].get(), fd3_data.data(), fd3_data.size()));
    fds[3].Reset();
  }
  ProcessResult res;
  size_t written = 0;
  if (stdin_data.empty()) fds[0].Reset();
  std::vector<char> buf(1 << 16);
  while (fds[1].valid() || fds[2].valid()) {
    std::array<pollfd, 3> p{};
    int n = 0;
    int in_i = -1, out_i = -1, err_i = -1;
    if (fds[0].valid()) { in_i = n; p[n++] = {fds[0].get(), POLLOUT, 0}; }
    if (fds[1].valid()) { out_i = n; p[n++] = {fds[1].get(), POLLIN, 0}; }
    if (fds[2].valid()) { err_i = n; p[n++] = {fds[2].get(), POLLIN, 0}; }
    if (::poll(p.data(), static_cast<nfds_t>(n), -1) < 0 && errno != EINTR) break;
    if (in_i >= 0 && p[in_i].revents) {
      ssize_t w = ::write(fds[0].get(), stdin_data.data() + written,
                          std::min<size_t>(stdin_data.size() - written, 1 << 16));
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) fds[0].Reset();
      if (written == stdin_data.size()) fds[0].Reset();
    }
    for (auto [idx, fdn, dst] : {std::tuple{out_i, 1, &res.out}, std::tuple{err_i, 2, &res.err}}) {
      if (idx < 0 || !p[idx].revents) continue;
      ssize_t r = ::read(fds[fdn].get(), buf.data(), buf.size());
      if (r > 0) dst->append(buf.data(), static_cast<size_t>(r));
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) fds[fdn].Reset();
    }
  }
  fds[0].Reset();
  GRIN_ASSIGN_OR_RETURN(int ws, child.Wait());
  res.exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return res;
}

std::string TestGnupgHome() {
  static std::once_flag once;
  static std::string home;
  std::call_once(once, [] {
    std::string tmpl = "/tmp/grin-test-gnupg-XXXXXX";
    if (::mkdtemp(tmpl.data())) home = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(home, ec);
    });
  });
  return home;
}

Result<std::string> GpgEncrypt(const std::string& plaintext, const GpgParams& p,
                               const std::string& passphrase) {
  std::vector<std::string> argv = {"gpg", "--homedir", TestGnupgHome(), "--batch", "--no-tty",
                                   "--quiet", "--no-options", "--no-symkey-cache",
                                   "--compress-algo", p.compress};
  if (p.store_only) {
    argv.push_back("--store");
  } else {
    argv.insert(argv.end(), {"--pinentry-mode", "loopback", "--passphrase-fd", "3",
                             "--symmetric", "--cipher-algo", p.cipher, "--s2k-mode",
                             std::to_string(p.s2k_mode), "--s2k-digest-algo", p.s2k_digest,
                             "--s2k-count", std::to_string(p.s2k_count)});
    if (p.rfc2440) argv.push_back("--rfc2440");
  }
  argv.insert(argv.end(), {"--output", "-"});
  GRIN_ASSIGN_OR_RETURN(ProcessResult r,
                        RunProcess(argv, plaintext, p.store_only ? "" : passphrase + "\n"));
  if (r.exit_code != 0) return Status::Internal("gpg encrypt failed: " + r.err);
  return r.out;
}

Result<std::string> CachedGpgEncrypt(const std::string& plaintext, const GpgParams& p) {
  // Under the build dir: $GRIN_BINARY_DIR if ctest passed it, else beside the test binary.
  const char* bin = std::getenv("GRIN_BINARY_DIR");
  std::error_code ec;
  std::filesystem::path exe_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  std::string dir = (bin && *bin ? std::string(bin) : ec ? std::string("/tmp") : exe_dir.string()) +
                    "/archive-fixtures";
  std::filesystem::create_directories(dir);
  std::string key = Sha256Hex(plaintext).substr(0, 24) + "_" + p.cipher + "_" + p.compress +
                    "_" + std::to_string(p.s2k_count) + (p.rfc2440 ? "_sed" : "") +
                    (p.s2k_mode != 3 ? "_mode" + std::to_string(p.s2k_mode) : "") +
                    (p.s2k_digest != "SHA1" ? "_" + p.s2k_digest : "") +
                    (p.store_only ? "_store" : "") + ".gpg";
  std::string path = dir + "/" + key;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
  }
  GRIN_ASSIGN_OR_RETURN(std::string ct, GpgEncrypt(plaintext, p));
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out << ct;
  }
  std::filesystem::rename(tmp, path);
  return ct;
}

Result<std::string> GpgDecrypt(const std::string& ciphertext, const std::string& passphrase) {
  GRIN_ASSIGN_OR_RETURN(
      ProcessResult r,
      RunProcess({"gpg", "--homedir", TestGnupgHome(), "--batch", "--no-tty", "--quiet",
                  "--no-options", "--no-symkey-cache", "--pinentry-mode", "loopback",
                  "--passphrase-fd", "3", "--decrypt"},
                 ciphertext, passphrase + "\n"));
  if (r.exit_code != 0) return Status::DataLoss("gpg --decrypt failed: " + r.err);
  return r.out;
}

namespace {
int64_t StatusField(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atoll(line.c_str() + std::strlen(field));
  }
  return -1;
}
}  // namespace

int64_t VmRssKiB() { return StatusField("VmRSS:"); }
int64_t VmHwmKiB() { return StatusField("VmHWM:"); }

std::string Sha256Hex(const std::string& data) {
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), md);
  return HexEncode(md, sizeof md);
}

}  // namespace grin::archive::testing
