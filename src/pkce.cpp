// PKCE (RFC 7636), S256 only.  See pkce.hpp.
#include "pkce.hpp"

#include "crypto.hpp"

namespace mcpauth {

namespace {

bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

bool valid_verifier(std::string_view verifier) {
  // code-verifier = 43*128unreserved (RFC 7636 §4.1)
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  for (char c : verifier) {
    if (!(is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) return false;
  }
  return true;
}

bool valid_challenge(std::string_view challenge) {
  if (challenge.size() != 43) return false;
  for (char c : challenge) {
    if (!(is_alnum(c) || c == '-' || c == '_')) return false;
  }
  // 43 characters carry 258 bits; the last character's 2 low bits must be
  // zero for a 32-byte digest, i.e. it is one of "AEIMQUYcgkosw048".
  char last = challenge.back();
  return std::string_view("AEIMQUYcgkosw048").find(last) != std::string_view::npos;
}

std::string s256_challenge(std::string_view verifier) { return sha256_b64url(verifier); }

bool verify_s256(std::string_view verifier, std::string_view challenge) {
  // A malformed verifier fails outright (RFC 7636 §4.1); its shape is not a
  // secret, the comparison against the stored challenge is.
  if (!valid_verifier(verifier)) return false;
  return ct_equal(s256_challenge(verifier), challenge);
}

}  // namespace mcpauth
