// Shared scaffolding for the endpoint tests: a configured gateway, a
// MemoryStore with a fixed clock, a tiny cookie jar and helpers to read
// responses.  Header-only, included by the test_*endpoint*.cpp files.
#pragma once

#include <gtest/gtest.h>

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "crypto.hpp"
#include "deferred_run.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "pkce.hpp"
#include "replay_store.hpp"
#include "session.hpp"
#include "store.hpp"

namespace mcpauth_test {

using namespace mcpauth;

constexpr int64_t kT0 = 1'800'000'000;
inline const std::string kVerifier = "dBjftJeZ4CVP-mJ92K9ZfXZ1-0jvZ3tN2vZ9Qe0m0aQx";  // 44 chars
inline const std::string kRedirect = "https://client.example/cb";

inline std::string header(const Response& r, const std::string& name) {
  for (const auto& h : r.headers)
    if (h.first == name) return h.second;
  return "";
}

inline std::vector<std::string> headers(const Response& r, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& h : r.headers)
    if (h.first == name) out.push_back(h.second);
  return out;
}

// Query parameters of a URL (after '?').
inline Params query_of(const std::string& url) {
  auto q = url.find('?');
  auto p = Params::parse(q == std::string::npos ? "" : url.substr(q + 1));
  EXPECT_TRUE(p.has_value());
  return p ? *p : *Params::parse("");
}

inline std::string qget(const std::string& url, const std::string& name) {
  return query_of(url).get(name).value_or("");
}

inline std::string form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + pct_encode(k) + "=" + pct_encode(v);
  return out;
}

// The link of a page that tells the client an outcome (report_to_client),
// with the HTML escaping undone.
inline std::string return_link(const Response& r) {
  const std::string marker = "class=\"return\" rel=\"noreferrer\" href=\"";
  auto p = r.body.find(marker);
  if (p == std::string::npos) return "";
  p += marker.size();
  std::string href = r.body.substr(p, r.body.find('"', p) - p);
  std::string out;
  for (size_t i = 0; i < href.size(); ++i) {
    if (href.compare(i, 5, "&amp;") == 0) {
      out += '&';
      i += 4;
    } else if (href.compare(i, 6, "&quot;") == 0) {
      out += '"';
      i += 5;
    } else if (href.compare(i, 5, "&#39;") == 0) {
      out += '\'';
      i += 4;
    } else {
      out += href[i];
    }
  }
  return out;
}

// A browser's cookie jar: applies Set-Cookie, builds the Cookie header.
struct Jar {
  std::map<std::string, std::string> cookies;
  void apply(const Response& r) {
    for (const auto& sc : headers(r, "Set-Cookie")) {
      auto eq = sc.find('=');
      auto semi = sc.find(';');
      std::string name = sc.substr(0, eq);
      std::string value = sc.substr(eq + 1, semi - eq - 1);
      if (sc.find("Max-Age=0") != std::string::npos) cookies.erase(name);
      else cookies[name] = value;
    }
  }
  std::string header() const {
    std::string out;
    for (const auto& [k, v] : cookies) out += (out.empty() ? "" : "; ") + k + "=" + v;
    return out;
  }
};

// The fake upstream provider: an RSA key, its JWKS and signed ID tokens.
struct FakeIdp {
  EVP_PKEY* key = nullptr;
  std::string private_pem, jwks;
  std::string kid = "idp-1";

