#include "engine/archive/extractor.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

#include <set>
#include <thread>

#include "engine/archive/bounded_pipe.h"
#include "engine/base/digest.h"
#include "engine/archive/gzip_inflater.h"
#include "engine/archive/ocr.h"
#include "engine/base/fn_deleter.h"

namespace grin::archive {
namespace {

using ArchiveRead = std::unique_ptr<struct archive, FnDeleter<archive_read_free>>;

constexpr size_t kPipeCapacity = 1 << 20;
constexpr size_t kReadBuffer = 256 * 1024;

std::string Fmt(uint64_t n) { return std::to_string(n); }

// Normalises a member name ("./a//b" -> "a/b"); refuses absolute names and ".." components.
Result<std::string> CheckMemberName(const char* raw) {
  if (raw == nullptr || *raw == '\0') return Status::DataLoss("member with an empty name");
  std::string_view name(raw);
  if (name.front() == '/') return Status::DataLoss("member with an absolute path: " + std::string(name));
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part == "..") {
      return Status::DataLoss("member name escapes the archive (..): " + std::string(name));
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  if (out.empty()) return Status::DataLoss("member with an empty name: " + std::string(name));
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsAlnum(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      return false;
    }
  }
  return true;
}

// `<DIR>_<BARCODE>.xml` (docs/grin-protocol.md, Archive contents). A barcode that already carries its DIR_ prefix
// matches `<BARCODE>.xml` too.
bool IsMetsName(const std::string& base, const std::string& barcode) {
  if (base.size() < 5 || base.compare(base.size() - 4, 4, ".xml") != 0) return false;
  std::string stem = base.substr(0, base.size() - 4);
  if (!barcode.empty()) {
    if (stem == barcode && barcode.find('_') != std::string::npos) return true;
    std::string suffix = "_" + barcode;
    return stem.size() > suffix.size() &&
           stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           IsAlnum(stem.substr(0, stem.size() - suffix.size()));
  }
  size_t us = stem.find('_');
  return us != std::string::npos && IsAlnum(stem.substr(0, us)) && IsAlnum(stem.substr(us + 1));
}

// Parses checksum.md5 ("<32 hex>  <name>" or "<32 hex> *<name>") into name -> md5.
Result<std::map<std::string, std::string>> ParseChecksums(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.size() < 35 || line[32] != ' ' || (line[33] != ' ' && line[33] != '*')) {
      return Status::DataLoss("checksum.md5 line " + Fmt(lineno) + " is malformed");
    }
    std::string md5 = line.substr(0, 32);
    for (char& c : md5) {
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
        return Status::DataLoss("checksum.md5 line " + Fmt(lineno) + " has a bad digest");
      }
    }
    Result<std::string> name = CheckMemberName(line.c_str() + 34);
    if (!name.ok()) return Status::DataLoss("checksum.md5 line " + Fmt(lineno) + ": bad name");
    out[*name] = md5;
  }
  return out;
}

std::string ListSome(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < 5; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > 5) out += " (+" + Fmt(v.size() - 5) + " more)";
  return out;
}

}  // namespace

struct ArchiveExtractor::State {
  explicit State(ExtractOptions o)
      : options(std::move(o)), pipe(kPipeCapacity), buf(kReadBuffer), zbuf(kReadBuffer) {}

  ExtractOptions options;
  BoundedPipe pipe;
  std::vector<uint8_t> buf;  // libarchive's current input block
  uint64_t compressed = 0;
  // Our own gzip decoding (ISA-L), when available and the input is gzip: zbuf holds compressed
  // bytes from the pipe, buf the inflated tar handed to libarchive.
  std::unique_ptr<GzipInflater> gz;
  std::vector<uint8_t> zbuf;
  size_t zpos = 0, zlen = 0;  // unread compressed bytes at zbuf[zpos..zpos+zlen)
  bool zeof = false;
  uint64_t inflated = 0;
  Status read_status;  // why a read callback failed, if it did
  std::thread worker;
  Status status;  // the worker's verdict
  Extraction result;
  bool finished = false;

  static la_ssize_t ReadCb(struct archive* a, void* ctx, const void** out) {
    auto* s = static_cast<State*>(ctx);
    if (s->zlen > 0) {  // the bytes read to sniff the format
      *out = s->zbuf.data() + s->zpos;
      auto n = static_cast<la_ssize_t>(s->zlen);
      s->zlen = 0;
      return n;
    }
    long r = s->pipe.Read(s->buf.data(), s->buf.size());
    if (r < 0) {
      archive_set_error(a, ECANCELED, "input aborted");
      return -1;
    }
    s->compressed += static_cast<uint64_t>(r);
    *out = s->buf.data();
    return r;
  }

