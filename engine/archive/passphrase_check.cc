#include "engine/archive/passphrase_check.h"

#include "engine/archive/decryptor_internal.h"

namespace grin::archive {

PassphraseCheck CheckPassphrase(const uint8_t* prefix, size_t n, const Secret& passphrase) {
  PassphraseCheck out;
  bool keyed = false;
  Status s = internal::CheckPassphrasePrefix(prefix, n, passphrase, &keyed);
  if (s.code() == StatusCode::kPermissionDenied) {
    out.verdict = PassphraseCheck::Verdict::kWrong;
    out.detail = s.message();
  } else if (!s.ok()) {
    out.detail = s.message();
  } else if (!keyed) {
    out.detail =
        "the first " + std::to_string(n) + " bytes end before the encrypted data's check bytes";
  } else {
    out.verdict = PassphraseCheck::Verdict::kOk;
  }
  return out;
}

}  // namespace grin::archive
