#pragma once
// BookProcessor: the archive module's one entry point for the sync pipeline. Feed it the bytes
// of `<BARCODE>.tar.gz.gpg` as the download delivers them; it decrypts (streaming), hands the
// decrypted archive to your sink, hashes it (SHA-256, and MD5 unless compute_md5 is false, for
// the upload's integrity headers)
// and extracts OCR JSONL and MARC fields from it on the way — one pass, nothing on disk.
//
//   BookOptions o;  o.barcode = "39015000000001";  o.archive_sink = &multipart_upload;
//   o.decrypt.size_hint = content_length;
//   GRIN_ASSIGN_OR_RETURN(auto book, BookProcessor::Open(o, &passphrase));
//   for each chunk: GRIN_RETURN_IF_ERROR(book->Write(chunk.data(), chunk.size()));
//   Result<BookResult> r = book->Finish();   // only now is anything trustworthy
//   if (r.ok()) complete the upload with r->sha256_hex; else abort it and record r.status().
//
// Nothing the sink received counts until Finish() returns OK: decryption streams plaintext before
// the integrity check (see decryptor.h), and extraction may fail at the end (checksums, METS).
//
// Thread safety: one thread drives Write/Finish. archive_sink is called serially, possibly from
// the decryption worker thread, and never after Finish() returns.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/archive/decryptor.h"
#include "engine/archive/extractor.h"
#include "engine/archive/sink.h"
#include "engine/base/result.h"

namespace grin::archive {

struct BookOptions {
  std::string barcode;
  // false: the input is already the plaintext tar.gz (no passphrase needed).
  bool encrypted = true;
  DecryptOptions decrypt;
  // false: only decrypt and hash (no OCR/MARC; the archive need not be a tar.gz).
  bool extract = true;
  ExtractOptions extract_options;  // barcode is filled from `barcode`
  // Receives the decrypted archive as produced; may be null. Not owned.
  ByteSink* archive_sink = nullptr;
  // false: skip the MD5 of the decrypted archive (~1.1 ms CPU per MiB, more than decryption
  // itself with the native backend); BookResult's md5_hex / md5_base64 are then empty. For
  // uploads whose integrity rests on the signed SHA-256 (x-amz-content-sha256).
  bool compute_md5 = true;
};

struct BookResult {
  uint64_t archive_bytes = 0;  // decrypted archive size
  std::string sha256_hex;      // of the decrypted archive
  std::string md5_hex;         // empty when !compute_md5
  std::string sha256_base64;   // the same digests base64-encoded (x-amz-checksum / Content-MD5)
  std::string md5_base64;      // empty when !compute_md5
  DecryptBackend backend = DecryptBackend::kAuto;  // the backend that ran (kAuto if !encrypted)
  std::optional<Extraction> extraction;            // set when options.extract
};

class BookProcessor {
 public:
  // passphrase is required when options.encrypted (it is copied; the original may go away).
  static Result<std::unique_ptr<BookProcessor>> Open(const BookOptions& options,
                                                     const Secret* passphrase);
  ~BookProcessor();
  BookProcessor(const BookProcessor&) = delete;
  BookProcessor& operator=(const BookProcessor&) = delete;

  // The next bytes of the download. An error means the book has failed; stop feeding it.
  Status Write(const uint8_t* data, size_t n);
  // End of the download: the verdict, hashes and extraction. Errors name the reason per book
  // (wrong passphrase, corrupt, truncated, unprotected, hostile archive, checksum mismatch, ...).
  Result<BookResult> Finish();

 private:
  struct Impl;
  explicit BookProcessor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace grin::archive