  // libarchive's read callback when we inflate: the next run of the tar stream.
  static la_ssize_t InflateCb(struct archive* a, void* ctx, const void** out) {
    auto* s = static_cast<State*>(ctx);
    Result<size_t> got = s->NextInflated();
    if (!got.ok()) {
      s->read_status = got.status();
      archive_set_error(a, EINVAL, "%s", got.status().message().c_str());
      return -1;
    }
    *out = s->buf.data();
    return static_cast<la_ssize_t>(*got);
  }

  // Fills buf with inflated bytes; 0 at the verified end of the gzip stream.
  Result<size_t> NextInflated() {
    while (true) {
      if (zlen == 0 && !zeof) {
        long r = pipe.Read(zbuf.data(), zbuf.size());
        if (r < 0) return Status::Cancelled("input aborted");
        zeof = r == 0;
        compressed += static_cast<uint64_t>(r);
        zpos = 0;
        zlen = static_cast<size_t>(r);
      }
      const uint8_t* p = zbuf.data() + zpos;
      size_t n = zlen;
      GRIN_ASSIGN_OR_RETURN(size_t got, gz->Inflate(&p, &n, buf.data(), buf.size()));
      zpos = static_cast<size_t>(p - zbuf.data());
      zlen = n;
      if (got > 0) {
        inflated += got;
        GRIN_RETURN_IF_ERROR(CheckBomb(inflated));
        return got;
      }
      if (zeof && zlen == 0) {
        GRIN_RETURN_IF_ERROR(gz->Finish());
        return size_t{0};
      }
    }
  }

  // Reads the first bytes: gzip goes to GzipInflater (when built with ISA-L), anything else to
  // libarchive's own filters. The bytes read stay in zbuf for whichever reads first.
  Status Sniff() {
    while (zlen < 2 && !zeof) {
      long r = pipe.Read(zbuf.data() + zlen, zbuf.size() - zlen);
      if (r < 0) return Status::Cancelled("input aborted");
      zeof = r == 0;
      compressed += static_cast<uint64_t>(r);
      zlen += static_cast<size_t>(r);
    }
    if (options.fast_gzip && GzipInflater::Available() && zlen >= 2 && zbuf[0] == 0x1f &&
        zbuf[1] == 0x8b) {
      gz = std::make_unique<GzipInflater>();
    }
    return Status();
  }

  void Run() {
    status = RunInner();
    if (!read_status.ok()) status = read_status;  // the root cause, not libarchive's echo
    // Consume whatever the producer still sends (tar padding, or everything after a failure), so
    // Write() never blocks on a reader that has gone.
    pipe.CloseRead();
  }

  Status CheckRatio(struct archive* a) {
    return CheckBomb(static_cast<uint64_t>(archive_filter_bytes(a, 0)));
  }

  // out: uncompressed tar bytes so far.
  Status CheckBomb(uint64_t out) {
    const ExtractLimits& lim = options.limits;
    if (out > lim.max_total_bytes) {
      return Status::ResourceExhausted("archive expands beyond " + Fmt(lim.max_total_bytes) +
                                       " bytes");
    }
    if (out > lim.ratio_floor_bytes &&
        static_cast<double>(out) > lim.max_ratio * static_cast<double>(compressed)) {
      return Status::ResourceExhausted(
          "decompression bomb: " + Fmt(out) + " bytes from " + Fmt(compressed) +
          " compressed (ratio limit " + Fmt(static_cast<uint64_t>(lim.max_ratio)) + ")");
    }
    return Status();
  }

  Status RunInner() {
    const ExtractLimits& lim = options.limits;
    ArchiveRead a(archive_read_new());
    if (!a) return Status::Internal("archive_read_new failed");
    GRIN_RETURN_IF_ERROR(Sniff());
    if (!gz) archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open(a.get(), this, nullptr, gz ? &State::InflateCb : &State::ReadCb,
                          nullptr) != ARCHIVE_OK) {
      return Status::DataLoss(std::string("not a tar.gz archive: ") +
                              archive_error_string(a.get()));
    }
    OcrJsonlWriter pages(options.ocr_spill_path, options.ocr_memory_bytes);
    std::set<std::string> names;
    std::map<std::string, std::string> md5s;  // member -> md5 hex
    std::map<std::string, std::string> xml_candidates;
    std::string checksum_text;
    bool have_checksum = false;

