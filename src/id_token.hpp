// Verification of the ID token an upstream OpenID provider returns from its
// token endpoint (OpenID Connect Core 1.0 §3.1.3.7).  libjwt 1.10 checks the
// signature only; every claim rule is applied here.  No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "json.hpp"
#include "jwks.hpp"

namespace mcpauth {

struct IdTokenExpectations {
  std::string issuer;     // exact match with `iss` (OIDC Core §3.1.3.7 step 2)
  std::string client_id;  // must be in `aud`; `azp` when aud has several entries
  std::string nonce;      // when non-empty, `nonce` must equal it (step 11)
  int64_t now = 0;        // seconds since the epoch
  int64_t leeway = 60;    // allowed clock skew, seconds
  // `iat` older than this (plus leeway) is refused: the token was just issued
  // to us by the token endpoint (step 10).  0 disables the check.
  int64_t max_iat_age = 600;
};

struct IdTokenClaims {
  std::string sub, name, email, preferred_username;
  bool email_verified = false;
  int64_t exp = 0, iat = 0;
  std::string payload;  // the whole claims object, JSON, for the claim rules
};

inline constexpr std::size_t kIdTokenMaxBytes = 64 * 1024;

// Checks the JWS (alg in RS256/384/512, ES256/384/512; key chosen by `kid`,
// or the only compatible key when there is no kid; alg fits the key type)
// and the claims: iss, aud/azp, exp, iat, nbf, nonce, sub.  The claims on
// success, else a short reason (for logs, not for the browser).
std::variant<IdTokenClaims, std::string> verify_id_token(std::string_view jwt,
                                                         const std::vector<Jwk>& keys,
                                                         const IdTokenExpectations& expect);

// verify_id_token once per request, however often a deferred store makes
// the request run (replay_store.hpp): the claims of a success are kept in
// the run memo (run_memo.hpp) under a digest of the token, every key (kid,
// kty, alg, crv, PEM) and every expectation, and a rerun that verifies the
// very same finds them there.  A failure is not kept: the request ends with
// it.  Without a run memo this is verify_id_token.
std::variant<IdTokenClaims, std::string> verify_id_token_once(std::string_view jwt,
                                                              const std::vector<Jwk>& keys,
                                                              const IdTokenExpectations& expect);

// The ID token in the provider's answer to a refresh_token request (OIDC
// Core §12.2), for the claim rules: it came straight from the provider's
// token endpoint over TLS, so its signature is not checked (§3.1.3.7 step
// 6 allows that for a token received by direct communication); the claims
// are, as for a login without the nonce, and `sub` must be the login's.
std::variant<IdTokenClaims, std::string> read_refreshed_id_token(std::string_view jwt,
                                                                 const IdTokenExpectations& expect,
                                                                 std::string_view sub);

// A compact JWS signed by one of keys (the same rules on alg, kid and key
// as verify_id_token): its payload's bytes, else nullopt and why.  The
// claims are the caller's to check.
std::optional<std::string> verify_jws(std::string_view jwt, const std::vector<Jwk>& keys, std::string* why);

// One base64url segment of a compact JWS (its header or payload) as a JSON
// object; null when it is not one.  Nothing is verified.
Json jws_json_segment(std::string_view segment);

// How many ID-token signatures this process has checked so far.
uint64_t id_token_signature_checks();

// The `kid` of a compact JWS header, without verifying anything, so the
// caller can refetch the JWKS once when it sees an unknown kid.
std::optional<std::string> jwt_header_kid(std::string_view jwt);

}  // namespace mcpauth
