// PKCE (RFC 7636) with the S256 method only; callers refuse "plain".
#pragma once

#include <string>
#include <string_view>

namespace mcpauth {

// RFC 7636 §4.1: 43..128 characters of [A-Za-z0-9-._~].
bool valid_verifier(std::string_view verifier);
// An S256 challenge is base64url(SHA-256) without padding: exactly 43
// characters of the base64url alphabet (RFC 7636 §4.2).
bool valid_challenge(std::string_view challenge);
// BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2).
std::string s256_challenge(std::string_view verifier);
// True when the verifier is well-formed and hashes to the challenge;
// the comparison is constant-time (RFC 7636 §4.6).
bool verify_s256(std::string_view verifier, std::string_view challenge);

}  // namespace mcpauth
