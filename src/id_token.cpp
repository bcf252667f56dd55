#include "id_token.hpp"
#include "json.hpp"

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <memory>

#include "crypto.hpp"
#include "encoding.hpp"
#include "run_memo.hpp"

namespace mcpauth {
namespace {

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
struct EcdsaSigFree { void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); } };

// RFC 7518 §3.3 (RSASSA-PKCS1-v1_5) and §3.4 (ECDSA, the signature r||s)
// over the JWS signing input, with OpenSSL directly: libjwt 1.10 refuses
// every header typ but "JWT", and an ID-JAG's is oauth-id-jag+jwt.  `alg`
// already fits the key (jwk_allows_alg).
bool signature_verifies(std::string_view alg, const std::string& pem, std::string_view input,
                        std::string_view signature_b64) {
  auto sig = b64url_decode(signature_b64);
  if (!sig || sig->empty()) return false;
  const std::string_view bits = alg.substr(2);
  const EVP_MD* md = bits == "256" ? EVP_sha256() : bits == "384" ? EVP_sha384() : EVP_sha512();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return false;
  std::string der;
  if (alg[0] == 'E') {
    const size_t half = bits == "256" ? 32 : bits == "384" ? 48 : 66;
    if (sig->size() != 2 * half) return false;
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()), static_cast<int>(half), nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig->data()) + half, static_cast<int>(half), nullptr);
    if (!es || !r || !s || ECDSA_SIG_set0(es.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(es.get(), &out);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
  } else {
    der = std::move(*sig);
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

using Result = std::variant<IdTokenClaims, std::string>;

std::atomic<uint64_t> signature_checks{0};

Result fail(const char* why) { return std::string("id_token: ") + why; }

struct Parts {
  std::string_view header, payload, signature;
};

// Splits a compact JWS into exactly three non-empty base64url segments.
std::optional<Parts> split(std::string_view jwt) {
  std::size_t a = jwt.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  std::size_t b = jwt.find('.', a + 1);
  if (b == std::string_view::npos || jwt.find('.', b + 1) != std::string_view::npos) return std::nullopt;
  Parts p{jwt.substr(0, a), jwt.substr(a + 1, b - a - 1), jwt.substr(b + 1)};
  if (p.header.empty() || p.payload.empty() || p.signature.empty()) return std::nullopt;
  return p;
}

const char* str_member(const cJSON* obj, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(item) ? item->valuestring : nullptr;
}

// NumericDate (RFC 7519 §2): a JSON number, possibly non-integer; truncated.
enum class NumState { absent, bad, ok };
NumState num_member(const cJSON* obj, const char* name, int64_t* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (item == nullptr) return NumState::absent;
  if (!cJSON_IsNumber(item)) return NumState::bad;
  double v = item->valuedouble;
  if (!std::isfinite(v) || v < 0 || v > 1e15) return NumState::bad;
  *out = static_cast<int64_t>(v);
  return NumState::ok;
}

bool is_supported_alg(std::string_view alg) {
  return alg == "RS256" || alg == "RS384" || alg == "RS512" || alg == "ES256" || alg == "ES384" ||
         alg == "ES512";
}

// OIDC Core §3.1.3.7 step 3/4: aud contains client_id; with several
// audiences azp must be present and be our client_id.
bool audience_ok(const cJSON* claims, const std::string& client_id) {
  const cJSON* aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
  const char* azp = str_member(claims, "azp");
  // An azp, when present, must be us (step 5).
  if (cJSON_GetObjectItemCaseSensitive(claims, "azp") != nullptr && (azp == nullptr || client_id != azp))
    return false;
  if (cJSON_IsString(aud)) return client_id == aud->valuestring;
  if (!cJSON_IsArray(aud)) return false;
  int count = 0;
  bool found = false;
  const cJSON* entry = nullptr;
  cJSON_ArrayForEach(entry, aud) {
    if (!cJSON_IsString(entry)) return false;
    ++count;
    if (client_id == entry->valuestring) found = true;
  }
  if (!found) return false;
  if (count > 1 && azp == nullptr) return false;
  return true;
}

}  // namespace

std::optional<std::string> jwt_header_kid(std::string_view jwt) {
  if (jwt.size() > kIdTokenMaxBytes) return std::nullopt;
  auto parts = split(jwt);
  if (!parts) return std::nullopt;
  Json header = jws_json_segment(parts->header);
  if (!header) return std::nullopt;
  const char* kid = str_member(header.get(), "kid");
  if (kid == nullptr) return std::nullopt;
  return std::string(kid);
}

namespace {

// The claim rules of OIDC Core §3.1.3.7 (steps 2-3, 9-11) on a payload
// segment; the claims, with the payload's JSON text, on success.
Result check_claims(std::string_view payload, const IdTokenExpectations& expect) {
  auto bytes = b64url_decode(payload);
  if (!bytes) return fail("malformed payload");
  Json claims(cJSON_ParseWithLength(bytes->data(), bytes->size()));
  if (!claims || !cJSON_IsObject(claims.get())) return fail("malformed payload");
  const cJSON* c = claims.get();

  const char* iss = str_member(c, "iss");
  if (iss == nullptr || expect.issuer != iss) return fail("iss mismatch");
  if (!audience_ok(c, expect.client_id)) return fail("aud/azp mismatch");

  IdTokenClaims out;
  if (num_member(c, "exp", &out.exp) != NumState::ok) return fail("missing or bad exp");
  if (num_member(c, "iat", &out.iat) != NumState::ok) return fail("missing or bad iat");
  if (out.exp <= expect.now - expect.leeway) return fail("expired");
  if (out.iat > expect.now + expect.leeway) return fail("iat in the future");
  if (expect.max_iat_age > 0 && out.iat < expect.now - expect.max_iat_age - expect.leeway)
    return fail("iat too old");
  int64_t nbf = 0;
  NumState nbf_state = num_member(c, "nbf", &nbf);
  if (nbf_state == NumState::bad) return fail("bad nbf");
  if (nbf_state == NumState::ok && nbf > expect.now + expect.leeway) return fail("not yet valid");

  if (!expect.nonce.empty()) {
    const char* nonce = str_member(c, "nonce");
    if (nonce == nullptr || !ct_equal(nonce, expect.nonce)) return fail("nonce mismatch");
  }

  const char* sub = str_member(c, "sub");
  if (sub == nullptr || *sub == '\0') return fail("missing sub");
  out.sub = sub;
  if (const char* v = str_member(c, "name")) out.name = v;
  if (const char* v = str_member(c, "email")) out.email = v;
  if (const char* v = str_member(c, "preferred_username")) out.preferred_username = v;
  const cJSON* ev = cJSON_GetObjectItemCaseSensitive(c, "email_verified");
  out.email_verified = cJSON_IsTrue(ev);
  out.payload.assign(bytes->data(), bytes->size());
  return out;
}

}  // namespace

namespace {

// The signature of a compact JWS of at most kIdTokenMaxBytes: nullptr when
// it verifies with one of keys, else why not.
const char* check_signature(std::string_view jwt, const Parts& parts, const std::vector<Jwk>& keys) {
  Json header = jws_json_segment(parts.header);
  if (!header) return "malformed header";
  const char* alg_c = str_member(header.get(), "alg");
  if (alg_c == nullptr) return "header has no alg";
  std::string alg = alg_c;
  // Asymmetric algorithms only: never "none", never HS* (a public key must
  // not become an HMAC secret).
  if (!is_supported_alg(alg)) return "unsupported alg";
  // RFC 7515 §4.1.11: we understand no extension, so any "crit" is fatal.
  if (cJSON_GetObjectItemCaseSensitive(header.get(), "crit") != nullptr) return "crit header not supported";

  const cJSON* kid_item = cJSON_GetObjectItemCaseSensitive(header.get(), "kid");
  if (kid_item != nullptr && !cJSON_IsString(kid_item)) return "kid is not a string";
  const Jwk* key = nullptr;
  if (kid_item != nullptr) {
    std::string_view kid = kid_item->valuestring;
    bool kid_known = false;
    for (const Jwk& k : keys) {
      if (k.kid != kid) continue;
      kid_known = true;
      if (jwk_allows_alg(k, alg)) { key = &k; break; }
    }
    if (key == nullptr) return kid_known ? "alg does not fit the key" : "unknown kid";
  } else {
    int compatible = 0;
    for (const Jwk& k : keys) {
      if (jwk_allows_alg(k, alg)) { key = &k; ++compatible; }
    }
    if (compatible != 1) return "no kid and no single key for alg";
  }

  // The signature, under the algorithm chosen above and no other.
  signature_checks.fetch_add(1, std::memory_order_relaxed);
  const std::string_view input = jwt.substr(0, parts.header.size() + 1 + parts.payload.size());
  if (!signature_verifies(alg, key->pem, input, parts.signature)) return "bad signature";
  return nullptr;
}

}  // namespace

Result verify_id_token(std::string_view jwt, const std::vector<Jwk>& keys, const IdTokenExpectations& expect) {
  if (expect.issuer.empty() || expect.client_id.empty()) return fail("expectations lack issuer or client_id");
  if (jwt.size() > kIdTokenMaxBytes) return fail("token too large");
  auto parts = split(jwt);
  if (!parts) return fail("not a compact JWS");
  if (const char* why = check_signature(jwt, *parts, keys)) return fail(why);
  // Claims, from the very payload libjwt just verified.
  return check_claims(parts->payload, expect);
}

std::optional<std::string> verify_jws(std::string_view jwt, const std::vector<Jwk>& keys, std::string* why) {
  auto parts = jwt.size() <= kIdTokenMaxBytes ? split(jwt) : std::nullopt;
  if (!parts) {
    *why = "not a compact JWS";
    return std::nullopt;
  }
  if (const char* bad = check_signature(jwt, *parts, keys)) {
    *why = bad;
    return std::nullopt;
  }
  auto payload = b64url_decode(parts->payload);
  if (!payload) *why = "malformed payload";
  return payload;
}

Result read_refreshed_id_token(std::string_view jwt, const IdTokenExpectations& expect, std::string_view sub) {
  if (expect.issuer.empty() || expect.client_id.empty()) return fail("expectations lack issuer or client_id");
  if (jwt.size() > kIdTokenMaxBytes) return fail("token too large");
  auto parts = split(jwt);
  if (!parts) return fail("not a compact JWS");
  Result r = check_claims(parts->payload, expect);
  if (auto* c = std::get_if<IdTokenClaims>(&r))
    if (c->sub != sub) return fail("sub differs from the login's");  // OIDC Core §12.2
  return r;
}

uint64_t id_token_signature_checks() { return signature_checks.load(std::memory_order_relaxed); }

namespace {

// The claims as the run memo keeps them: each field length-prefixed.
void put_field(std::string& out, std::string_view v) {
  const uint32_t n = static_cast<uint32_t>(v.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(v);
}

bool get_field(std::string_view& in, std::string* v) {
  if (in.size() < 4) return false;
  uint32_t n = 0;
  for (size_t i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  in.remove_prefix(4);
  if (in.size() < n) return false;
  v->assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

std::string encode_claims(const IdTokenClaims& c) {
  std::string out;
  put_field(out, c.sub);
  put_field(out, c.name);
  put_field(out, c.email);
  put_field(out, c.preferred_username);
  put_field(out, c.email_verified ? "1" : "0");
  put_field(out, std::to_string(c.exp));
  put_field(out, std::to_string(c.iat));
  put_field(out, c.payload);
  return out;
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<IdTokenClaims> decode_claims(std::string_view in) {
  IdTokenClaims c;
  std::string verified, exp, iat;
  if (!get_field(in, &c.sub) || !get_field(in, &c.name) || !get_field(in, &c.email) ||
      !get_field(in, &c.preferred_username) || !get_field(in, &verified) || !get_field(in, &exp) ||
      !get_field(in, &iat) || !get_field(in, &c.payload) || !in.empty())
    return std::nullopt;
  auto e = parse_int(exp);
  auto i = parse_int(iat);
  if (!e || !i) return std::nullopt;
  c.email_verified = verified == "1";
  c.exp = *e;
  c.iat = *i;
  return c;
}

}  // namespace

Result verify_id_token_once(std::string_view jwt, const std::vector<Jwk>& keys, const IdTokenExpectations& expect) {
  RunMemo* memo = current_run_memo();
  if (!memo) return verify_id_token(jwt, keys, expect);
  MemoKey key("id_token v2");
  key.add(jwt);
  key.add(static_cast<int64_t>(keys.size()));
  for (const Jwk& k : keys) key.add(k.kid).add(k.kty).add(k.alg).add(k.crv).add(k.pem);
  key.add(expect.issuer).add(expect.client_id).add(expect.nonce);
  key.add(expect.now).add(expect.leeway).add(expect.max_iat_age);
  const std::string digest = key.digest();
  if (const std::string* kept = memo->find(digest)) {
    if (auto claims = decode_claims(*kept)) return *claims;
  }
  Result r = verify_id_token(jwt, keys, expect);
  if (const auto* claims = std::get_if<IdTokenClaims>(&r)) memo->keep(digest, encode_claims(*claims));
  return r;
}

Json jws_json_segment(std::string_view segment) {
  auto bytes = b64url_decode(segment);
  if (!bytes) return nullptr;
  Json obj(cJSON_ParseWithLength(bytes->data(), bytes->size()));
  if (!obj || !cJSON_IsObject(obj.get())) return nullptr;
  return obj;
}

}  // namespace mcpauth
