// JWS from outside: ID tokens (verify_id_token) and enterprise ID-JAGs
// (verify_id_jag, id_jag_issuer) against a fixed JWKS of one RSA and one
// P-256 key, and jwt_header_kid.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "enterprise_grant.hpp"
#include "id_token.hpp"
#include "jwks.hpp"

using namespace mcpauth;

namespace {
// Public keys made for these tests only, their private halves thrown away
// (kids "fuzz-1", RSA 2048, and "fuzz-2", P-256).
const char* kJwks =
    R"({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"fuzz-1","e":"AQAB","n":")"
    "xhXFMvt7TPWXyvghBzF_hLF3nXQKwbXAWsTm9yWnQy0OBjNytFG-1gj7wFi0oKmRsDOpckFE2wJAaG6SGne0u8sVOBKw5nwVqkpKNHZMIAnPSrsulnT7YFtcy4ys7dn2PGmL3vqdYXwGg2OI6PouZCAo7U5It25Hy6Caf0B8Zjg-uVKhxB9oHt_dcaXEXB2tqvgStgYq9lDz19QorZRXZc3wHUlhE7V9v4scWxE8JlBivOfzg0kjLSRmFCdNeC92W8euiDPK8BnxQOj_3Txehcdcm6N-ePpYKqLut6c6zHVuAjrvsGcZjusQtMVyYeyLjZe2OWKFWdmfR6-a6fkmsQ"
    R"("},{"kty":"EC","use":"sig","alg":"ES256","kid":"fuzz-2","crv":"P-256",)"
    R"("x":"UYuwV2bx67CLAlw4ArwgY2NUQ1COsydU3A3OvpXktEw","y":"og8YsOXOXirGMeW-yhbD8N6QYeC7BmLMJ8u9Uv5N9zw"}]})";

const std::vector<Jwk>& keys() {
  static const std::vector<Jwk> k = [] {
    std::string err;
    auto parsed = parse_jwks(kJwks, &err);
    if (!parsed || parsed->size() != 2) {
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
  IdJagExpectations jag;
  jag.issuer = "https://idp.example";
  jag.audience = "https://gateway.example";
  jag.resource = "https://gateway.example/mcp";
  jag.client_id = "app";
  jag.now = 1'800'000'000;
  auto verified = verify_id_jag(jwt, keys(), jag);
  // nothing unsigned by these keys gets through; a forged one is a finding
  if (std::holds_alternative<IdJagClaims>(verified)) {
    std::fprintf(stderr, "fuzz: an ID-JAG verified with the fuzz keys, whose private halves no one has\n");
    std::abort();
  }
  (void)id_jag_issuer(jwt);
  return 0;
}
