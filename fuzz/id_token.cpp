// ID-token decoding and verification: verify_id_token against a fixed
// one-key RSA JWKS, and jwt_header_kid.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "id_token.hpp"
#include "jwks.hpp"

using namespace mcpauth;

namespace {
// A 2048-bit RSA public key made for these tests only (kid "fuzz-1").
const char* kJwks =
    R"({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"fuzz-1","e":"AQAB","n":")"
    "xhXFMvt7TPWXyvghBzF_hLF3nXQKwbXAWsTm9yWnQy0OBjNytFG-1gj7wFi0oKmRsDOpckFE2wJAaG6SGne0u8sVOBKw5nwVqkpKNHZMIAnPSrsulnT7YFtcy4ys7dn2PGmL3vqdYXwGg2OI6PouZCAo7U5It25Hy6Caf0B8Zjg-uVKhxB9oHt_dcaXEXB2tqvgStgYq9lDz19QorZRXZc3wHUlhE7V9v4scWxE8JlBivOfzg0kjLSRmFCdNeC92W8euiDPK8BnxQOj_3Txehcdcm6N-ePpYKqLut6c6zHVuAjrvsGcZjusQtMVyYeyLjZe2OWKFWdmfR6-a6fkmsQ"
    R"("}]})";

const std::vector<Jwk>& keys() {
  static const std::vector<Jwk> k = [] {
    std::string err;
    auto parsed = parse_jwks(kJwks, &err);
    if (!parsed || parsed->size() != 1) {
      std::fprintf(stderr, "fuzz: fixed JWKS: %s\n", err.c_str());
      std::abort();
    }
    return *parsed;
  }();
  return k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view jwt(reinterpret_cast<const char*>(data), size);
  IdTokenExpectations expect;
  expect.issuer = "https://idp.example";
  expect.client_id = "gateway";
  expect.nonce = "n-0S6_WzA2Mj";
  expect.now = 1'800'000'000;
  (void)verify_id_token(jwt, keys(), expect);
  expect.nonce.clear();
  (void)verify_id_token(jwt, keys(), expect);
  (void)verify_id_token(jwt, {}, expect);
  (void)jwt_header_kid(jwt);
  return 0;
}
