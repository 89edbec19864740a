// Fuzz target: an OpenPGP message through the native decryptor (engine/archive/native_decryptor
// and openpgp_packets): packet framing, SKESK and S2K, SEIPD/MDC, compressed and literal data.
// Also the peeks kAuto and the passphrase check run on a message's first bytes. The seeds are
// real gpg output for the passphrase below (low S2K counts keep executions fast), so mutations
// reach the packets inside the encryption too.

#include <algorithm>

#include "engine/archive/decryptor.h"
#include "engine/archive/decryptor_internal.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::archive;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Secret passphrase(std::string("fuzz-passphrase"));
  // A mutated count byte can ask for up to 65 MiB of hashing per key (0.5 s): legitimate, but it
  // would slow the fuzzer to a crawl. Counts over 1 MiB are left to the unit tests.
  if (auto count = PeekS2kCount(data, size); count && *count > (1u << 20)) return 0;
  (void)internal::NativeCanDecrypt(data, size);
  bool keyed = false;
  (void)internal::CheckPassphrasePrefix(data, std::min<size_t>(size, 4096), passphrase, &keyed);

  NullSink sink;
  DecryptOptions options;
  options.backend = DecryptBackend::kNative;
  options.max_plaintext_bytes = 8 << 20;  // an OpenPGP-level compression bomb stops here
  auto decryptor = NewDecryptor(options, passphrase, &sink);
  if (!decryptor.ok()) return 0;
  bool ok = true;
  grin::fuzz::FeedChunked(data, size, [&](const uint8_t* p, size_t n) {
    ok = (*decryptor)->Write(p, n).ok();
    return ok;
  });
  (void)(*decryptor)->Finish();
  return 0;
}
