// CSRF tokens for the consent form and HMAC-signed cookie values.  Pure
// functions of their inputs (and a server-side secret key); no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mcpauth {

inline constexpr std::size_t kCsrfMinKeyBytes = 32;
inline constexpr int64_t kCsrfMaxAge = 900;        // default lifetime, seconds
inline constexpr int64_t kCsrfFutureSkew = 60;     // tolerated clock skew, seconds

// "<issued_at>.<b64url(HMAC-SHA256(key, context || len-prefixed browser_id,
// client_id, redirect_uri || issued_at))>": bound to one browser (its
// session cookie id), one client and one redirect URI.  Returns "" when the
// key is shorter than kCsrfMinKeyBytes or `now` is negative.
std::string make_csrf_token(std::string_view key, std::string_view browser_id, std::string_view client_id,
                            std::string_view redirect_uri, int64_t now);

// Constant-time MAC check; refuses malformed tokens, tokens older than
// max_age seconds and tokens issued more than kCsrfFutureSkew in the future.
bool verify_csrf_token(std::string_view key, std::string_view token, std::string_view browser_id,
                       std::string_view client_id, std::string_view redirect_uri, int64_t now,
                       int64_t max_age = kCsrfMaxAge);

// "<b64url(value)>.<b64url(HMAC-SHA256(key, context || value))>", e.g. for a
// "remember this consent" cookie.  The value is readable by the client, not
// secret, and carries no expiry of its own: put one inside the value.
// Returns "" when the key is too short.
std::string sign_value(std::string_view key, std::string_view value);
std::optional<std::string> verify_signed_value(std::string_view key, std::string_view token);

}  // namespace mcpauth