  static FakeIdp& get() {
    static FakeIdp idp;
    return idp;
  }
  FakeIdp() {
    key = EVP_RSA_gen(2048);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    private_pem.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
    jwks = jwks_with_kid(kid);
  }
  std::string bn(const char* name) const {
    BIGNUM* b = nullptr;
    EVP_PKEY_get_bn_param(key, name, &b);
    std::string out(static_cast<size_t>(BN_num_bytes(b)), '\0');
    BN_bn2bin(b, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(b);
    return b64url_encode(out);
  }
  std::string jwks_with_kid(const std::string& k) const {
    return R"({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":")" + k + R"(","n":")" +
           bn(OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" + bn(OSSL_PKEY_PARAM_RSA_E) + R"("}]})";
  }
  // claims_json: the JSON object of claims.
  // A JWS with a typ of its own (libjwt 1.10 always writes "JWT"), RS256.
  std::string sign_typed(const std::string& claims_json, const std::string& with_kid, const std::string& typ) const {
    const std::string input = b64url_encode(R"({"alg":"RS256","kid":")" + with_kid + R"(","typ":")" + typ + R"("})") +
                              "." + b64url_encode(claims_json);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t len = 0;
    std::string sig;
    if (EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
      sig.resize(len);
      if (EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
        sig.clear();
      sig.resize(len);
    }
    EVP_MD_CTX_free(md);
    return input + "." + b64url_encode(sig);
  }
  std::string sign(const std::string& claims_json, const std::string& with_kid = "idp-1") const {
    jwt_t* jwt = nullptr;
    jwt_new(&jwt);
    jwt_add_header(jwt, "kid", with_kid.c_str());
    jwt_add_grants_json(jwt, claims_json.c_str());
    jwt_set_alg(jwt, JWT_ALG_RS256, reinterpret_cast<const unsigned char*>(private_pem.data()),
                static_cast<int>(private_pem.size()));
    char* out = jwt_encode_str(jwt);
    std::string token = out ? out : "";
    free(out);
    jwt_free(jwt);
    return token;
  }
  std::string id_token(const std::string& nonce, int64_t now, const std::string& sub = "user-42",
                       const std::string& iss = "https://idp.example", const std::string& aud = "gateway",
                       const std::string& with_kid = "idp-1") const {
    return sign(R"({"iss":")" + iss + R"(","aud":")" + aud + R"(","sub":")" + sub + R"(","nonce":")" + nonce +
                    R"(","iat":)" + std::to_string(now) + R"(,"exp":)" + std::to_string(now + 300) +
                    R"(,"name":"Ada Lovelace","email":"ada@example.com"})",
                with_kid);
  }
  std::string token_response(const std::string& id_token, int64_t expires_in = 3600,
                             const std::string& refresh = "idp-refresh-1") const {
    return R"({"access_token":"idp-access-1","token_type":"Bearer","expires_in":)" + std::to_string(expires_in) +
           R"(,"refresh_token":")" + refresh + R"(","id_token":")" + id_token + R"("})";
  }
};

// A file under the test temp directory; returns its path.
inline std::string write_file(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "mcpauth-" + std::to_string(::getpid()) + "-" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr) << path;
  if (f) {
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
  }
  return path;
}

class Gateway : public ::testing::Test {
 protected:
  Config cf;
  MemoryStore store;
  int64_t now = kT0;
  Jar jar;
  // Every call over a deferred store (replay_store.hpp) whose operations
  // `store` answers, as Redis would through the glue: the same tests then
  // prove the endpoints replay correctly.  MCPA_UNIT_DEFERRED=1 turns it on
  // for every endpoint test (make unit-test runs them both ways).
  bool deferred = std::getenv("MCPA_UNIT_DEFERRED") != nullptr;
  int deferred_ops = 0;

  // Or every call through DeferredRun, the very objects the C boundary
  // runs a request over a deferred store with: the replay log, the worker's
  // session-record cache and sealed values in front of `redis` (which holds
  // them as Redis would).  pendings counts the runs that stopped at an
  // operation not answered yet.
  bool through_deferred_run = false;
  MemoryStore redis;
  int pendings = 0;

  // Deferred runs confirm their changes (mcpa_store_t.confirm_writes), as
  // over a Redis with replicas: every run that changed anything ends with
  // an MCPA_OP_SYNC, answered sync_answer.
  bool confirm_writes = true;
  StoreStatus sync_answer = StoreStatus::ok;
  int syncs = 0;
  std::vector<mcpa_op_e> performed;  // every deferred operation, in order
  std::string unreachable;           // a key prefix Redis "cannot be reached" for

