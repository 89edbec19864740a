// FakeGrinServer: HEAD/GET <BARCODE>.tar.gz.gpg and /_blob/ (docs/grin-protocol.md, Archives).
#include <chrono>
#include <cstring>
#include <thread>

#include "tests/fake_grin/server_impl.h"

namespace grin::fake {
namespace {

// Filler for size-only bodies: 1 MiB of pseudo-random bytes served in rotation, so throughput
// runs measure the network path rather than a random generator.
const std::string& Filler() {
  static const std::string* f = [] {
    auto* s = new std::string(1 << 20, '\0');
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < s->size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(s->data() + i, &x, 8);
    }
    return s;
  }();
  return *f;
}

struct BodyPlan {
  std::shared_ptr<const std::string> bytes;  // real archive; null in size-only mode
  std::string header;                        // size-only: OpenPGP framing, then filler
  uint64_t size = 0;                         // true size of the archive
  uint64_t begin = 0, end = 0;               // byte range served [begin, end)
  int64_t rate_bps = 0;
  int64_t stall_ms = 0, stall_at = -1;
  int64_t truncate_at = -1;                  // body bytes (relative to begin) before closing
  bool truncate_rst = false;                 // reset instead of a normal close
  int fd = -1;                               // the connection, for a reset
  std::shared_ptr<FakeGrinServer::Impl::Bucket> bucket;  // global_throttle's shared budget
  int64_t bucket_bps = 0;
  std::shared_ptr<const std::string> swap_bytes;  // reconvert: the new version's bytes
  int64_t swap_at = -1;                      // absolute offset where they take over
  int64_t corrupt_at = -1;                   // absolute archive offset to flip
};

// Copies archive bytes [off, off + n) into out.
void CopyBody(const BodyPlan& p, uint64_t off, size_t n, char* out) {
  if (p.bytes) {
    std::memcpy(out, p.bytes->data() + off, n);
    return;
  }
  const std::string& f = Filler();
  for (size_t k = 0; k < n;) {
    const uint64_t o = off + k;
    if (o < p.header.size()) {
      out[k++] = p.header[o];
      continue;
    }
    const size_t fo = static_cast<size_t>(o % f.size());
    const size_t m = std::min(n - k, f.size() - fo);
    std::memcpy(out + k, f.data() + fo, m);
    k += m;
  }
}

bool ParseRange(const std::string& h, uint64_t size, uint64_t* b, uint64_t* e) {
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return false;
  const std::string spec = h.substr(6);
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return false;
  const std::string a = spec.substr(0, dash), z = spec.substr(dash + 1);
  try {
    if (a.empty()) {  // suffix: the last N bytes
      uint64_t n = std::stoull(z);
      if (n == 0) return false;
      *b = n >= size ? 0 : size - n;
      *e = size;
    } else {
      *b = std::stoull(a);
      *e = z.empty() ? size : std::min<uint64_t>(std::stoull(z) + 1, size);
    }
  } catch (...) {
    return false;
  }
  return *b < size && *b < *e;
}

}  // namespace

