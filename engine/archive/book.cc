#include "engine/archive/book.h"

#include "engine/archive/digest.h"
#include "engine/base/encoding.h"

namespace grin::archive {

// Plaintext fan-out: hashes, the caller's sink, the extractor. Runs on the decryptor's thread.
struct BookProcessor::Impl final : public ByteSink {
  explicit Impl(bool md5) : digests(md5) {}
  BookOptions options;
  StreamDigests digests;
  std::unique_ptr<ArchiveExtractor> extractor;
  std::unique_ptr<Decryptor> decryptor;
  Status extract_status;  // first extractor failure, kept apart from the decryption verdict
  bool finished = false;

  Status Write(const uint8_t* data, size_t n) override {
    digests.Update(data, n);
    if (options.archive_sink) GRIN_RETURN_IF_ERROR(options.archive_sink->Write(data, n));
    if (extractor && extract_status.ok()) {
      // An extraction failure must not stop decryption: the archive itself may still be good
      // (and uploaded), so keep decrypting and report the extraction error at Finish().
      extract_status = extractor->Write(data, n);
    }
    return Status();
  }
};

BookProcessor::BookProcessor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BookProcessor::~BookProcessor() = default;

Result<std::unique_ptr<BookProcessor>> BookProcessor::Open(const BookOptions& options,
                                                           const Secret* passphrase) {
  auto impl = std::make_unique<Impl>(options.compute_md5);
  impl->options = options;
  if (options.extract) {
    ExtractOptions eo = options.extract_options;
    eo.barcode = options.barcode;
    impl->extractor = std::make_unique<ArchiveExtractor>(std::move(eo));
  }
  if (options.encrypted) {
    if (passphrase == nullptr || passphrase->empty()) {
      return Status::InvalidArgument("an encrypted archive needs a passphrase");
    }
    GRIN_ASSIGN_OR_RETURN(impl->decryptor,
                          NewDecryptor(options.decrypt, *passphrase, impl.get()));
  }
  return std::unique_ptr<BookProcessor>(new BookProcessor(std::move(impl)));
}

Status BookProcessor::Write(const uint8_t* data, size_t n) {
  if (impl_->finished) return Status::FailedPrecondition("Write after Finish");
  if (n == 0) return Status();
  if (impl_->decryptor) return impl_->decryptor->Write(data, n);
  return impl_->Write(data, n);
}

Result<BookResult> BookProcessor::Finish() {
  if (impl_->finished) return Status::FailedPrecondition("Finish called twice");
  impl_->finished = true;
  BookResult out;
  if (impl_->decryptor) {
    Status v = impl_->decryptor->Finish();
    out.backend = impl_->decryptor->backend();
    if (!v.ok()) return v.WithContext("decryption");
  }
  impl_->digests.Final();
  out.archive_bytes = impl_->digests.bytes();
  out.sha256_hex = impl_->digests.sha256_hex();
  out.md5_hex = impl_->digests.md5_hex();
  out.sha256_base64 = Base64Encode(impl_->digests.sha256().data(), impl_->digests.sha256().size());
  if (impl_->digests.has_md5()) {
    out.md5_base64 = Base64Encode(impl_->digests.md5().data(), impl_->digests.md5().size());
  }
  if (impl_->extractor) {
    if (!impl_->extract_status.ok()) {
      // The extractor failed early; Finish() returns the same reason.
      return impl_->extract_status.WithContext("extraction");
    }
    Result<Extraction> x = impl_->extractor->Finish();
    if (!x.ok()) return x.status().WithContext("extraction");
    out.extraction = std::move(x).value();
  }
  return out;
}

}  // namespace grin::archive