  // Performs a pending operation on `st` as the glue does on Redis.
  StoreStatus perform(MemoryStore& st, const StoreOp& op, std::string* value) {
    performed.push_back(op.op);
    if (!unreachable.empty() && op.key.rfind(unreachable, 0) == 0) return StoreStatus::unavailable;
    switch (op.op) {
      case MCPA_OP_SYNC: return ++syncs, sync_answer;
      case MCPA_OP_GET: return st.get(op.key, value);
      case MCPA_OP_TAKE: return st.take(op.key, value);
      case MCPA_OP_DEL: return st.del(op.key);
      case MCPA_OP_PUT: {
        // the mode carries the entry's class as a flag (as the glue reads it)
        const int mode = op.mode & MCPA_PUT_MODE_MASK;
        const StoreClass cls =
            (op.mode & MCPA_PUT_UNAUTHENTICATED) ? StoreClass::unauthenticated : StoreClass::normal;
        return mode == MCPA_PUT_NEW          ? st.put_new(op.key, op.value, op.expires, cls)
               : mode == MCPA_PUT_REPLACE_IF ? st.replace_if(op.key, op.expect, op.value, op.expires)
                                             : st.put(op.key, op.value, op.expires, cls);
      }
      default: ADD_FAILURE() << "no operation"; return StoreStatus::error;
    }
  }

  template <class F>
  Response over_store(F&& f) {
    if (through_deferred_run) return over_deferred_run(f);
    if (!deferred) return f(static_cast<Store&>(store));
    std::string wire;  // the log as the glue carries it between runs
    for (uint32_t round = 0; round <= kMaxReplayAnswers; ++round) {
      ReplayLog log;
      EXPECT_TRUE(ReplayLog::decode(wire, &log));
      ReplayStore replay(log, confirm_writes);
      Response r;
      {
        ReplayScope scope(log);
        // A run ends by returning, a pending operation included: anything
        // thrown out of it ends the test program here.
        r = [&]() noexcept { return f(static_cast<Store&>(replay)); }();
      }
      if (replay.out_of_step()) {
        ADD_FAILURE() << "a rerun asked for another store operation than its log answered";
        return Response();
      }
      if (!replay.stopped()) return r;
      std::string value;
      StoreStatus st = perform(store, replay.pending_op(), &value);
      ++deferred_ops;
      log.answer(c_status(st), value);
      wire = log.encode();
    }
    ADD_FAILURE() << "more than kMaxReplayAnswers store operations for one request";
    return Response();
  }

  template <class F>
  Response over_deferred_run(F& f) {
    redis.now = now;
    std::string wire, value;  // what the glue carries between the runs
    int status = MCPA_OK;
    for (int round = 0; round < 32; ++round) {
      mcpa_replay_t replay{{wire.data(), wire.size()}, status, {value.data(), value.size()}};
      DeferredRun run(cf, replay, now, false, confirm_writes);
      EXPECT_TRUE(run.ok());
      Response r;
      StoreOp op;
      std::string next;
      // anything thrown out of a run ends the test program here
      const DeferredRun::End end = run.run([&](Store& st) noexcept { r = f(st); }, &op, &next);
      if (end == DeferredRun::End::done) return r;
      if (end == DeferredRun::End::failed) {
        ADD_FAILURE() << "a rerun asked for another store operation than its log answered";
        return Response();
      }
      ++pendings;
      value.clear();
      status = c_status(perform(redis, op, &value));
      wire = std::move(next);
    }
    ADD_FAILURE() << "more than 32 store operations for one request";
    return Response();
  }

  static int c_status(StoreStatus st) {
    switch (st) {
      case StoreStatus::ok: return MCPA_OK;
      case StoreStatus::not_found: return MCPA_NOT_FOUND;
      case StoreStatus::exists: return MCPA_EXISTS;
      case StoreStatus::conflict: return MCPA_CONFLICT;
      case StoreStatus::full: return MCPA_FULL;
      case StoreStatus::unavailable: return MCPA_UNAVAILABLE;
      default: return MCPA_ERROR;
    }
  }

