// Sealed-token opening (KeyRing::open with a fixed key; tokens of seal and
// seal_deterministic) and the decoders of what is inside: access and
// refresh claims.  Half the inputs are sealed first, so the decoders see
// attacker-shaped plaintext behind a valid tag.
#include <cstddef>
#include <cstdint>
#include <string>

#include "crypto.hpp"
#include "fuzz_common.hpp"
#include "session.hpp"

using namespace mcpauth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const KeyRing& ring = fuzzutil::keyring();
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint8_t purpose = static_cast<uint8_t>(data[0] & 0x07);
  if (data[0] & 0x80) {
    // rest is a plaintext: seal it, open it, decode it
    std::string token = ring.seal(purpose, rest);
    auto opened = ring.open(purpose, token);
    if (!opened || *opened != rest) __builtin_trap();
    if (ring.open(static_cast<uint8_t>(purpose + 1), token)) __builtin_trap();  // purpose is bound
    // deterministic sealing: opens the same, and the same plaintext gives
    // the same token
    std::string fixed = ring.seal_deterministic(purpose, rest);
    auto reopened = ring.open(purpose, fixed);
    if (!reopened || *reopened != rest || fixed != ring.seal_deterministic(purpose, rest)) __builtin_trap();
    if (ring.open(static_cast<uint8_t>(purpose + 1), fixed)) __builtin_trap();
    (void)decode_access(*opened);
    (void)decode_refresh(*opened);
    return 0;
  }
  for (uint8_t p : {seal_purpose::access_token, seal_purpose::refresh_token, seal_purpose::state_file,
                    seal_purpose::cookie, purpose}) {
    if (auto opened = ring.open(p, rest)) {
      (void)decode_access(*opened);
      (void)decode_refresh(*opened);
    }
  }
  return 0;
}