    while (true) {
      struct archive_entry* e = nullptr;
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        const char* err = archive_error_string(a.get());
        return Status::DataLoss(std::string("corrupt or truncated archive: ") +
                                (err ? err : "unknown error"));
      }
      GRIN_RETURN_IF_ERROR(CheckRatio(a.get()));
      GRIN_ASSIGN_OR_RETURN(std::string name, CheckMemberName(archive_entry_pathname(e)));
      if (archive_entry_hardlink(e) != nullptr) {
        return Status::DataLoss("hard link member refused: " + name);
      }
      mode_t type = archive_entry_filetype(e);
      if (type == AE_IFDIR) {
        if (archive_entry_size(e) > 0) return Status::DataLoss("directory with data: " + name);
        continue;
      }
      if (type == AE_IFLNK) return Status::DataLoss("symbolic link member refused: " + name);
      if (type == AE_IFCHR || type == AE_IFBLK) {
        return Status::DataLoss("device member refused: " + name);
      }
      if (type != AE_IFREG) return Status::DataLoss("special member (FIFO/socket) refused: " + name);
      if (archive_entry_sparse_count(e) > 0) return Status::DataLoss("sparse member refused: " + name);
      int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
      if (declared < 0 || static_cast<uint64_t>(declared) > lim.max_member_bytes) {
        return Status::ResourceExhausted("member " + name + " is " + std::to_string(declared) +
                                         " bytes (limit " + Fmt(lim.max_member_bytes) + ")");
      }
      if (!names.insert(name).second) return Status::DataLoss("duplicate member: " + name);
      if (++result.members > lim.max_members) {
        return Status::ResourceExhausted("more than " + Fmt(lim.max_members) + " members");
      }

      // What to keep in memory, and how much of it at most.
      std::string base = Basename(name);
      std::optional<uint32_t> page = OcrPageNumber(base);
      bool is_checksum = name == "checksum.md5";
      bool is_xml = IsMetsName(base, options.barcode);
      uint64_t keep_limit = page ? lim.max_text_page_bytes
                            : is_checksum ? lim.max_checksum_bytes
                            : is_xml      ? lim.max_xml_bytes
                                          : 0;
      bool keep = page || is_checksum || is_xml;
      if (!page && base.size() > 4 && base.compare(base.size() - 4, 4, ".txt") == 0) {
        result.warnings.push_back("skipped text member not named NNNNNNNN.txt: " + name);
      }
      if (keep && static_cast<uint64_t>(declared) > keep_limit) {
        return Status::ResourceExhausted("member " + name + " is " + std::to_string(declared) +
                                         " bytes (limit " + Fmt(keep_limit) + ")");
      }
      if (page && pages.text_bytes() + static_cast<uint64_t>(declared) > lim.max_ocr_bytes) {
        return Status::ResourceExhausted("OCR text exceeds " + Fmt(lim.max_ocr_bytes) + " bytes");
      }