  void SetUp() override {
    cf.issuer = "https://mcp.example";
    cf.scopes = {"mcp:tools", "mcp:read"};
    cf.provider_issuer = "https://idp.example";
    cf.provider_authorization_endpoint = "https://idp.example/authorize";
    cf.provider_token_endpoint = "https://idp.example/token";
    cf.provider_client_id = "gateway";
    cf.provider_client_secret_file = write_file("secret", "provider secret\n");
    cf.key_file = write_file("keys", KeyRing::generate_line("k1") + "\n");
    ASSERT_EQ(cf.load(), "");
    ASSERT_TRUE(cf.keys);
    ASSERT_EQ(cf.provider_client_secret, "provider secret");
  }

  Request request(const std::string& method, const std::string& args = "", const std::string& body = "",
                  const std::string& content_type = "") {
    Request r;
    r.method = method;
    r.args = args;
    r.body = body;
    r.content_type = content_type;
    r.cookie = jar.header();
    r.now = now;
    return r;
  }

  Response call(mcpa_endpoint_e ep, Request r) {
    store.now = now;
    r.now = now;
    Response resp = over_store([&](Store& st) { return handle_endpoint(ep, cf, st, r); });
    jar.apply(resp);
    return resp;
  }

  Response resume(mcpa_endpoint_e ep, const Response& asked, int status, const std::string& body,
                  const std::string& cookie_override = "\x01") {
    store.now = now;
    Request r = request("GET");
    if (cookie_override != "\x01") r.cookie = cookie_override;
    Response resp = over_store(
        [&](Store& st) { return resume_endpoint(ep, cf, st, r, asked.fetch.continuation, status, body); });
    jar.apply(resp);
    return resp;
  }

  // Registers a client; returns its client_id (and secret when confidential).
  std::string register_client(const std::string& json, std::string* secret = nullptr) {
    Response r = call(MCPA_EP_REGISTER, request("POST", "", json, "application/json"));
    EXPECT_EQ(r.status, 201) << r.body;
    auto p = Params::parse("");
    std::string id = json_string(r.body, "client_id");
    if (secret) *secret = json_string(r.body, "client_secret");
    return id;
  }

  std::string public_client(const std::string& redirects = "[\"" + kRedirect + "\"]") {
    return register_client(R"({"client_name":"Test App","token_endpoint_auth_method":"none","redirect_uris":)" +
                           redirects + "}");
  }

  // Crude extraction of a top-level string field from compact JSON.
  static std::string json_string(const std::string& json, const std::string& name) {
    std::string key = "\"" + name + "\":\"";
    auto p = json.find(key);
    if (p == std::string::npos) return "";
    p += key.size();
    return json.substr(p, json.find('"', p) - p);
  }
  static std::optional<long long> json_number(const std::string& json, const std::string& name) {
    std::string key = "\"" + name + "\":";
    auto p = json.find(key);
    if (p == std::string::npos) return std::nullopt;
    return std::stoll(json.substr(p + key.size()));
  }

  std::string authorize_args(const std::string& client_id, std::vector<std::pair<std::string, std::string>> extra = {},
                             bool with_redirect = true) {
    std::vector<std::pair<std::string, std::string>> p = {{"response_type", "code"},
                                                          {"client_id", client_id},
                                                          {"state", "client-state"},
                                                          {"code_challenge", s256_challenge(kVerifier)},
                                                          {"code_challenge_method", "S256"}};
    if (with_redirect) p.emplace_back("redirect_uri", kRedirect);
    for (auto& e : extra) {
      bool replaced = false;
      for (auto& q : p)
        if (q.first == e.first && !replaced) {
          q.second = e.second;
          replaced = true;
        }
      if (!replaced) p.push_back(e);
    }
    std::vector<std::pair<std::string, std::string>> kept;
    for (auto& q : p)
      if (q.second != "\x7f") kept.push_back(q);  // "\x7f" = drop this parameter
    return form(kept);
  }

