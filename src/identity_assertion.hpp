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

#include "session.hpp"

namespace mcpauth {

struct Identity {
  std::string sub, client_id, scope;
  // The session's kept claims (ClaimSet::to_record); the assertion carries
  // them as "claims": {"groups": ["editors"], ...} when there are any.
  std::string claims;
  // The assertion's "sid": the session id sealed for the gateway alone
  // (session_ref()), so that a backend can present the assertion at the
  // token exchange and the gateway finds the session again.  Opaque to the
  // tool server, and the same for every assertion of a session.
  std::string session_ref;
  // "client" when the subject is a service client (grant_type=
  // client_credentials), not a user: the assertion's "subject_type".
  // Empty for a user, and then the assertion has no such claim.
  std::string subject_type;
};

// What the gateway reads back from an assertion it signed.
struct AssertedIdentity {
  std::string sub, client_id, session_ref;
  int64_t exp = 0;
};

class KeyRing;
// The "sid" of a session's assertions: its id sealed deterministically
// under a purpose of its own (kSessionRefPurpose), and the id again.
std::string seal_session_ref(const KeyRing& keys, std::string_view sid);
std::optional<std::string> open_session_ref(const KeyRing& keys, std::string_view ref);

class IdentityMinter {
 public:
  // key_text: a PEM EC private key (ES256), else a shared secret of at
  // least 32 bytes (trailing whitespace ignored; HS256).
  static std::optional<IdentityMinter> create(std::string_view key_text, std::string issuer,
                                              std::string audience, std::string* error);

  // A signed assertion valid for `lifetime` seconds (at most 300).
  std::string mint(const Identity& who, int64_t now, int64_t lifetime) const;
  bool is_es256() const { return es256_; }

  // An assertion this key signed, with this issuer and audience, not
  // expired, naming a subject and a session: its identity; else nullopt
  // and the reason in *why (never the token).  The algorithm is the key's
  // own (HS256 or ES256), whatever the token's header says.
  std::optional<AssertedIdentity> read(std::string_view token, int64_t now, std::string* why) const;

 private:
  std::string key_;
  std::string public_pem_;  // ES256: the key's public half, for read()
  bool es256_ = false;
  std::string issuer_, audience_;
};

// Access tokens this worker has already opened, by their exact text: the
// guard then skips the base64url decoding, AES-GCM open and record parsing
// of a token it has seen (a client sends the same token for up to its
// lifetime).  Only a byte-identical token hits, so nothing unauthenticated is
// ever trusted; expiry and the live session are still checked on every
// request.  Bounded: emptied when full.
class TokenCache {
 public:
  static constexpr size_t kMaxEntries = 10000;

  // The claims stay put until the next add (which may empty the cache).
  const AccessClaims* find(std::string_view token) {
    probe_.assign(token);  // C++17 unordered_map has no lookup by view; this buffer is reused
    auto it = entries_.find(probe_);
    return it == entries_.end() ? nullptr : &it->second;
  }
  const AccessClaims* add(std::string_view token, AccessClaims claims) {
    if (entries_.size() >= kMaxEntries) entries_.clear();
    return &entries_.insert_or_assign(std::string(token), std::move(claims)).first->second;
  }
  size_t size() const { return entries_.size(); }

 private:
  // Only tokens that opened are ever added, and their last characters (the
  // base64url of the AES-GCM tag) are random: those alone are hashed, not
  // the ~170 characters of the token.  A chosen token only picks which short
  // chain its lookup compares against.
  struct TailHash {
    size_t operator()(const std::string& token) const noexcept {
      std::string_view t(token);
      return std::hash<std::string_view>{}(t.size() > 16 ? t.substr(t.size() - 16) : t);
    }
  };
  // A probe is compared in constant time (ct_equal): how long a lookup
  // takes never tells how much of a cached token a guess got right.
  struct SameToken {
    bool operator()(const std::string& a, const std::string& b) const noexcept;
  };
  std::unordered_map<std::string, AccessClaims, TailHash, SameToken> entries_;
  std::string probe_;
};

// Assertions are reused per session until close to expiry rather than
// signed on every request: one cache per worker process (which also holds
// the worker's TokenCache and the guard's per-request buffers).
class IdentityCache {
 public:
  TokenCache tokens;

  static constexpr int64_t kLifetime = 300;
  static constexpr int64_t kRenewBefore = 60;
  static constexpr size_t kMaxEntries = 100000;

  struct Entry {
    std::string jwt;
    int64_t exp;
    Identity who;
    // The session's log tag (a non-reversible digest of the sid, 16
    // chars), kept beside its assertion: one lookup per request for both.
    std::string tag;
  };

  // The cached assertion for this session, or a fresh one.
  // keys: seals the assertion's session reference (none when null).
  const std::string& get(const IdentityMinter& minter, const KeyRing* keys, const std::string& sid,
                         const Identity& who, int64_t now) {
    return assertion(minter, keys, sid, who.sub, who.client_id, who.scope, who.claims, who.subject_type, now).jwt;
  }
  const Entry& assertion(const IdentityMinter& minter, const KeyRing* keys, const std::string& sid,
                         std::string_view sub, std::string_view client_id, std::string_view scope,
                         std::string_view claims, std::string_view subject_type, int64_t now);
  size_t size() const { return entries_.size(); }

  // The guard's per-request buffers (store key, the session record read
  // and decoded), reused so that a check allocates nothing once the worker
  // is warm.  The record and the session hold the provider's tokens in the
  // clear: wipe_scratch() overwrites them when the request's result is
  // released (mcpa_guard_result_free), so they live as long as one request.
  std::string scratch_key, scratch_record;
  std::string scratch_tag, scratch_tool;  // a denial's session tag, the tool called
  std::string scratch_scope;              // the token's and the session's scopes both
  Session scratch_session;
  void wipe_scratch();

 private:
  std::unordered_map<std::string, Entry> entries_;
  int64_t next_prune_ = 0;  // expired entries are dropped once a minute
};

// A session's tag for logs: a non-reversible digest of its id, 16 chars,
// the same in the access log ($mcp_auth_session) and the audit log.
std::string session_log_tag(std::string_view sid);

}  // namespace mcpauth
