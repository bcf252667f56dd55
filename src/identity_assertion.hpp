// The identity the gateway asserts to the tool server on every proxied
// request: a short-lived JWT in X-MCP-Identity (HS256 with a shared secret,
// or ES256 with a private key), so the tool server never sees — nor needs —
// the client's token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mcpauth {

struct Identity {
  std::string sub, client_id, scope;
};

class IdentityMinter {
 public:
  // key_text: a PEM EC private key (ES256), else a shared secret of at
  // least 32 bytes (trailing whitespace ignored; HS256).
  static std::optional<IdentityMinter> create(std::string_view key_text, std::string issuer,
                                              std::string audience, std::string* error);

  // A signed assertion valid for `lifetime` seconds (at most 300).
  std::string mint(const Identity& who, int64_t now, int64_t lifetime) const;
  bool is_es256() const { return es256_; }

 private:
  std::string key_;
  bool es256_ = false;
  std::string issuer_, audience_;
};

// Assertions are reused per session until close to expiry rather than
// signed on every request: one cache per worker process.
class IdentityCache {
 public:
  static constexpr int64_t kLifetime = 300;
  static constexpr int64_t kRenewBefore = 60;
  static constexpr size_t kMaxEntries = 100000;

  // The cached assertion for this session, or a fresh one.
  const std::string& get(const IdentityMinter& minter, const std::string& sid, const Identity& who,
                         int64_t now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string jwt;
    int64_t exp;
    Identity who;
  };
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mcpauth