void FakeGrinServer::Impl::HandleArchive(RequestCtx& c, bool is_blob) {
  // httplib would apply a Range header on its own after this handler; Range is this server's
  // decision (off by default, If-Range aware), so the parsed ranges are dropped. The Request
  // object is httplib's own non-const local, so the cast is safe.
  const_cast<httplib::Request&>(c.req).ranges.clear();

  std::string dir = c.dir, barcode;
  uint32_t want_version = 0;
  if (is_blob) {  // /_blob/<DIR>~<BARCODE>~<VERSION>
    const std::string& f = c.file;
    size_t a = f.find('~'), z = f.rfind('~');
    if (a == std::string::npos || a == z) return SetErrorPage(c.res, 404, "Not Found");
    dir = f.substr(0, a);
    barcode = f.substr(a + 1, z - a - 1);
    want_version = static_cast<uint32_t>(std::strtoul(f.c_str() + z + 1, nullptr, 10));
    c.dir = dir;
  } else {
    barcode = c.barcodes.empty() ? "" : c.barcodes[0];
  }
  auto cit = corpora.find(dir);
  if (cit == corpora.end()) return SetErrorPage(c.res, 404, "Not Found");
  Corpus* corpus = cit->second.get();
  auto idx = corpus->IndexOf(barcode);
  const bool head = c.req.method == "HEAD";
  {
    std::lock_guard<std::mutex> l(stats_mu);
    auto& bs = BarcodeLocked(dir, barcode);
    if (head) ++bs.heads;
    else ++bs.gets;
  }
  if (!idx) return SetErrorPage(c.res, 404, "Not Found");
  BookRecord b = corpus->Get(*idx);
  if (!head && c.Fired("expire") && b.status == ConvertStatus::kConverted) {
    corpus->SetStatus(*idx, ConvertStatus::kAvailable, Now());
    return SetErrorPage(c.res, 404, "Not Found");
  }
  if (b.status != ConvertStatus::kConverted || (is_blob && b.version != want_version)) {
    return SetErrorPage(c.res, 404, "Not Found");
  }
  if (head && c.Fired("expire")) {
    // Answered as converted, gone by the next request.
    corpus->SetStatus(*idx, ConvertStatus::kAvailable, Now());
  }
  if (!is_blob && !head && opt.redirect_archives) {
    c.res.status = 302;
    c.res.set_header("Location", origin + "/_blob/" + dir + "~" + b.barcode + "~" +
                                     std::to_string(b.version));
    return;
  }

  BodyPlan plan;
  if (opt.size_only) {
    const uint64_t span = static_cast<uint64_t>(
        std::max<int64_t>(0, opt.size_only_max_bytes - opt.size_only_min_bytes));
    plan.size = static_cast<uint64_t>(std::max<int64_t>(opt.size_only_min_bytes, 128)) +
                (span ? corpus->Hash(*idx, 77 + b.version) % (span + 1) : 0);
    plan.header = SizeOnlyHeader(plan.size, corpus->Hash(*idx, 78 + b.version));
  } else {
    ArchiveSpec spec{dir, b.barcode, b.version, b.pages, b.title};
    auto bytes = archives->Get(spec, Passphrase(dir));
    if (!bytes.ok()) return SetErrorPage(c.res, 500, bytes.status().message());
    plan.bytes = *bytes;
    plan.size = plan.bytes->size();
  }

  std::string etag = ETagFor(dir, b);
  const std::string last_modified = HttpDate(b.status_at);
  if (const FaultRule* f = c.Fired("etag")) {
    if (f->etag_mode == "weak") {
      c.res.set_header("ETag", "W/" + etag);
    } else if (f->etag_mode == "unquoted") {
      c.res.set_header("ETag", etag.substr(1, etag.size() - 2));
    } else if (f->etag_mode == "change") {
      c.res.set_header("ETag", "\"changed" + etag.substr(8));
    }  // "missing": no header
  } else {
    c.res.set_header("ETag", etag);
  }
  c.res.set_header("Last-Modified", last_modified);
  if (opt.range_support) c.res.set_header("Accept-Ranges", "bytes");
  if (opt.content_disposition) {
    c.res.set_header("Content-Disposition",
                     "attachment; filename=\"" + dir + "_" + b.barcode + ".tar.gz.gpg\"");
  }

  plan.begin = 0;
  plan.end = plan.size;
  int status = 200;
  const std::string range = c.req.get_header_value("Range");
  if (opt.range_support && !range.empty() && !head) {
    const std::string if_range = c.req.get_header_value("If-Range");
    const bool valid = if_range.empty() || if_range == etag || if_range == last_modified;
    if (c.Fired("unsatisfiable")) {
      c.res.set_header("Content-Range", "bytes */" + std::to_string(plan.size));
      return SetErrorPage(c.res, 416, "Range Not Satisfiable");
    }
    if (valid) {
      uint64_t rb = 0, re = 0;
      if (!ParseRange(range, plan.size, &rb, &re)) {
        c.res.set_header("Content-Range", "bytes */" + std::to_string(plan.size));
        return SetErrorPage(c.res, 416, "Range Not Satisfiable");
      }
      plan.begin = rb;
      plan.end = re;
      status = 206;
      c.res.set_header("Content-Range", "bytes " + std::to_string(rb) + "-" +
                                            std::to_string(re - 1) + "/" +
                                            std::to_string(plan.size));
      std::lock_guard<std::mutex> l(stats_mu);
      ++BarcodeLocked(dir, b.barcode).ranged_gets;
    }
  }
  uint64_t declared = plan.end - plan.begin;
  if (const FaultRule* f = c.Fired("wrong_length")) {
    declared = static_cast<uint64_t>(std::max<int64_t>(
        1, static_cast<int64_t>(declared) + f->length_delta));
    if (f->length_delta > 0) plan.truncate_at = static_cast<int64_t>(plan.end - plan.begin);
  }
  if (const FaultRule* f = c.Fired("throttle")) plan.rate_bps = f->rate_bps;
  if (const FaultRule* f = c.Fired("stall")) {
    plan.stall_ms = f->stall_ms;
    plan.stall_at = f->at_byte;
  }
  bool chunked = false;
  if (const FaultRule* f = c.Fired("truncate")) {
    plan.truncate_at = f->at_byte;
    plan.truncate_rst = f->close_mode == "rst";
    chunked = f->close_mode == "chunked";
    if (plan.truncate_rst) plan.fd = ConnectionFd(c.req);
  }
  if (const FaultRule* f = c.Fired("global_throttle")) {
    plan.bucket = BucketFor(f->id);
    plan.bucket_bps = f->rate_bps;
  }
  if (const FaultRule* f = c.Fired("reconvert")) {
    // The book gets a new version now: a HEAD has already its (old) headers; a GET's body
    // continues with the new version's bytes from at_byte on.
    corpus->Reconvert(*idx, Now());
    if (!head && !opt.size_only) {
      BookRecord nb = corpus->Get(*idx);
      auto bytes = archives->Get(ArchiveSpec{dir, nb.barcode, nb.version, nb.pages, nb.title},
                                 Passphrase(dir));
      if (!bytes.ok()) return SetErrorPage(c.res, 500, bytes.status().message());
      plan.swap_bytes = *bytes;
      plan.swap_at = static_cast<int64_t>(plan.begin) + std::max<int64_t>(0, f->at_byte);
    }
  }
  if (const FaultRule* f = c.Fired("corrupt")) plan.corrupt_at = f->at_byte;

  if (!head) {
    std::lock_guard<std::mutex> l(stats_mu);
    const std::string key = dir + "/" + b.barcode;
    auto it = last_get_bytes.find(key);
    if (it != last_get_bytes.end()) stats.wasted_bytes += it->second;
    last_get_bytes[key] = 0;
  }
  // The download cap counts bodies being written: taken here, given back by the releaser, which
  // httplib runs when the response is done (or abandoned).
  bool counted = false;
  if (!head && opt.max_concurrent_downloads > 0) {
    if (++downloads_in_flight > opt.max_concurrent_downloads) {
      --downloads_in_flight;
      return SetErrorPage(c.res, opt.download_cap_status, "Too many concurrent downloads");
    }
    counted = true;
  }
  c.res.status = status;
  const std::string key = dir + "/" + b.barcode;
  // Server-side timing of a GET, kept when its body ends (GET /_fake/gets).
  std::shared_ptr<ArchiveGetTiming> timing;
  if (!head) {
    timing = std::make_shared<ArchiveGetTiming>();
    timing->barcode = key;
    timing->arrived_us = SinceStartUs(c.arrived);
    timing->status = status;
  }
  auto shared_plan = std::make_shared<BodyPlan>(std::move(plan));
  auto start = std::make_shared<std::chrono::steady_clock::time_point>(
      std::chrono::steady_clock::now());
  auto stalled = std::make_shared<bool>(false);
  auto provider = [this, shared_plan, start, stalled, key, timing](
                      size_t offset, size_t length, httplib::DataSink& sink) {
    const BodyPlan& p = *shared_plan;
    uint64_t rel = offset;  // relative to p.begin
    size_t n = std::min<size_t>(length, 256 * 1024);
    if (p.truncate_at >= 0) {
      if (rel >= static_cast<uint64_t>(p.truncate_at)) {
        if (p.truncate_rst) {
          {
            std::lock_guard<std::mutex> l(stats_mu);
            ++stats.resets;  // counted first, so a peer that saw the reset also sees the count
          }
          AbortConnection(p.fd, 1000);
        }
        return false;  // close the connection
      }
      n = static_cast<size_t>(std::min<uint64_t>(n, static_cast<uint64_t>(p.truncate_at) - rel));
    }
    if (p.stall_at >= 0 && !*stalled) {
      if (rel >= static_cast<uint64_t>(p.stall_at)) {
        *stalled = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(p.stall_ms));
      } else {
        n = static_cast<size_t>(std::min<uint64_t>(n, static_cast<uint64_t>(p.stall_at) - rel));
      }
    }
    if (p.begin + rel >= p.end) return false;
    n = static_cast<size_t>(std::min<uint64_t>(n, p.end - (p.begin + rel)));
    if (p.rate_bps > 0) {
      n = std::min<size_t>(n, static_cast<size_t>(std::max<int64_t>(1, p.rate_bps / 20)));
      auto due = *start + std::chrono::microseconds(
                              static_cast<int64_t>(1e6 * static_cast<double>(rel) /
                                                   static_cast<double>(p.rate_bps)));
      std::this_thread::sleep_until(due);
    }
    if (p.bucket) {
      // Every body of the rule takes its bytes from one budget: a server-wide bandwidth cap.
      n = std::min<size_t>(n, static_cast<size_t>(std::max<int64_t>(1, p.bucket_bps / 20)));
      std::chrono::steady_clock::time_point due;
      {
        std::lock_guard<std::mutex> l(p.bucket->mu);
        due = std::max(p.bucket->next, std::chrono::steady_clock::now()) +
              std::chrono::microseconds(static_cast<int64_t>(
                  1e6 * static_cast<double>(n) / static_cast<double>(p.bucket_bps)));
        p.bucket->next = due;
      }
      std::this_thread::sleep_until(due);
    }
    uint64_t abs_off = p.begin + rel;
    const std::string* src = p.bytes.get();
    if (p.swap_at >= 0) {
      if (abs_off < static_cast<uint64_t>(p.swap_at)) {
        n = static_cast<size_t>(std::min<uint64_t>(n, static_cast<uint64_t>(p.swap_at) - abs_off));
      } else {
        src = p.swap_bytes.get();
        if (abs_off >= src->size()) return false;  // the new version is shorter: cut
        n = static_cast<size_t>(std::min<uint64_t>(n, src->size() - abs_off));
      }
    }
    const bool corrupt_here = p.corrupt_at >= 0 &&
                              static_cast<uint64_t>(p.corrupt_at) >= abs_off &&
                              static_cast<uint64_t>(p.corrupt_at) < abs_off + n;
    const std::string& filler = Filler();
    if (!corrupt_here && src) {
      // Zero-copy: straight from the cached archive.
      if (!sink.write(src->data() + abs_off, n)) return false;
    } else if (!corrupt_here && abs_off >= p.header.size()) {
      // Zero-copy: one contiguous slice of the filler.
      const size_t fo = static_cast<size_t>(abs_off % filler.size());
      n = std::min(n, filler.size() - fo);
      if (!sink.write(filler.data() + fo, n)) return false;
    } else {
      std::string chunk(n, '\0');
      if (src) {
        std::memcpy(chunk.data(), src->data() + abs_off, n);
      } else {
        CopyBody(p, abs_off, n, chunk.data());
      }
      if (corrupt_here) chunk[static_cast<uint64_t>(p.corrupt_at) - abs_off] ^= 0x5a;
      if (!sink.write(chunk.data(), chunk.size())) return false;
    }
    if (timing) {
      if (timing->first_byte_us < 0) {
        timing->first_byte_us = SinceStartUs(std::chrono::steady_clock::now());
      }
      timing->bytes += static_cast<int64_t>(n);
    }
    std::lock_guard<std::mutex> l(stats_mu);
    stats.bytes_served += static_cast<int64_t>(n);
    stats.barcodes[key].bytes += static_cast<int64_t>(n);
    last_get_bytes[key] += static_cast<int64_t>(n);
    return true;
  };
  auto release = [this, counted, timing](bool) {
    if (counted) --downloads_in_flight;
    if (timing) {
      timing->end_us = SinceStartUs(std::chrono::steady_clock::now());
      std::lock_guard<std::mutex> l(stats_mu);
      stats.archive_gets.push_back(*timing);
    }
  };
  if (chunked && !head) {
    // Chunked encoding: the provider's false return closes the connection before the
    // terminating zero-length chunk, whatever at_byte is.
    c.res.set_chunked_content_provider(
        "application/octet-stream",
        [provider, declared](size_t offset, httplib::DataSink& sink) {
          if (offset >= declared) return false;
          return provider(offset, static_cast<size_t>(declared - offset), sink);
        },
        release);
    return;
  }
  c.res.set_content_provider(static_cast<size_t>(declared), "application/octet-stream",
                             std::move(provider), release);
}

}  // namespace grin::fake
