#include "identity.hpp"

#include "json.hpp"
#include "../src/crypto.hpp"  // mcpauth::ct_equal

#include <jwt.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>

namespace toolserver {

namespace {

constexpr long kLeewaySeconds = 30;
constexpr long kMaxLifetimeSeconds = 300;  // assertions are minted per request
constexpr size_t kMaxTokenBytes = 8192;

struct JwtDeleter {
    void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

bool read_file(const std::string& path, std::vector<unsigned char>& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

// Reads an integer claim; false when absent or not a number.
bool int_claim(jwt_t* jwt, const char* name, long& value) {
    errno = 0;
    value = jwt_get_grant_int(jwt, name);
    return errno == 0;
}

bool audience_matches(jwt_t* jwt, const std::string& expected) {
    char* raw = jwt_get_grants_json(jwt, "aud");
    if (!raw) return false;
    JsonPtr aud(cJSON_Parse(raw));
    std::free(raw);  // libjwt 1.10 allocates with malloc
    if (cJSON_IsString(aud.get())) return expected == aud->valuestring;
    const cJSON* list = cJSON_IsArray(aud.get()) ? aud.get() : nullptr;
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, list) {
        if (cJSON_IsString(item) && expected == item->valuestring) return true;
    }
    return false;
}

// The "claims" member: claim paths mapped to arrays of strings, empty when
// absent. nullopt for anything else: an assertion read only in part could
// let a claim rule pass or fail by accident.
std::optional<mcpauth::ClaimSet> claims_member(jwt_t* jwt) {
    char* raw = jwt_get_grants_json(jwt, "claims");
    if (!raw) return mcpauth::ClaimSet();
    JsonPtr claims(cJSON_Parse(raw));
    std::free(raw);
    return mcpauth::ClaimSet::from_cjson(claims.get());
}

}  // namespace

std::unique_ptr<IdentityVerifier> IdentityVerifier::create(const Config& cfg, std::string& error) {
    std::unique_ptr<IdentityVerifier> v(new IdentityVerifier());
    v->iss_ = cfg.identity_iss;
    v->aud_ = cfg.identity_aud;
    if (!cfg.identity_public_key_file.empty()) {
        v->es256_ = true;
        if (!read_file(cfg.identity_public_key_file, v->key_) || v->key_.empty()) {
            error = "cannot read --identity-public-key file";
            return nullptr;
        }
        return v;
    }
    if (cfg.identity_key_file.empty()) {
        error = "no identity key: pass --identity-key FILE (or --identity-public-key, or --insecure-no-auth)";
        return nullptr;
    }
    if (!read_file(cfg.identity_key_file, v->key_)) {
        error = "cannot read --identity-key file";
        return nullptr;
    }
    while (!v->key_.empty() && std::strchr(" \t\r\n", v->key_.back()) != nullptr) v->key_.pop_back();
    if (v->key_.size() < 32) {
        error = "--identity-key must hold at least 32 bytes (e.g. openssl rand -hex 32)";
        return nullptr;
    }
    return v;
}

namespace {

// The time checks of verify_uncached, for a cached assertion.
bool times_ok(long exp, long iat, long nbf, bool has_nbf, long now) {
    return !(exp + kLeewaySeconds < now) && !(exp > now + kMaxLifetimeSeconds + kLeewaySeconds) &&
           !(iat > now + kLeewaySeconds) && !(has_nbf && nbf > now + kLeewaySeconds);
}

}  // namespace

size_t IdentityVerifier::TailHash::operator()(std::string_view token) const noexcept {
    constexpr size_t kTailBytes = 32;
    return std::hash<std::string_view>()(token.size() > kTailBytes ? token.substr(token.size() - kTailBytes) : token);
}

bool IdentityVerifier::ConstantTimeEqual::operator()(std::string_view a, std::string_view b) const noexcept {
    return mcpauth::ct_equal(a, b);
}

bool IdentityVerifier::verify(std::string_view token, Identity& out, std::string& why) const {
    auto hit = cache_.find(token);
    if (hit != cache_.end()) {
        const Verified& v = *hit->second;
        if (times_ok(v.exp, v.iat, v.nbf, v.has_nbf, static_cast<long>(std::time(nullptr)))) {
            out = v.identity;
            return true;
        }
        cache_.erase(hit);  // the full check below says why
    }
    return verify_uncached(std::string(token), out, why);
}

bool IdentityVerifier::verify_uncached(const std::string& token, Identity& out, std::string& why) const {
    if (token.empty()) {
        why = "missing identity assertion";
        return false;
    }
    if (token.size() > kMaxTokenBytes) {
        why = "identity assertion too large";
        return false;
    }
    jwt_t* raw = nullptr;
    if (jwt_decode(&raw, token.c_str(), key_.data(), static_cast<int>(key_.size())) != 0 || !raw) {
        why = "identity assertion signature or format invalid";
        return false;
    }
    JwtPtr jwt(raw);
    // libjwt picks the algorithm from the token header; insist on ours so an
    // HS256 token "signed" with a public key (or alg=none) is never accepted.
    if (jwt_get_alg(jwt.get()) != (es256_ ? JWT_ALG_ES256 : JWT_ALG_HS256)) {
        why = "identity assertion uses an unexpected algorithm";
        return false;
    }
    const char* iss = jwt_get_grant(jwt.get(), "iss");
    if (!iss || iss_ != iss) {
        why = "identity assertion has the wrong issuer";
        return false;
    }
    if (!audience_matches(jwt.get(), aud_)) {
        why = "identity assertion has the wrong audience";
        return false;
    }
    const long now = static_cast<long>(std::time(nullptr));
    long exp = 0, iat = 0, nbf = 0;
    if (!int_claim(jwt.get(), "exp", exp) || !int_claim(jwt.get(), "iat", iat)) {
        why = "identity assertion lacks exp or iat";
        return false;
    }
    if (exp + kLeewaySeconds < now) {
        why = "identity assertion expired";
        return false;
    }
    if (exp > now + kMaxLifetimeSeconds + kLeewaySeconds) {
        why = "identity assertion lives too long";
        return false;
    }
    if (iat > now + kLeewaySeconds) {
        why = "identity assertion issued in the future";
        return false;
    }
    const bool has_nbf = int_claim(jwt.get(), "nbf", nbf);
    if (has_nbf && nbf > now + kLeewaySeconds) {
        why = "identity assertion not yet valid";
        return false;
    }
    const char* sub = jwt_get_grant(jwt.get(), "sub");
    if (!sub || !*sub) {
        why = "identity assertion lacks sub";
        return false;
    }
    auto claims = claims_member(jwt.get());
    if (!claims) {
        why = "identity assertion has a malformed claims member";
        return false;
    }
    const char* client_id = jwt_get_grant(jwt.get(), "client_id");
    const char* scope = jwt_get_grant(jwt.get(), "scope");
    out.claims = std::move(*claims);
    out.subject = sub;
    out.client_id = client_id ? client_id : "";
    out.scope = scope ? scope : "";
    if (cache_.size() >= kMaxCached) cache_.clear();
    auto entry = std::make_unique<Verified>(Verified{token, out, exp, iat, nbf, has_nbf});
    const std::string_view key = entry->token;
    cache_.erase(key);  // (none expected) a key must always view its own entry
    cache_.emplace(key, std::move(entry));
    return true;
}

}  // namespace toolserver
