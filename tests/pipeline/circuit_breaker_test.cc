// ClassifyFailure tells systemic failures from book failures; CircuitBreaker trips after N
// consecutive distinct books (a wrong passphrase or the state store at once).
#include "engine/pipeline/circuit_breaker.h"

#include <doctest/doctest.h>

#include "engine/net/transport.h"

namespace grin::pipeline {
namespace {

SystemicKind Kind(const Status& s, FailureSource src) {
  return ClassifyFailure(s, src, "raw", "/staging", 2'000'000).kind;
}

TEST_CASE("failures are classified by code and where they happened") {
  using S = FailureSource;
  // Book-level: retry or dead as before.
  CHECK(Kind(Status::DataLoss("integrity check (MDC) failed"), S::kDecrypt) == SystemicKind::kNone);
  CHECK(Kind(Status::Unavailable("http status 503"), S::kGrin) == SystemicKind::kNone);
  CHECK(Kind(Status::NotFound("archive not in GRIN (HTTP 404)"), S::kGrin) == SystemicKind::kNone);
  CHECK(Kind(Status::NotFound("PutObject raw/k: HTTP 404 NoSuchUpload"), S::kStorage) ==
        SystemicKind::kNone);
  // Systemic.
  CHECK(Kind(Status::PermissionDenied("GRIN refused access (HTTP 403)"), S::kGrin) ==
        SystemicKind::kGrinAuth);
  CHECK(Kind(Status::PermissionDenied("wrong passphrase"), S::kDecrypt) ==
        SystemicKind::kPassphrase);
  CHECK(Kind(Status::PermissionDenied("PutObject raw/k: HTTP 403 AccessDenied"), S::kStorage) ==
        SystemicKind::kStorageAccess);
  CHECK(Kind(Status::NotFound("PutObject raw/k: HTTP 404 NoSuchBucket"), S::kStorage) ==
        SystemicKind::kStorageBucket);
  CHECK(Kind(Status::NoSpace("write: No space left on device"), S::kStorage) ==
        SystemicKind::kNoSpace);
  CHECK(Kind(Status::NoSpace("write: No space left on device"), S::kStaging) ==
        SystemicKind::kNoSpace);
  CHECK(Kind(Status::NoSpace("disk full"), S::kStateStore) == SystemicKind::kStateStore);
  // TLS trust, also when a caller rewrapped it under another code (the OAuth client does).
  Status tls = Status::FailedPrecondition(std::string(net::kTlsUntrustedText) + ": bad issuer");
  CHECK(Kind(tls, S::kGrin) == SystemicKind::kTlsTrust);
  CHECK(Kind(Status::Unavailable("token endpoint unreachable: " + tls.message()), S::kGrin) ==
        SystemicKind::kTlsTrust);
  // The line names the bucket, the path and the space.
  auto bucket = ClassifyFailure(Status::NotFound("HTTP 404 NoSuchBucket"), S::kStorage, "raw", "",
                                -1);
  CHECK(bucket.cause.find("storage bucket 'raw' does not exist") != std::string::npos);
  CHECK(bucket.cause.find("no book was failed") != std::string::npos);
  auto disk = ClassifyFailure(Status::NoSpace("No space left"), S::kStaging, "", "/st", 2'500'000);
  CHECK(disk.cause.find("/st") != std::string::npos);
  CHECK(disk.cause.find("free at least 3 MB") != std::string::npos);
}

TEST_CASE("the breaker trips after N consecutive distinct books, a stored book resets it") {
  SystemicFailure auth{SystemicKind::kGrinAuth, "GRIN refused access"};
  CircuitBreaker b(3);
  CHECK_FALSE(b.RecordFailure("A", auth));
  CHECK_FALSE(b.RecordFailure("A", auth));  // the same book again does not count twice
  CHECK_FALSE(b.RecordFailure("B", auth));
  b.RecordSuccess();
  CHECK_FALSE(b.RecordFailure("C", auth));
  CHECK_FALSE(b.RecordFailure("D", auth));
  CHECK_FALSE(b.tripped());
  CHECK(b.RecordFailure("E", auth));
  CHECK(b.tripped());
  CHECK(b.cause() == "GRIN refused access");

  CircuitBreaker p(3);
  CHECK(p.RecordFailure("A", {SystemicKind::kPassphrase, "wrong passphrase"}));
  CircuitBreaker s(3);
  CHECK(s.RecordFailure("", {SystemicKind::kStateStore, "db full"}));
}

}  // namespace
}  // namespace grin::pipeline
