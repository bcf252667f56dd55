// Enterprise-managed authorization (the MCP extension of that name;
// draft-ietf-oauth-identity-assertion-authz-grant; RFC 7523 §2.1): an app
// the operator configured (mcp_auth_enterprise_client) presents an
// Identity Assertion JWT Authorization Grant (ID-JAG) that the
// organisation's identity provider issued for one user, this gateway and
// this app, and gets this gateway's access token for that user -- without a
// browser, a consent page or a provider token.  The provider decided; the
// gateway checks the assertion, its single use and its own rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "jwks.hpp"

namespace mcpauth {

// mcp_auth_trusted_issuer ISSUER jwks_location=/PATH [subject_prefix=P]:
// an identity provider whose ID-JAGs the gateway accepts; its keys come
// from the internal location (proxied to its jwks_uri), cached in the
// store as the login provider's are.  subject_prefix= keeps the subjects
// of a second provider apart from the login provider's.
struct TrustedIssuer {
  std::string issuer, jwks_location, subject_prefix;
};

inline constexpr size_t kMaxTrustedIssuers = 8;

std::optional<TrustedIssuer> parse_trusted_issuer(std::string_view line, std::string* err);

inline constexpr const char* kJwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
inline constexpr size_t kIdJagMaxBytes = 16 * 1024;
// An ID-JAG is short-lived (the draft's examples: 5 minutes); its jti is
// kept until it expires, so a longer one is refused.
inline constexpr int64_t kIdJagMaxLifetime = 3600;

struct IdJagExpectations {
  std::string issuer;     // the trusted issuer the assertion names
  std::string audience;   // this gateway's issuer
  std::string resource;   // this gateway's resource
  std::string client_id;  // the client that authenticated
  int64_t now = 0;
  int64_t leeway = 60;    // for iat/nbf in the future only; exp has none
};

struct IdJagClaims {
  std::string sub, jti, name, email;
  bool has_scope = false;
  std::vector<std::string> scopes;
  int64_t exp = 0;
  std::string payload;  // the claims object, JSON, for the claim rules
};

// The `iss` of a compact JWS, unverified: which issuer's keys to check it
// with.  nullopt when the token does not parse.
std::optional<std::string> id_jag_issuer(std::string_view jwt);

// Checks an ID-JAG: header typ oauth-id-jag+jwt; the signature with one of
// `keys` (RS256/384/512 or ES256/384/512, as for ID tokens: never none or
// HMAC); iss, aud (this gateway's issuer), resource (this gateway's, a
// string or in an array), client_id (the authenticated client's), exp (in
// the future, at most kIdJagMaxLifetime ahead), iat, nbf, sub and jti
// present.  The claims, or why not (safe to tell the client).
std::variant<IdJagClaims, std::string> verify_id_jag(std::string_view jwt, const std::vector<Jwk>& keys,
                                                     const IdJagExpectations& expect);

struct Config;
struct Request;
struct Response;
class Params;
class Store;
class Fields;

// grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer at /token.
Response enterprise_grant(const Config& cf, Store& store, const Request& req, const Params& form);

// The issuer's JWKS came back (a continuation of kind "idjag_jwks").
bool is_enterprise_continuation(const Fields& f);
Response resume_enterprise_grant(const Config& cf, Store& store, const Request& req, const Fields& f,
                                 int fetch_status, const std::string& fetch_body);

}  // namespace mcpauth
