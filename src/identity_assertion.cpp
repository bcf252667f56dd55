#include "identity_assertion.hpp"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <new>

#include "claims.hpp"
#include "crypto.hpp"
#include "encoding.hpp"
#include "json.hpp"

namespace mcpauth {
namespace {

// The purpose byte of session references (session.hpp's are 0x21..0x25).
constexpr uint8_t kSessionRefPurpose = 0x26;
constexpr size_t kMaxAssertionBytes = 16384;

// The SubjectPublicKeyInfo PEM of a PEM private key; "" when it is not one.
std::string public_pem_of(std::string_view private_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_mem_buf(private_pem.data(), int(private_pem.size())),
                                               BIO_free);
  if (!in) throw std::bad_alloc();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  if (!key) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) throw std::bad_alloc();
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, size_t(n));
}

const char* grant_str(jwt_t* jwt, const char* name) {
  const char* v = jwt_get_grant(jwt, name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::string seal_session_ref(const KeyRing& keys, std::string_view sid) {
  return keys.seal_deterministic(kSessionRefPurpose, sid);
}

std::optional<std::string> open_session_ref(const KeyRing& keys, std::string_view ref) {
  if (ref.size() > 512) return std::nullopt;
  return keys.open(kSessionRefPurpose, ref);
}

std::optional<IdentityMinter> IdentityMinter::create(std::string_view key_text, std::string issuer,
                                                     std::string audience, std::string* error) {
  IdentityMinter m;
  m.issuer_ = std::move(issuer);
  m.audience_ = std::move(audience);
  if (key_text.find("-----BEGIN") != std::string_view::npos) {
    m.es256_ = true;
    m.key_.assign(key_text);
    // prove the key works now rather than on the first request
    if (m.mint({"probe", "probe", "", "", "", ""}, 0, 1).empty()) {
      *error = "the identity key is PEM but not an EC P-256 private key";
      return std::nullopt;
    }
    m.public_pem_ = public_pem_of(key_text);
    if (m.public_pem_.empty()) {
      *error = "the identity key's public half cannot be derived";
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
      (!who.session_ref.empty() && jwt_add_grant(jwt.get(), "sid", who.session_ref.c_str())) ||
      (!who.subject_type.empty() && jwt_add_grant(jwt.get(), "subject_type", who.subject_type.c_str())) ||
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

std::optional<AssertedIdentity> IdentityMinter::read(std::string_view token, int64_t now, std::string* why) const {
  const auto fail = [&](const char* reason) -> std::optional<AssertedIdentity> {
    *why = reason;
    return std::nullopt;
  };
  if (token.size() > kMaxAssertionBytes) return fail("the assertion is too large");
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) == std::string_view::npos)
    return fail("the assertion is not a JWT");
  // libjwt takes the header's word for the algorithm: an HS256 token
  // "signed" with our ES256 public key must not pass, so the header is read
  // first and must name the key's own algorithm.
  auto header_bytes = b64url_decode(token.substr(0, dot));
  if (!header_bytes) return fail("the assertion's header is not base64url");
  Json header(cJSON_ParseWithLength(header_bytes->data(), header_bytes->size()));
  const cJSON* alg = header ? cJSON_GetObjectItemCaseSensitive(header.get(), "alg") : nullptr;
  if (!cJSON_IsString(alg) || std::string_view(alg->valuestring) != (es256_ ? "ES256" : "HS256"))
    return fail("the assertion is not signed with the gateway's identity key");
  if (cJSON_GetObjectItemCaseSensitive(header.get(), "crit")) return fail("the assertion has a crit header");

  const std::string text(token);
  const std::string& key = es256_ ? public_pem_ : key_;
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                            static_cast<int>(key.size()));
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  if (rc != 0 || !jwt || jwt_get_alg(jwt.get()) != (es256_ ? JWT_ALG_ES256 : JWT_ALG_HS256))
    return fail("the assertion's signature does not verify with the gateway's identity key");

  const char* iss = grant_str(jwt.get(), "iss");
  const char* aud = grant_str(jwt.get(), "aud");
  if (!iss || issuer_ != iss || !aud || audience_ != aud) return fail("the assertion is for another issuer or audience");
  errno = 0;
  const long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno != 0 || exp <= 0) return fail("the assertion has no expiry");
  if (exp <= now) return fail("the assertion has expired");
  AssertedIdentity out;
  const char* sub = grant_str(jwt.get(), "sub");
  const char* client = grant_str(jwt.get(), "client_id");
  const char* sid = grant_str(jwt.get(), "sid");
  if (!sub || !client) return fail("the assertion names no subject");
  if (!sid) return fail("the assertion names no session");
  out.sub = sub;
  out.client_id = client;
  out.session_ref = sid;
  out.exp = exp;
  return out;
}

bool TokenCache::SameToken::operator()(const std::string& a, const std::string& b) const noexcept {
  return ct_equal(a, b);
}

const IdentityCache::Entry& IdentityCache::assertion(const IdentityMinter& minter, const KeyRing* keys,
                                                    const std::string& sid, std::string_view sub,
                                                    std::string_view client_id, std::string_view scope,
                                                    std::string_view claims, std::string_view subject_type,
                                                    int64_t now) {
  auto it = entries_.find(sid);
  if (it != entries_.end() && it->second.exp - now > kRenewBefore && it->second.who.sub == sub &&
      it->second.who.client_id == client_id && it->second.who.scope == scope && it->second.who.claims == claims &&
      it->second.who.subject_type == subject_type)
    return it->second;
  Identity who{std::string(sub), std::string(client_id), std::string(scope), std::string(claims),
               keys ? seal_session_ref(*keys, sid) : std::string(), std::string(subject_type)};
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
