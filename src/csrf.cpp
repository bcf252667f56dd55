#include "csrf.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits>

#include "crypto.hpp"
#include "encoding.hpp"

namespace mcpauth {
namespace {

// Distinct context strings keep a MAC made for one purpose from being
// accepted for the other.
constexpr std::string_view kCsrfContext = "mcpauth-consent-csrf-v1";
constexpr std::string_view kValueContext = "mcpauth-signed-value-v1";

// HMAC-SHA-256, or "" when OpenSSL fails (crypto.hpp's hmac_sha256 throws).
std::string hmac_or_empty(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), md, &len) == nullptr)
    return {};
  std::string out(reinterpret_cast<const char*>(md), len);
  OPENSSL_cleanse(md, sizeof md);
  return out;
}

bool key_ok(std::string_view key) {
  return key.size() >= kCsrfMinKeyBytes && key.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max());
}

// Length-prefixed so that ("a|b", "c") and ("a", "b|c") never collide.
void append_field(std::string* out, std::string_view field) {
  *out += std::to_string(field.size());
  *out += ':';
  *out += field;
  *out += '|';
}

std::string csrf_mac(std::string_view key, std::string_view browser_id, std::string_view client_id,
                     std::string_view redirect_uri, const std::string& issued_at) {
  std::string msg(kCsrfContext);
  msg += '|';
  append_field(&msg, browser_id);
  append_field(&msg, client_id);
  append_field(&msg, redirect_uri);
  append_field(&msg, issued_at);
  return hmac_or_empty(key, msg);
}

// A canonical non-negative decimal (no sign, no leading zero, <= 18 digits).
std::optional<int64_t> parse_time(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::string make_csrf_token(std::string_view key, std::string_view browser_id, std::string_view client_id,
                            std::string_view redirect_uri, int64_t now) {
  if (!key_ok(key) || now < 0) return {};
  std::string issued_at = std::to_string(now);
  std::string mac = csrf_mac(key, browser_id, client_id, redirect_uri, issued_at);
  if (mac.empty()) return {};
  return issued_at + "." + b64url_encode(mac);
}

bool verify_csrf_token(std::string_view key, std::string_view token, std::string_view browser_id,
                       std::string_view client_id, std::string_view redirect_uri, int64_t now, int64_t max_age) {
  if (!key_ok(key) || now < 0 || token.size() > 128) return false;
  std::size_t dot = token.find('.');
  if (dot == std::string_view::npos) return false;
  auto issued = parse_time(token.substr(0, dot));
  if (!issued) return false;
  auto mac = b64url_decode(token.substr(dot + 1));
  if (!mac) return false;
  std::string expected = csrf_mac(key, browser_id, client_id, redirect_uri, std::to_string(*issued));
  // The MAC first, in constant time; the age only decides after it.
  if (expected.empty() || !ct_equal(*mac, expected)) return false;
  if (*issued > now + kCsrfFutureSkew) return false;
  if (now - *issued > max_age) return false;
  return true;
}

std::string sign_value(std::string_view key, std::string_view value) {
  if (!key_ok(key)) return {};
  std::string msg(kValueContext);
  msg += '|';
  msg += value;
  std::string mac = hmac_or_empty(key, msg);
  if (mac.empty()) return {};
  return b64url_encode(value) + "." + b64url_encode(mac);
}

std::optional<std::string> verify_signed_value(std::string_view key, std::string_view token) {
  if (!key_ok(key)) return std::nullopt;
  std::size_t dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) != std::string_view::npos) return std::nullopt;
  auto value = b64url_decode(token.substr(0, dot));
  auto mac = b64url_decode(token.substr(dot + 1));
  if (!value || !mac) return std::nullopt;
  std::string msg(kValueContext);
  msg += '|';
  msg += *value;
  std::string expected = hmac_or_empty(key, msg);
  if (expected.empty() || !ct_equal(*mac, expected)) return std::nullopt;
  return value;
}

}  // namespace mcpauth
