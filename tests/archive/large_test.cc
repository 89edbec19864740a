// A large book (>= 1 GiB of plaintext; smaller under ASan) generated, encrypted by a real gpg
// process and decrypted + extracted in one streaming pass: nothing is held whole in memory, so
// the resident set stays flat.

#include <doctest/doctest.h>
#include <poll.h>

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <thread>

#include "engine/archive/book.h"
#include "engine/archive/digest.h"
#include "engine/base/subprocess.h"
#include "engine/base/fn_deleter.h"
#include "tests/archive/fixtures.h"

namespace grin::archive {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kPlainTarget = 192ull << 20;  // ASan: same code paths, smaller size
#else
constexpr uint64_t kPlainTarget = 1ull << 30;
#endif
constexpr size_t kImageBytes = 8u << 20;

using ArchiveWrite = std::unique_ptr<struct archive, FnDeleter<archive_write_free>>;
using Entry = std::unique_ptr<archive_entry, FnDeleter<archive_entry_free>>;

struct HashingFdSink final : ByteSink {
  int fd;
  StreamDigests digests;
  explicit HashingFdSink(int f) : fd(f) {}
  Status Write(const uint8_t* d, size_t n) override {
    digests.Update(d, n);
    return WriteAll(fd, d, n);
  }
};

la_ssize_t WriteCb(struct archive*, void* ctx, const void* buf, size_t n) {
  auto* sink = static_cast<ByteSink*>(ctx);
  return sink->Write(static_cast<const uint8_t*>(buf), n).ok() ? static_cast<la_ssize_t>(n) : -1;
}

// Streams a book of `pages` pages (8 MiB image + text each), checksum.md5 last, gzip level 0
// (stored blocks: random images do not compress, and level 0 keeps the generator cheap).
Status GenerateBook(uint32_t pages, ByteSink* out) {
  ArchiveWrite a(archive_write_new());
  archive_write_add_filter_gzip(a.get());
  archive_write_set_filter_option(a.get(), "gzip", "compression-level", "0");
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open(a.get(), out, nullptr, &WriteCb, nullptr) != ARCHIVE_OK) {
    return Status::Internal("open");
  }
  std::string sums;
  std::vector<uint8_t> image(kImageBytes);
  auto add = [&](const std::string& name, const uint8_t* data, size_t n) -> Status {
    Entry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(n));
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return Status::Internal("header");
    if (n && archive_write_data(a.get(), data, n) != static_cast<la_ssize_t>(n)) {
      return Status::Internal("data");
    }
    Hasher md5(Hasher::Kind::kMd5);
    md5.Update(data, n);
    sums += md5.FinalHex() + "  " + name + "\n";
    return Status();
  };
  std::string mets = testing::MetsXml("TEST", "39015000000001");
  GRIN_RETURN_IF_ERROR(add("TEST_39015000000001.xml",
                           reinterpret_cast<const uint8_t*>(mets.data()), mets.size()));
  for (uint32_t p = 1; p <= pages; ++p) {
    char name[32];
    testing::FillRandom(p, image.data(), image.size());
    std::snprintf(name, sizeof name, "%08u.jp2", p);
    GRIN_RETURN_IF_ERROR(add(name, image.data(), image.size()));
    std::string text = testing::PageText(p);
    std::snprintf(name, sizeof name, "%08u.txt", p);
    GRIN_RETURN_IF_ERROR(add(name, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  Entry e(archive_entry_new());
  archive_entry_set_pathname(e.get(), "checksum.md5");
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(sums.size()));
  archive_write_header(a.get(), e.get());
  archive_write_data(a.get(), sums.data(), sums.size());
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Status::Internal("close");
  return Status();
}

void RunLarge(DecryptBackend backend, uint64_t plain_target) {
  const uint32_t pages = static_cast<uint32_t>(plain_target / kImageBytes) + 1;
  auto enc = Subprocess::Spawn(
      {"gpg", "--homedir", testing::TestGnupgHome(), "--batch", "--no-tty", "--quiet",
       "--no-options", "--no-symkey-cache", "--pinentry-mode", "loopback", "--passphrase-fd",
       "3", "--symmetric", "--cipher-algo", "AES128", "--compress-algo", "none", "--s2k-count",
       "65536", "--output", "-"},
      MinimalEnv({}),
      {{0, PipeDir::kChildReads}, {1, PipeDir::kChildWrites}, {3, PipeDir::kChildReads}});
  REQUIRE(enc.ok());
  auto& fds = enc->parent_fds();
  {
    ScopedSigpipeBlock no_sigpipe;
    std::string pass = std::string(testing::kPassphrase) + "\n";
    REQUIRE(WriteAll(fds[2].get(), pass.data(), pass.size()).ok());
    fds[2].Reset();
  }

  // Generator -> gpg stdin on its own thread.
  HashingFdSink to_gpg(fds[0].get());
  Status gen_status;
  std::thread generator([&] {
    ScopedSigpipeBlock no_sigpipe;
    gen_status = GenerateBook(pages, &to_gpg);
    to_gpg.digests.Final();
    fds[0].Reset();
  });

  const int64_t rss_before = testing::VmRssKiB();
  int64_t rss_max = rss_before;
  uint64_t seen = 0, next_sample = 0;
  FunctionSink archive_sink([&](const uint8_t*, size_t n) {
    seen += n;
    if (seen >= next_sample) {
      rss_max = std::max(rss_max, testing::VmRssKiB());
      next_sample += 32u << 20;
    }
    return Status();
  });
  BookOptions o;
  o.barcode = "39015000000001";
  o.decrypt.backend = backend;
  o.archive_sink = &archive_sink;
  Secret pass(testing::kPassphrase);
  auto book = BookProcessor::Open(o, &pass);
  REQUIRE(book.ok());

  // gpg stdout -> BookProcessor on this thread, in 1 MiB reads as a download would arrive.
  std::vector<uint8_t> buf(1 << 20);
  uint64_t ciphertext = 0;
  Status feed;
  while (true) {
    pollfd p = {fds[1].get(), POLLIN, 0};
    ::poll(&p, 1, -1);
    ssize_t r = ::read(fds[1].get(), buf.data(), buf.size());
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break;
    ciphertext += static_cast<uint64_t>(r);
    if (feed.ok()) feed = (*book)->Write(buf.data(), static_cast<size_t>(r));
  }
  generator.join();
  REQUIRE(enc->Wait().ok());
  REQUIRE_MESSAGE(gen_status.ok(), gen_status.ToString());
  auto result = (*book)->Finish();
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  rss_max = std::max(rss_max, testing::VmRssKiB());

  MESSAGE("backend " << BackendName(backend) << ": plaintext " << (result->archive_bytes >> 20)
                     << " MiB, ciphertext " << (ciphertext >> 20) << " MiB, RSS before "
                     << rss_before / 1024 << " MiB, max " << rss_max / 1024 << " MiB");
  CHECK(result->archive_bytes >= plain_target);
  CHECK(result->archive_bytes == to_gpg.digests.bytes());
  CHECK(result->sha256_hex == to_gpg.digests.sha256_hex());
  CHECK(result->md5_hex == to_gpg.digests.md5_hex());
  CHECK(result->backend == backend);
  const Extraction& x = *result->extraction;
  CHECK(x.page_count == pages);
  CHECK(x.checksums.verified == 2 * pages + 1);
  CHECK(x.marc.has_value());
  // Flat memory: pipes (2 x 1 MiB), read buffers and the OCR text, not the archive.
  CHECK(rss_max - rss_before < 96 * 1024);
}

TEST_CASE("large: >= 1 GiB plaintext through gpg with flat memory") {
  RunLarge(DecryptBackend::kGpg, kPlainTarget);
}

TEST_CASE("large: >= 1 GiB plaintext through the native backend with flat memory") {
  RunLarge(DecryptBackend::kNative, kPlainTarget);
}

TEST_CASE("large: a quarter of that through librnp with flat memory") {
  RunLarge(DecryptBackend::kRnp, kPlainTarget / 4);
}

}  // namespace
}  // namespace grin::archive
