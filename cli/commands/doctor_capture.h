#pragma once
// `grin-jobs doctor --capture DIR`: a sample pack of what the real GRIN sends, with secrets
// redacted, to settle what no public source does and to attach to a report of a parse failure.
// The pack (an empty or new directory, 0700):
//   README.txt               what the pack is and what was redacted
//   manifest.json            per file: the URL (query secrets redacted), HTTP status and version,
//                            response headers (credentials redacted), redirect hops, bytes, and
//                            whether the body was cut; the barcodes used; errors met on the way
//   lists/<list>.html        the first HTML page of _all_books, _converted, _in_process, _failed
//   lists/<list>.txt         the first 64 KiB of each in ?format=text
//   barcode_search.tsv       the _barcode_search reply for up to three books
//   archive/head.txt         the HEAD of one converted archive, every hop
//   archive/get.txt          the GET of the same archive (downloaded whole), every hop
//   archive/packets.txt      its OpenPGP packets: cipher, S2K, compression, literal header
//   archive/tar.txt          its tar member list (names, types, sizes, dates)
// The archive's bytes and plaintext are not kept. tests/grin's pack test parses a pack with the
// production parsers ($GRIN_CAPTURE_PACK).

#include <string>

#include "cli/commands/doctor_checks.h"
#include "engine/net/transport.h"

namespace grin::cli::doctor {

// Writes the pack into dir. passphrase_file: --passphrase-file or "" (the usual search); without
// a passphrase the archive's packets and tar listing are left out (warned). Returns the
// "capture" line of doctor's report: pass, warn (some part missing, named) or fail (nothing
// written, e.g. dir is not empty).
CheckResult CaptureSamplePack(TransferStack& stack, const RunConfig& config,
                              const std::string& passphrase_file, const std::string& dir);

// The redactions, exposed for tests. A URL keeps scheme, host, path and parameter names; the
// values of parameters that may carry credentials (signatures, tokens, keys, codes) become
// "REDACTED". Headers that carry credentials (Authorization, Cookie, Set-Cookie, ...) keep
// their name with the value "REDACTED"; a Location is redacted as a URL. In bodies, e-mail
// addresses (the signed-in account) become "REDACTED@example.invalid".
std::string RedactUrl(const std::string& url);
net::Headers RedactHeaders(const net::Headers& headers);
std::string RedactBody(std::string body);

}  // namespace grin::cli::doctor
