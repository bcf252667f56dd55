#include "jwks.hpp"
#include "json.hpp"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <memory>

#include "encoding.hpp"

namespace mcpauth {
namespace {

struct BnFree { void operator()(BIGNUM* p) const { BN_free(p); } };
struct BldFree { void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); } };
struct ParamFree { void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); } };
struct CtxFree { void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };

using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A member that is a string, or nullopt (absent or of another type).
std::optional<std::string> str_member(const cJSON* obj, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsString(item) || item->valuestring == nullptr) return std::nullopt;
  return std::string(item->valuestring);
}

// A base64url member decoded to bytes; nullopt when absent, malformed or empty.
std::optional<std::string> b64_member(const cJSON* obj, const char* name) {
  auto text = str_member(obj, name);
  if (!text) return std::nullopt;
  auto bytes = b64url_decode(*text);
  if (!bytes || bytes->empty()) return std::nullopt;
  return bytes;
}

// Builds a public key from OSSL params and checks it (on-curve point,
// odd RSA modulus and exponent...).
PkeyPtr key_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return nullptr;
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return nullptr;
  PkeyPtr key(raw);
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

PkeyPtr rsa_key(const cJSON* jwk) {
  auto n = b64_member(jwk, "n");
  auto e = b64_member(jwk, "e");
  if (!n || !e || e->size() > 8) return nullptr;
  BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return nullptr;
  // Size bounds before building: weak keys are refused, huge ones are a
  // denial-of-service lever on every verification.
  if (BN_num_bits(bn_n.get()) < kJwksMinRsaBits || BN_num_bits(bn_n.get()) > 16384) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    return nullptr;
  PkeyPtr key = key_from_params("RSA", bld.get());
  if (!key || EVP_PKEY_get_bits(key.get()) < kJwksMinRsaBits) return nullptr;
  return key;
}

PkeyPtr ec_key(const cJSON* jwk, const std::string& crv) {
  const char* group = nullptr;
  std::size_t coord = 0;
  if (crv == "P-256") { group = "prime256v1"; coord = 32; }
  else if (crv == "P-384") { group = "secp384r1"; coord = 48; }
  else if (crv == "P-521") { group = "secp521r1"; coord = 66; }
  else return nullptr;
  auto x = b64_member(jwk, "x");
  auto y = b64_member(jwk, "y");
  // RFC 7518 §6.2.1.2: coordinates are the full field size, no shorter.
  if (!x || !y || x->size() != coord || y->size() != coord) return nullptr;
  std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    return nullptr;
  return key_from_params("EC", bld.get());
}

std::optional<std::string> to_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return std::nullopt;
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return std::nullopt;
  return std::string(data, static_cast<std::size_t>(len));
}

std::nullopt_t fail(std::string* error, const char* why) {
  if (error) *error = why;
  return std::nullopt;
}

// RFC 7517 §4.3: when key_ops is given it must allow "verify".
bool ops_allow_verify(const cJSON* jwk) {
  const cJSON* ops = cJSON_GetObjectItemCaseSensitive(jwk, "key_ops");
  if (ops == nullptr) return true;
  if (!cJSON_IsArray(ops)) return false;
  const cJSON* op = nullptr;
  cJSON_ArrayForEach(op, ops) {
    if (cJSON_IsString(op) && op->valuestring != nullptr && std::string_view(op->valuestring) == "verify")
      return true;
  }
  return false;
}

}  // namespace

bool jwk_allows_alg(const Jwk& key, std::string_view alg) {
  if (!key.alg.empty() && key.alg != alg) return false;
  if (key.kty == "RSA") return alg == "RS256" || alg == "RS384" || alg == "RS512";
  if (key.kty == "EC") {
    return (alg == "ES256" && key.crv == "P-256") || (alg == "ES384" && key.crv == "P-384") ||
           (alg == "ES512" && key.crv == "P-521");
  }
  return false;
}

std::optional<std::vector<Jwk>> parse_jwks(std::string_view json, std::string* error) {
  if (json.size() > kJwksMaxBytes) return fail(error, "jwks: document too large");
  Json doc(cJSON_ParseWithLength(json.data(), json.size()));
  if (!doc || !cJSON_IsObject(doc.get())) return fail(error, "jwks: not a JSON object");
  const cJSON* keys = cJSON_GetObjectItemCaseSensitive(doc.get(), "keys");
  if (!cJSON_IsArray(keys)) return fail(error, "jwks: no \"keys\" array");
  if (static_cast<std::size_t>(cJSON_GetArraySize(keys)) > kJwksMaxKeys)
    return fail(error, "jwks: too many keys");

  std::vector<Jwk> out;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, keys) {
    if (!cJSON_IsObject(item)) continue;
    auto use = str_member(item, "use");
    if (use && *use != "sig") continue;  // RFC 7517 §4.2: "enc" keys never verify
    const cJSON* use_item = cJSON_GetObjectItemCaseSensitive(item, "use");
    if (use_item && !use) continue;  // present but not a string
    if (!ops_allow_verify(item)) continue;
    auto kty = str_member(item, "kty");
    if (!kty) continue;

    Jwk jwk;
    jwk.kty = *kty;
    jwk.kid = str_member(item, "kid").value_or("");
    jwk.alg = str_member(item, "alg").value_or("");
    PkeyPtr key;
    if (jwk.kty == "RSA") {
      key = rsa_key(item);
    } else if (jwk.kty == "EC") {
      jwk.crv = str_member(item, "crv").value_or("");
      key = ec_key(item, jwk.crv);
    } else {
      continue;  // "oct", "OKP"...: not supported by libjwt 1.10
    }
    if (!key) continue;
    // A declared alg that does not fit the key type is a broken entry.
    if (!jwk.alg.empty() && !jwk_allows_alg(jwk, jwk.alg)) continue;
    auto pem = to_pem(key.get());
    if (!pem) continue;
    jwk.pem = std::move(*pem);
    out.push_back(std::move(jwk));
  }
  if (out.empty()) return fail(error, "jwks: no usable signing key");
  return out;
}

std::shared_ptr<const std::vector<Jwk>> parse_jwks_cached(std::string_view json, std::string* error) {
  struct Parsed {
    std::string text;
    std::shared_ptr<const std::vector<Jwk>> keys;
  };
  static thread_local Parsed slots[4];
  static thread_local size_t next = 0;
  for (const Parsed& p : slots)
    if (p.keys && p.text == json) return p.keys;
  auto parsed = parse_jwks(json, error);
  if (!parsed) return nullptr;
  Parsed& slot = slots[next++ % 4];
  slot.text.assign(json.data(), json.size());
  slot.keys = std::make_shared<const std::vector<Jwk>>(std::move(*parsed));
  return slot.keys;
}

bool jwks_covers(const std::shared_ptr<const std::vector<Jwk>>& keys, const std::optional<std::string>& kid) {
  if (!keys || keys->empty()) return false;
  return !kid || std::any_of(keys->begin(), keys->end(), [&](const Jwk& k) { return k.kid == *kid; });
}

}  // namespace mcpauth