  // GET /authorize and expect the consent redirect; returns the authz id.
  std::string authorize_to_consent(const std::string& client_id) {
    Response r = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id)));
    EXPECT_EQ(r.status, 303) << r.body;
    std::string loc = header(r, "Location");
    EXPECT_EQ(loc.rfind("https://mcp.example/consent?authz=", 0), 0u) << loc;
    return qget(loc, "authz");
  }

  // GET /consent; returns the CSRF token from the page.
  std::string consent_page(const std::string& authz, Response* out = nullptr) {
    Response r = call(MCPA_EP_CONSENT, request("GET", "authz=" + authz));
    EXPECT_EQ(r.status, 200) << r.body;
    if (out) *out = r;
    std::string marker = "name=\"csrf_token\" value=\"";
    auto p = r.body.find(marker);
    EXPECT_NE(p, std::string::npos) << r.body;
    if (p == std::string::npos) return "";
    p += marker.size();
    return r.body.substr(p, r.body.find('"', p) - p);
  }

  // authorize -> consent -> allow: the provider redirect (Location).
  std::string to_provider(const std::string& client_id, std::vector<std::pair<std::string, std::string>> extra = {},
                          bool remember = false) {
    Response a = call(MCPA_EP_AUTHORIZE, request("GET", authorize_args(client_id, std::move(extra))));
    std::string authz = qget(header(a, "Location"), "authz");
    std::string csrf = consent_page(authz);
    Response r = call(MCPA_EP_CONSENT, consent_post(authz, csrf, "allow", remember));
    EXPECT_EQ(r.status, 303) << r.body;
    return header(r, "Location");
  }


  // The login sealed into a provider redirect's state.
  std::optional<LoginState> login_of(const std::string& provider_location) {
    auto l = open_login(cf, qget(provider_location, "state"), now);
    EXPECT_TRUE(l) << provider_location;
    return l;
  }
  std::string nonce_of(const std::string& provider_location) {
    auto l = login_of(provider_location);
    return l ? l->nonce : "";
  }

  // The provider answers the browser's login with a code: GET /oauth-callback.
  Response callback(const std::string& provider_location, const std::string& extra = "") {
    return call(MCPA_EP_CALLBACK, request("GET", "code=idp-code&state=" + qget(provider_location, "state") +
                                                     "&iss=" + pct_encode("https://idp.example") + extra));
  }

  // A whole login for client_id; returns the client redirect (Location).
  std::string login(const std::string& client_id, std::vector<std::pair<std::string, std::string>> extra = {},
                    bool remember = false) {
    std::string loc = to_provider(client_id, std::move(extra), remember);
    std::string nonce = nonce_of(loc);
    Response cb = callback(loc);
    EXPECT_EQ(cb.fetch.target, MCPA_FETCH_PROVIDER_TOKEN);
    Response r = resume(MCPA_EP_CALLBACK, cb, 200, FakeIdp::get().token_response(FakeIdp::get().id_token(nonce, now)));
    if (r.fetch.target == MCPA_FETCH_PROVIDER_JWKS) r = resume(MCPA_EP_CALLBACK, r, 200, FakeIdp::get().jwks);
    EXPECT_EQ(r.status, 303) << r.body;
    return header(r, "Location");
  }

  Request token_request(const std::vector<std::pair<std::string, std::string>>& fields) {
    return request("POST", "", form(fields), "application/x-www-form-urlencoded");
  }
  Response redeem(const std::string& client_id, const std::string& code, const std::string& verifier = kVerifier) {
    return call(MCPA_EP_TOKEN, token_request({{"grant_type", "authorization_code"},
                                              {"code", code},
                                              {"redirect_uri", kRedirect},
                                              {"client_id", client_id},
                                              {"code_verifier", verifier}}));
  }
  Response refresh(const std::string& client_id, const std::string& refresh_token) {
    return call(MCPA_EP_TOKEN, token_request({{"grant_type", "refresh_token"},
                                              {"refresh_token", refresh_token},
                                              {"client_id", client_id}}));
  }

  Request consent_post(const std::string& authz, const std::string& csrf, const std::string& decision,
                       bool remember = false) {
    std::vector<std::pair<std::string, std::string>> f = {{"authz", authz}, {"csrf_token", csrf}, {"decision", decision}};
    if (remember) f.emplace_back("remember", "1");
    Request r = request("POST", "", form(f), "application/x-www-form-urlencoded");
    r.origin = "https://mcp.example";
    r.sec_fetch_site = "same-origin";
    return r;
  }
};

}  // namespace mcpauth_test
