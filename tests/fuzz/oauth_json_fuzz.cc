// Fuzz target: the OAuth files (engine/grin/oauth): credentials.json (LoadCredentials) and
// Google's client_secret.json (LoadClientSecret), read from a 0600 file as the CLI reads them,
// and the id_token e-mail claim (EmailFromIdToken) on the same bytes.

#include "engine/grin/oauth.h"
#include "tests/fuzz/fuzz_util.h"

using namespace grin::grin_client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = grin::fuzz::ScratchDir() + "/credentials.json";
  const std::string_view bytes = grin::fuzz::AsView(data, size);
  grin::fuzz::WriteFileOrDie(path, bytes, 0600);
  (void)LoadCredentials(path);
  (void)LoadClientSecret(path);
  (void)EmailFromIdToken(bytes);
  (void)EmailFromIdToken("eyJhbGciOiJub25lIn0." + std::string(bytes) + ".sig");
  return 0;
}
