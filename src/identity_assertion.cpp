#include "identity_assertion.hpp"

#include <jwt.h>

#include <cstdlib>
#include <memory>
#include <new>

#include "claims.hpp"
#include "crypto.hpp"
#include "encoding.hpp"

namespace mcpauth {

std::optional<IdentityMinter> IdentityMinter::create(std::string_view key_text, std::string issuer,
                                                     std::string audience, std::string* error) {
  IdentityMinter m;
  m.issuer_ = std::move(issuer);
  m.audience_ = std::move(audience);
  if (key_text.find("-----BEGIN") != std::string_view::npos) {
    m.es256_ = true;
    m.key_.assign(key_text);
    // prove the key works now rather than on the first request
    if (m.mint({"probe", "probe", "", ""}, 0, 1).empty()) {
      *error = "the identity key is PEM but not an EC P-256 private key";
      return std::nullopt;
    }
    return m;
  }
  while (!key_text.empty() && (key_text.back() == '\n' || key_text.back() == '\r' ||
                               key_text.back() == ' ' || key_text.back() == '\t'))
    key_text.remove_suffix(1);
  if (key_text.size() < 32) {
    *error = "the identity key must hold at least 32 bytes (e.g. `openssl rand -hex 32`)";
    return std::nullopt;
  }
  m.key_.assign(key_text);
  return m;
}

std::string IdentityMinter::mint(const Identity& who, int64_t now, int64_t lifetime) const {
  if (lifetime > 300) lifetime = 300;
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::bad_alloc();
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  const auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  if (jwt_set_alg(jwt.get(), es256_ ? JWT_ALG_ES256 : JWT_ALG_HS256, key, static_cast<int>(key_.size())) != 0)
    return "";
  std::string jti = random_token(12);
  if (jwt_add_grant(jwt.get(), "iss", issuer_.c_str()) || jwt_add_grant(jwt.get(), "aud", audience_.c_str()) ||
      jwt_add_grant(jwt.get(), "sub", who.sub.c_str()) ||
      jwt_add_grant(jwt.get(), "client_id", who.client_id.c_str()) ||
      jwt_add_grant(jwt.get(), "scope", who.scope.c_str()) || jwt_add_grant(jwt.get(), "jti", jti.c_str()) ||
      jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now)) ||
      jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now + lifetime)))
    throw std::bad_alloc();
  if (!who.claims.empty()) {
    auto kept = ClaimSet::from_record(who.claims);
    if (!kept) return "";  // not a record the gateway wrote: no assertion
    if (jwt_add_grants_json(jwt.get(), ("{\"claims\":" + kept->to_json() + "}").c_str()) != 0)
      throw std::bad_alloc();
  }
  char* text = jwt_encode_str(jwt.get());
  if (!text) return "";
  std::string out(text);
  free(text);  // libjwt 1.10 allocates with malloc
  return out;
}

bool TokenCache::SameToken::operator()(const std::string& a, const std::string& b) const noexcept {
  return ct_equal(a, b);
}

const IdentityCache::Entry& IdentityCache::assertion(const IdentityMinter& minter, const std::string& sid,
                                                    std::string_view sub, std::string_view client_id,
                                                    std::string_view scope, std::string_view claims,
                                                    int64_t now) {
  auto it = entries_.find(sid);
  if (it != entries_.end() && it->second.exp - now > kRenewBefore && it->second.who.sub == sub &&
      it->second.who.client_id == client_id && it->second.who.scope == scope && it->second.who.claims == claims)
    return it->second;
  Identity who{std::string(sub), std::string(client_id), std::string(scope), std::string(claims)};
  if (it == entries_.end() && now >= next_prune_) {
    // Sessions end (revoked, expired, abandoned) without telling this
    // worker: drop their expired assertions once a minute, so the cache
    // holds the sessions of the last few minutes instead of growing to
    // kMaxEntries (~70 MB per worker) before it is emptied.
    for (auto e = entries_.begin(); e != entries_.end();)
      e = (e->second.exp <= now) ? entries_.erase(e) : std::next(e);
    next_prune_ = now + 60;
  }
  if (it == entries_.end() && entries_.size() >= kMaxEntries) {
    for (auto e = entries_.begin(); e != entries_.end();)
      e = (e->second.exp - now <= kRenewBefore) ? entries_.erase(e) : std::next(e);
    if (entries_.size() >= kMaxEntries) entries_.clear();
  }
  Entry& e = entries_[sid];
  e.jwt = minter.mint(who, now, kLifetime);
  e.exp = now + kLifetime;
  e.who = who;
  if (e.tag.empty()) e.tag = session_log_tag(sid);
  return e;
}

std::string session_log_tag(std::string_view sid) {
  return sha256_b64url("session-tag|" + std::string(sid)).substr(0, 16);
}

void IdentityCache::wipe_scratch() {
  wipe(scratch_record);
  scratch_record.clear();
  scratch_session.wipe_provider_tokens();
}

}  // namespace mcpauth
