// private_key_jwt client authentication of the gateway at the upstream
// provider's token endpoint (RFC 7523 §2.2, §3; OpenID Connect Core §9).
// Pure apart from the random jti.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mcpauth {

struct AssertionResult {
  bool ok = false;
  std::string value_or_error;  // the compact JWT when ok, else a reason
};

inline constexpr int64_t kClientAssertionLifetime = 300;  // seconds

// Signs {iss, sub = client_id, aud = token_endpoint, jti (16 random bytes,
// base64url), iat = nbf = now, exp = now + 300}.  The algorithm follows the
// key: RSA (>= 2048 bits) -> RS256, EC P-256/P-384/P-521 -> ES256/384/512.
// `kid` and `x5t` go into the header when non-empty (Entra ID identifies
// certificate credentials by x5t).
AssertionResult make_client_assertion(std::string_view private_key_pem, std::string_view client_id,
                                      std::string_view token_endpoint, int64_t now, std::string_view kid,
                                      std::string_view x5t);

// base64url(SHA-1(DER certificate)), the JWS "x5t" header (RFC 7515 §4.1.7),
// of the first certificate in `cert_pem`; nullopt when it does not parse.
std::optional<std::string> x5t_from_certificate_pem(std::string_view cert_pem);

}  // namespace mcpauth
