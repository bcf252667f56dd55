// JSON Web Key Sets (RFC 7517) of an upstream OpenID provider, turned into
// PEM public keys that libjwt 1.10 can verify with.  Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpauth {

// One usable signature-verification key.  `kty` is "RSA" or "EC"; `crv` is
// "P-256", "P-384" or "P-521" for EC keys (empty for RSA); `alg` is the
// key's declared algorithm when the set gives one (RFC 7517 §4.4), else "".
struct Jwk {
  std::string kid, kty, alg, crv;
  std::string pem;  // SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----"
};

inline constexpr std::size_t kJwksMaxBytes = 256 * 1024;
inline constexpr std::size_t kJwksMaxKeys = 50;
inline constexpr int kJwksMinRsaBits = 2048;

// Parses a JWKS document.  Keys that are not for signatures (`use` other than
// "sig"), of an unknown `kty`/`crv`, malformed, weak (RSA < 2048 bits) or
// whose `alg` does not fit their type are skipped, not fatal.  Fails (nullopt,
// reason in *error when non-null) when the document is too large, not JSON,
// has no "keys" array, has more than kJwksMaxKeys entries, or yields no
// usable key at all.
std::optional<std::vector<Jwk>> parse_jwks(std::string_view json, std::string* error);

// parse_jwks, with the keys of the last few documents this thread parsed
// kept by their exact text (the same text always gives the same keys): a
// provider's JWKS is parsed once per worker, not on every login and every
// rerun of a login's request.  Failures are not kept; nullptr for one.
std::shared_ptr<const std::vector<Jwk>> parse_jwks_cached(std::string_view json, std::string* error);

// How long a fetched JWKS is kept in the store (jwks:<issuer>,
// jwks:client:<ID>): a key rotation shows through an unknown kid before that.
inline constexpr int64_t kJwksCacheSeconds = 3600;

// A set fetched this recently is not fetched again for a kid it lacks
// (jwksfetched:<issuer>, jwksfetched:client:<ID>): made-up kids cannot
// make every request a fetch from the provider.
inline constexpr int64_t kJwksRefetchSeconds = 30;

// The store key marking that the keys of `owner` (an issuer, or
// "client:<ID>") were fetched in the last kJwksRefetchSeconds.
inline std::string jwks_fetched_key(std::string_view owner) { return "jwksfetched:" + std::string(owner); }

// Whether `keys` can verify a JWS whose header names `kid`: there are keys,
// and, when it names one, a key with that kid (else the set is refetched).
bool jwks_covers(const std::shared_ptr<const std::vector<Jwk>>& keys, const std::optional<std::string>& kid);

// True when the JWS algorithm `alg` may be used with `key`:
// RS256/384/512 with RSA, ES256 with P-256, ES384 with P-384, ES512 with
// P-521, and, when the key declares an `alg`, only that one.
bool jwk_allows_alg(const Jwk& key, std::string_view alg);

}  // namespace mcpauth