      if (page) GRIN_RETURN_IF_ERROR(pages.BeginPage(*page));
      std::string kept;  // checksum.md5 and METS (pages stream into the JSONL writer)
      Hasher md5(Hasher::Kind::kMd5);
      uint64_t got = 0;
      while (true) {
        const void* block = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        r = archive_read_data_block(a.get(), &block, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) {
          const char* err = archive_error_string(a.get());
          return Status::DataLoss("corrupt or truncated archive in " + name + ": " +
                                  (err ? err : "unknown error"));
        }
        if (static_cast<uint64_t>(offset) != got) return Status::DataLoss("sparse member refused: " + name);
        got += size;
        if (got > lim.max_member_bytes || (keep && got > keep_limit)) {
          return Status::ResourceExhausted("member " + name + " exceeds its size limit");
        }
        if (options.verify_checksums) md5.Update(static_cast<const uint8_t*>(block), size);
        if (page) {
          GRIN_RETURN_IF_ERROR(
              pages.PageText(std::string_view(static_cast<const char*>(block), size)));
        } else if (keep) {
          kept.append(static_cast<const char*>(block), size);
        }
        GRIN_RETURN_IF_ERROR(CheckRatio(a.get()));
      }
      if (options.verify_checksums) md5s[name] = md5.FinalHex();
      if (page) {
        GRIN_RETURN_IF_ERROR(pages.EndPage());
      } else if (is_checksum) {
        checksum_text = std::move(kept);
        have_checksum = true;
      } else if (is_xml) {
        xml_candidates[name] = std::move(kept);
      }
    }
    result.tar_bytes = static_cast<uint64_t>(archive_filter_bytes(a.get(), 0));
    // Drain the stream tail (end-of-archive padding) so the byte count covers the whole input;
    // our own inflater also verifies the gzip trailer there.
    if (gz) {
      while (true) {
        GRIN_ASSIGN_OR_RETURN(size_t got, NextInflated());
        if (got == 0) break;
      }
      result.tar_bytes = inflated;
    } else {
      zlen = 0;
      while (pipe.Read(buf.data(), buf.size()) > 0) {
      }
    }
    result.compressed_bytes = compressed;
    return Complete(pages, md5s, xml_candidates, have_checksum, checksum_text);
  }

  Status Complete(OcrJsonlWriter& pages, const std::map<std::string, std::string>& md5s,
                  const std::map<std::string, std::string>& xml_candidates, bool have_checksum,
                  const std::string& checksum_text) {
    // Checksums first: a mismatch means the other results cannot be trusted either.
    if (options.verify_checksums) {
      ChecksumReport& rep = result.checksums;
      rep.present = have_checksum;
      if (have_checksum) {
        GRIN_ASSIGN_OR_RETURN(auto listed, ParseChecksums(checksum_text));
        rep.listed = listed.size();
        for (const auto& [name, want] : listed) {
          auto it = md5s.find(name);
          if (it == md5s.end()) {
            rep.missing.push_back(name);
          } else if (it->second != want) {
            rep.mismatched.push_back(name);
          } else {
            ++rep.verified;
          }
        }
        for (const auto& [name, md5] : md5s) {
          if (name != "checksum.md5" && !listed.count(name)) rep.unlisted.push_back(name);
        }
        if (!rep.mismatched.empty()) {
          return Status::DataLoss("checksum.md5 mismatch for " + ListSome(rep.mismatched));
        }
        if (!rep.missing.empty()) {
          return Status::DataLoss("members listed in checksum.md5 but absent: " +
                                  ListSome(rep.missing));
        }
      } else {
        result.warnings.push_back("no checksum.md5 in the archive");
      }
    }

    result.page_count = pages.page_count();
    result.ocr_pages_present = static_cast<uint32_t>(pages.present());
    if (pages.present() == 0 && options.require_ocr) {
      return Status::DataLoss("no OCR pages (NNNNNNNN.txt) in the archive");
    }

    for (const auto& [name, xml] : xml_candidates) {
      Result<MetsDocument> doc = ParseMets(xml);
      if (!doc.ok()) {
        if (doc.status().code() == StatusCode::kNotFound) {  // well-formed, just not METS
          result.warnings.push_back(name + ": " + doc.status().message());
          continue;
        }
        return doc.status().WithContext(name);
      }
      if (!result.mets_member.empty()) {
        return Status::DataLoss("two METS files: " + result.mets_member + " and " + name);
      }
      result.mets_member = name;
      result.marc = doc->marc;
    }
    if (options.require_marc) {
      if (result.mets_member.empty()) {
        return Status::DataLoss("no METS file (<DIR>_" +
                                (options.barcode.empty() ? std::string("<BARCODE>")
                                                         : options.barcode) +
                                ".xml) in the archive");
      }
      if (!result.marc) return Status::DataLoss("no MARC record in " + result.mets_member);
    }
    // Last, so a book that fails leaves no spill file behind (the writer removes its own).
    result.ocr_peak_memory_bytes = pages.peak_memory_bytes();
    GRIN_ASSIGN_OR_RETURN(OcrJsonlGz ocr, pages.Finish());
    result.ocr_jsonl_gz = std::move(ocr.data);
    result.ocr_jsonl_gz_path = std::move(ocr.path);
    result.ocr_jsonl_gz_bytes = ocr.size;
    return Status();
  }
};

ArchiveExtractor::ArchiveExtractor(ExtractOptions options)
    : state_(std::make_unique<State>(std::move(options))) {
  State* s = state_.get();
  s->worker = std::thread([s] { s->Run(); });
}

ArchiveExtractor::~ArchiveExtractor() {
  if (state_->worker.joinable()) {
    state_->pipe.CloseWrite(/*abort=*/true);
    state_->worker.join();
  }
}

Status ArchiveExtractor::Write(const uint8_t* data, size_t n) {
  if (state_->finished) {
    return state_->status.ok() ? Status::FailedPrecondition("Write after Finish") : state_->status;
  }
  if (state_->pipe.Write(data, n)) return Status();
  // The worker stopped reading: it has failed (or, impossibly, finished early).
  state_->worker.join();
  state_->finished = true;
  if (!state_->status.ok()) return state_->status;
  return Status::DataLoss("archive reader stopped before the end of input");
}

Result<Extraction> ArchiveExtractor::Finish() {
  if (state_->worker.joinable()) {
    state_->pipe.CloseWrite();
    state_->worker.join();
  }
  state_->finished = true;
  if (!state_->status.ok()) return state_->status;
  return std::move(state_->result);
}

}  // namespace grin::archive
