// GET /oauth-callback: the upstream provider sends the browser back here.
//
//   handle_callback   open the sealed login (the state; single use: a
//                     completed login is marked loginused:<nonce>), check
//                     the login cookie and iss (RFC 9207), ask the glue to
//                     POST the code to the provider's token endpoint
//   resume_callback   provider token answer -> verify the ID token (JWKS
//                     from the store, one refetch when missing or the kid is
//                     unknown) -> the claim rules -> session:<sid> +
//                     code:<sha256(code)> -> 302 to the MCP client with
//                     code, state, iss; or, with claim rules on scopes, the
//                     consent page first (decide_after_login)
#include "consent_page.hpp"
#include "crypto.hpp"
#include "csrf.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "id_token.hpp"
#include "identity_assertion.hpp"
#include "json.hpp"
#include "jwks.hpp"
#include "provider.hpp"
#include "redirect_uri.hpp"
#include "session_index.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace mcpauth {
namespace {

constexpr int64_t kContinuationSeconds = 300;

Response bad_page(const std::string& message) { return html_page(400, "Sign-in failed", message); }

// The login's end, for the audit log and the metrics.
Response& login_event(Response& r, const char* outcome, const std::string& reason, const LoginState* login) {
  Event& e = r.event(MCPA_EV_LOGIN, "login.failed", outcome);
  e.reason = reason;
  if (login) e.client_id = login->authz.client_id;
  return r;
}

void clear_login_cookie(const Config& cf, Response& r) {
  r.header("Set-Cookie", set_cookie(cf, cookie_name(cf, kLoginCookie), "", 0));
}

// Until the user has logged in, the client hears of a failure by a link
// the user follows (unless this browser approved it and logged in before).
// outcome: "denied" when the user said no at the provider, else
// "provider_error" (what the provider did failed) or "failed".
Response client_error(const Config& cf, const Request& req, const LoginState& login, const char* error,
                      const std::string& why, const char* outcome = "provider_error") {
  if (login.account()) {
    // no client to tell: the user reads it on a page
    Response r = html_page(400, "Sign-in failed",
                           "The sign-in to your connected apps page did not complete: " + why +
                               ". Open the page again to retry.");
    clear_login_cookie(cf, r);
    return login_event(r, outcome, error, &login);
  }
  Response r = report_to_client(cf, req, login.authz.client_id, login.authz.redirect_uri, login.authz.state,
                                error, why);
  clear_login_cookie(cf, r);
  return login_event(r, outcome, error, &login);
}

// The account's name for the user, as the pages show it.
std::string account_of(const IdTokenClaims& who) {
  return !who.email.empty() ? who.email : !who.preferred_username.empty() ? who.preferred_username : who.name;
}

// The provider's user is not one the claim rules admit: the user is told
// so here, whatever this browser remembered, and the client hears
// access_denied through the link; nothing is stored.
Response not_admitted(const Config& cf, const LoginState& login, const IdTokenClaims& who, const std::string& why) {
  if (login.account()) {
    // the account page is no way around the claim rules either
    Response r = html_page(403, "Your account is not allowed to use this server",
                           "This server only admits accounts its organisation allows. Ask your administrator "
                           "for access, or sign in with another account.");
    r.error = "access_denied";
    clear_login_cookie(cf, r);
    Event& e = r.event(MCPA_EV_LOGIN, "login.denied", "not_admitted");
    e.reason = why;
    e.subject = who.sub;
    return r;
  }
  const std::string href = add_query(login.authz.redirect_uri, {{"error", "access_denied"},
                                                                {"error_description", "the account is not allowed"},
                                                                {"state", login.authz.state},
                                                                {"iss", cf.issuer}});
  std::string err;
  auto uri = parse_uri(login.authz.redirect_uri, &err);
  const std::string destination = uri && !uri->host.empty() ? uri->host : url_origin(login.authz.redirect_uri);
  std::string account = account_of(who);
  Response r;
  r.status = 403;
  r.body = render_return_page("Your account is not allowed to use this server",
                              (account.empty() ? std::string("You signed in") : "You signed in as " + account) +
                                  ", but this server only admits accounts its organisation allows. "
                                  "Ask your administrator for access, or sign in with another account.",
                              href, destination, r.status);
  add_page_security_headers(r, "'none'");
  r.error = "access_denied";
  clear_login_cookie(cf, r);
  Event& e = r.event(MCPA_EV_LOGIN, "login.denied", "not_admitted");
  e.reason = why;
  e.subject = who.sub;
  e.client_id = login.authz.client_id;
  return r;
}

Response completed_page(const Config& cf, const LoginState& login) {
  Response r = bad_page("This sign-in was already completed. Start again from your app.");
  clear_login_cookie(cf, r);
  return login_event(r, "failed", "replayed", &login);
}

std::string used_key(const LoginState& login) { return "loginused:" + login.nonce; }

std::string seal_continuation(const Config& cf, Fields f, const Request& req) {
  f.set("v", "1");
  f.set_int("exp", req.now + kContinuationSeconds);
  return cf.keys->seal(kContinuationPurpose, f.encode());
}

std::optional<Fields> open_continuation(const Config& cf, const std::string& text, const Request& req) {
  auto plain = cf.keys->open(kContinuationPurpose, text);
  if (!plain) return std::nullopt;
  auto f = Fields::decode(*plain);
  if (!f || f->str("v") != "1") return std::nullopt;
  auto exp = f->num("exp");
  if (!exp || *exp <= req.now) return std::nullopt;
  return f;
}

// Step 6 of the flow: the ID token checks out -> session and code.
Response issue_code(const Config& cf, Store& store, const Request& req, const LoginState& login,
                    const ProviderTokens& tokens, const IdTokenClaims& claims, const ClaimSet& kept,
                    const std::string& scope) {
  Session s;
  s.sid = random_token(32);
  s.sub = claims.sub;
  s.name = claims.name.empty() ? claims.preferred_username : claims.name;
  s.email = claims.email;
  s.client_id = login.authz.client_id;
  s.redirect_uri = login.authz.redirect_uri;
  s.scope = scope;
  s.claims = kept.to_record();
  s.resource = login.authz.resource;
  s.provider_access_token = tokens.access_token;
  s.provider_refresh_token = tokens.refresh_token;
  s.provider_expires = tokens.expires_in > 0 ? req.now + tokens.expires_in : 0;
  s.created = req.now;
  s.expires = req.now + cf.session_ttl;
  s.gen = 0;
  s.rotated_at = req.now;
  // The state is single use: of two callbacks with it, one goes on.  The
  // mark is made only now, once the user has logged in at the provider.
  StoreStatus st = store.put_new(used_key(login), "1", req.now + std::min<int64_t>(cf.login_ttl, 600));
  if (st == StoreStatus::exists) return completed_page(cf, login);
  if (st != StoreStatus::ok) return store_failure_page(st);
  // An operator may have disabled the client while the user signed in.
  st = client_disabled(store, s.client_id);
  if (st == StoreStatus::ok)
    return client_error(cf, req, login, "unauthorized_client", "the application has been disabled by the operator",
                        "client_disabled");
  if (st != StoreStatus::not_found) return store_failure_page(st);
  // The registration carried a login: it keeps its full lifetime now.
  st = promote_client(cf, store, s.client_id);
  if (st == StoreStatus::not_found)
    return client_error(cf, req, login, "invalid_client", "the application's registration has expired");
  if (st != StoreStatus::ok) return store_failure_page(st);
  // Listed first, so that no stored session escapes the kill switch.
  std::vector<std::string> ended;
  st = index_new_session(store, s, req.now, &ended);
  if (st != StoreStatus::ok) return store_failure_page(st);
  st = store.put_new("session:" + s.sid, encode_session(s), s.expires);
  if (st != StoreStatus::ok) return store_failure_page(st == StoreStatus::exists ? StoreStatus::error : st);

  CodeGrant c;
  c.sid = s.sid;
  c.client_id = s.client_id;
  c.redirect_uri = login.authz.redirect_uri;
  c.redirect_uri_sent = login.authz.redirect_uri_sent;
  c.code_challenge = login.authz.code_challenge;
  c.resource = login.authz.resource;
  c.scope = s.scope;
  c.session_expires = s.expires;
  const std::string code = random_token(32);
  // Only the hash of the code is stored (a store dump yields no codes).
  st = store.put_new("code:" + sha256_b64url(code), encode_code(c), req.now + cf.code_ttl);
  if (st != StoreStatus::ok) {
    store.del("session:" + s.sid);
    return store_failure_page(st == StoreStatus::exists ? StoreStatus::error : st);
  }
  // RFC 9207: iss lets the client detect a mix-up between servers.
  Response r = redirect_to(add_query(login.authz.redirect_uri,
                                     {{"code", code}, {"state", login.authz.state}, {"iss", cf.issuer}}));
  clear_login_cookie(cf, r);
  Event& e = r.event(MCPA_EV_LOGIN, "login.completed", "completed");
  e.subject = s.sub;
  e.client_id = s.client_id;
  e.session_tag = session_log_tag(s.sid);
  // Approved and logged in: now the choice may be remembered, for exactly
  // the scopes granted (a wider request shows the consent page again).
  if (login.remember && cf.consent_remember)
    r.header("Set-Cookie",
             set_cookie(cf, cookie_name(cf, kConsentCookie),
                        remember_consent_value(cf, req, login.authz.client_id, login.authz.redirect_uri, scope),
                        std::min<int64_t>(cf.client_ttl, 30 * 86400)));
  return r;
}

void put_tokens(Fields& f, const ProviderTokens& t) {
  f.set("p_access", t.access_token);
  f.set("p_id", t.id_token);
  f.set("p_refresh", t.refresh_token);
  f.set("p_scope", t.scope);
  f.set_int("p_expires_in", t.expires_in);
}

ProviderTokens get_tokens(const Fields& f);

// Whether the user revoked the client on the account page (consentforgot:)
// at or after `approved_at`, when a browser remembered approving it: then
// that approval no longer counts, in this browser or any other.
StoreStatus consent_forgotten(Store& store, const std::string& sub, const std::string& client_id,
                              int64_t approved_at, bool* forgotten) {
  *forgotten = false;
  if (approved_at <= 0) return StoreStatus::ok;
  std::string raw;
  StoreStatus st = store.get(consent_forgot_key(sub, client_id), &raw);
  if (st == StoreStatus::not_found) return StoreStatus::ok;
  if (st != StoreStatus::ok) return st;
  int64_t at = std::numeric_limits<int64_t>::max();  // unreadable: ask again
  std::from_chars(raw.data(), raw.data() + raw.size(), at);
  *forgotten = at >= approved_at;
  return StoreStatus::ok;
}

// With claim rules on scopes the consent page follows the sign-in and
// offers only the scopes the user may hold (unless this browser remembered
// approving all of them, and the user did not revoke the client since;
// `ask`: show it whatever the browser remembered).  The completed sign-in
// travels sealed in the page's form, bound to the login cookie as the state
// was: nothing is stored until the user approves.
Response consent_after_login(const Config& cf, Store& store, const Request& req, const LoginState& login,
                             const ProviderTokens& tokens, const IdTokenClaims& who, const ClaimSet& kept,
                             const std::string& scope, bool ask = false) {
  const std::vector<std::string> words = split_scope(scope);
  auto remembered = remembered_scopes(cf, req, login.authz.client_id, login.authz.redirect_uri);
  StoreStatus st;
  if (!ask && remembered && std::all_of(words.begin(), words.end(), [&](const std::string& w) {
        return std::find(remembered->begin(), remembered->end(), w) != remembered->end();
      })) {
    bool forgotten = false;
    st = consent_forgotten(store, who.sub, login.authz.client_id,
                           remembered_since(cf, req, login.authz.client_id, login.authz.redirect_uri), &forgotten);
    if (st != StoreStatus::ok) return store_failure_page(st);
    if (!forgotten) return issue_code(cf, store, req, login, tokens, who, kept, scope);
  }
  ClientMetadata client;
  st = load_client(store, login.authz.client_id, &client);
  if (st == StoreStatus::not_found)
    return client_error(cf, req, login, "invalid_client", "the application's registration has expired");
  if (st != StoreStatus::ok) return store_failure_page(st);

  Fields f;
  put_login(f, login);
  put_tokens(f, tokens);
  f.set("g_sub", who.sub);
  f.set("g_name", who.name);
  f.set("g_email", who.email);
  f.set("g_username", who.preferred_username);
  f.set("g_claims", kept.to_record());
  f.set("g_scope", scope);
  f.set("v", "1");
  f.set_int("exp", req.now + std::min<int64_t>(cf.login_ttl, 600));
  return consent_page_response(cf, req, client, login.authz.redirect_uri, scope,
                               {"grant", cf.keys->seal(kGrantPurpose, f.encode())},
                               "'self' " + url_origin(login.authz.redirect_uri), account_of(who));
}

ProviderTokens get_tokens(const Fields& f) {
  ProviderTokens t;
  t.access_token = f.str("p_access");
  t.id_token = f.str("p_id");
  t.refresh_token = f.str("p_refresh");
  t.scope = f.str("p_scope");
  t.expires_in = f.num("p_expires_in").value_or(0);
  return t;
}

// Verifies the ID token with the cached JWKS, or asks for the JWKS once.
Response verify_and_issue(const Config& cf, Store& store, const Request& req, const LoginState& login,
                          const ProviderTokens& tokens, std::shared_ptr<const std::vector<Jwk>> keys) {
  if (!keys) {
    std::string raw;
    StoreStatus st = store.get("jwks:" + cf.provider_issuer, &raw);
    if (st == StoreStatus::ok) {
      keys = parse_jwks_cached(raw, nullptr);
    } else if (st == StoreStatus::error) {
      return client_error(cf, req, login, "server_error", "the login could not be completed");
    } else if (st != StoreStatus::not_found) {
      return store_failure_page(st);  // pending, or the store unreachable: a 503 to try again
    }
    if (!jwks_covers(keys, jwt_header_kid(tokens.id_token))) {
      Fields f;
      f.set("kind", "jwks");
      put_login(f, login);
      put_tokens(f, tokens);
      Response r;
      r.fetch.target = MCPA_FETCH_PROVIDER_JWKS;
      r.fetch.continuation = seal_continuation(cf, std::move(f), req);
      return r;
    }
  }
  IdTokenExpectations expect;
  expect.issuer = cf.provider_issuer;
  expect.client_id = cf.provider_client_id;
  expect.nonce = login.nonce;
  expect.now = req.now;
  // once per request, however often the store makes it run (run_memo.hpp)
  auto verified = verify_id_token_once(tokens.id_token, *keys, expect);
  if (std::holds_alternative<std::string>(verified)) {
    // The reason is not for the browser: the provider gave us a bad token.
    return client_error(cf, req, login, "server_error", "the identity provider's ID token was not valid");
  }
  const IdTokenClaims& who = std::get<IdTokenClaims>(verified);
  ClaimSet kept;
  if (!cf.access.empty()) {
    Json payload(cJSON_ParseWithLength(who.payload.data(), who.payload.size()));
    if (!payload) return client_error(cf, req, login, "server_error", "the identity provider's ID token was not valid");
    std::string why = cf.access.admit(payload.get());
    if (!why.empty()) return not_admitted(cf, login, who, why);
    kept = cf.access.keep(payload.get());
  }
  if (login.account()) {
    // an account sign-in: a cookie for the page, no session, no code
    Response r = account_signed_in(cf, req, login, who.sub, account_of(who));
    clear_login_cookie(cf, r);
    return r;
  }
  // the approved scopes this user may hold (mcp_auth_scope_claim)
  const std::string scope =
      cf.access.has_scope_rules() ? cf.access.holdable(login.authz.scope, kept) : login.authz.scope;
  if (login.consent_after) return consent_after_login(cf, store, req, login, tokens, who, kept, scope);
  if (login.remembered_at > 0) {
    // the consent page was skipped on a remembered approval: it is shown
    // now if the user revoked the client since
    bool forgotten = false;
    StoreStatus st = consent_forgotten(store, who.sub, login.authz.client_id, login.remembered_at, &forgotten);
    if (st != StoreStatus::ok) return store_failure_page(st);
    if (forgotten) {
      LoginState again = login;
      again.consent_after = true;  // decide_after_login takes the page's answer
      again.remembered_at = 0;
      return consent_after_login(cf, store, req, again, tokens, who, kept, scope, /*ask=*/true);
    }
  }
  return issue_code(cf, store, req, login, tokens, who, kept, scope);
}

bool denial(const std::string& error) {
  return error == "access_denied" || error == "login_required" || error == "consent_required" ||
         error == "interaction_required" || error == "account_selection_required";
}

}  // namespace

Response handle_callback(const Config& cf, Store& store, const Request& req) {
  if (req.method != "GET") {
    Response r = html_page(405, "Method not allowed", "Use GET.");
    r.header("Allow", "GET");
    return r;
  }
  if (!cf.keys || !cf.has_provider()) return html_page(500, "Not configured", "The sign-in service is not configured.");
  auto params = Params::parse(req.args);
  std::string state;
  if (!params || params->find("state", &state) != Params::Lookup::one || state.empty())
    return bad_page("This sign-in cannot be completed (no valid state). Start again from your app.");

  // The state is the login, sealed by us: it opens, is not expired, and
  // was not completed already (a replayed callback).
  auto login = open_login(cf, state, req.now);
  if (!login) {
    Response r = bad_page("This sign-in has expired or is not valid. Start again from your app.");
    // authentic but past its time: the user took longer than login_ttl
    auto late = open_login(cf, state, std::numeric_limits<int64_t>::min());
    return late ? login_event(r, "timed_out", "expired", &*late) : login_event(r, "failed", "invalid_state", nullptr);
  }
  std::string raw;
  StoreStatus st = store.get(used_key(*login), &raw);
  if (st == StoreStatus::ok) return completed_page(cf, *login);
  if (st != StoreStatus::not_found) return store_failure_page(st);

  // The browser that started the login must be the one finishing it.
  auto binding = cookie_value(req.cookie, cookie_name(cf, kLoginCookie));
  if (!binding || !ct_equal(sha256_b64url(*binding), login->browser_hash)) {
    Response r = bad_page("This sign-in was started in another browser or its cookie was lost. "
                          "Start again from your app.");
    clear_login_cookie(cf, r);
    return login_event(r, "failed", "browser_mismatch", &*login);
  }

  // RFC 9207 §2.4: an iss that is not our provider's means a mix-up.
  std::string iss;
  auto iss_lookup = params->find("iss", &iss);
  if (iss_lookup == Params::Lookup::repeated || (iss_lookup == Params::Lookup::one && iss != cf.provider_issuer))
    return client_error(cf, req, *login, "server_error", "the answer came from an unexpected identity provider",
                        "failed");

  std::string error;
  if (params->find("error", &error) != Params::Lookup::absent) {
    if (denial(error))
      return client_error(cf, req, *login, "access_denied", "the user did not sign in or consent", "denied");
    return client_error(cf, req, *login, "server_error", "the identity provider reported an error");
  }
  std::string code;
  if (params->find("code", &code) != Params::Lookup::one || code.empty())
    return client_error(cf, req, *login, "server_error", "the identity provider returned no code");

  ProviderRequest pr = provider_code_request(cf, code, login->provider_verifier, req.now);
  if (!pr.ok) return client_error(cf, req, *login, "server_error", "the gateway could not authenticate to its provider");
  Fields f;
  f.set("kind", "code");
  put_login(f, *login);
  return provider_token_fetch(std::move(pr), seal_continuation(cf, std::move(f), req));
}

Response resume_callback(const Config& cf, Store& store, const Request& req, const std::string& continuation,
                         int fetch_status, const std::string& fetch_body) {
  if (!cf.keys) return html_page(500, "Not configured", "The sign-in service is not configured.");
  auto f = open_continuation(cf, continuation, req);
  std::optional<LoginState> login;
  if (f) login = get_login(*f);
  if (!login) return html_page(500, "Sign-in failed", "The sign-in could not be completed. Start again from your app.");
  const std::string kind = f->str("kind");

  if (kind == "code") {
    if (fetch_status == 0) {
      Response r = html_page(502, "Identity provider unavailable",
                             "The identity provider did not answer. Start again from your app in a moment.");
      clear_login_cookie(cf, r);
      return login_event(r, "provider_error", "provider_unreachable", &*login);
    }
    if (fetch_status != 200) {
      std::string code = provider_error_code(fetch_body);
      return client_error(cf, req, *login, "server_error",
                          "the identity provider refused the login" + (code.empty() ? "" : " (" + code + ")"));
    }
    auto parsed = parse_provider_tokens(fetch_body);
    if (std::holds_alternative<std::string>(parsed))
      return client_error(cf, req, *login, "server_error", "the identity provider's answer was not usable");
    const auto& tokens = std::get<ProviderTokens>(parsed);
    if (tokens.id_token.empty())
      return client_error(cf, req, *login, "server_error", "the identity provider returned no ID token");
    return verify_and_issue(cf, store, req, *login, tokens, nullptr);
  }

  if (kind == "jwks") {
    if (fetch_status != 200)
      return client_error(cf, req, *login, "server_error", "the identity provider's keys could not be fetched");
    std::string why;
    auto keys = parse_jwks_cached(fetch_body, &why);
    if (!keys) return client_error(cf, req, *login, "server_error", "the identity provider's keys are not usable");
    // Cache failures do not stop this login; the next one refetches.
    StoreStatus st = store.put("jwks:" + cf.provider_issuer, fetch_body, req.now + kJwksCacheSeconds);
    if (st == StoreStatus::pending) return store_failure_page(st);
    return verify_and_issue(cf, store, req, *login, get_tokens(*f), std::move(keys));
  }
  return html_page(500, "Sign-in failed", "The sign-in could not be completed. Start again from your app.");
}

Response decide_after_login(const Config& cf, Store& store, const Request& req, const Params& form) {
  if (!cf.keys) return html_page(500, "Not configured", "The sign-in service is not configured.");
  const Response expired =
      html_page(400, "Sign-in expired", "This sign-in has expired or is not valid; start again from your app.");
  std::string sealed, csrf, decision, remember;
  if (form.find("grant", &sealed) != Params::Lookup::one || sealed.size() > kMaxSealedFlowLength) return expired;
  auto plain = cf.keys->open(kGrantPurpose, sealed);
  auto f = plain ? Fields::decode(*plain) : std::nullopt;
  if (plain) wipe(*plain);
  if (!f || f->str("v") != "1" || f->num("exp").value_or(0) <= req.now) return expired;
  auto login = get_login(*f);
  auto kept = ClaimSet::from_record(f->str("g_claims"));
  if (!login || !login->consent_after || !kept || f->str("g_sub").empty()) return expired;

  // The browser that signed in, and a form this gateway gave it.
  auto binding = cookie_value(req.cookie, cookie_name(cf, kLoginCookie));
  if (!binding || !ct_equal(sha256_b64url(*binding), login->browser_hash))
    return html_page(403, "Request refused",
                     "This sign-in was started in another browser or its cookie was lost. Start again from your app.");
  auto browser = cookie_value(req.cookie, cookie_name(cf, kBrowserCookie));
  if (form.find(std::string(kConsentCsrfField), &csrf) != Params::Lookup::one || !browser ||
      !verify_csrf_token(csrf_key(cf), csrf, *browser, login->authz.client_id, login->authz.redirect_uri, req.now))
    return html_page(403, "Request refused",
                     "The form's security token is invalid or expired. Start again from your app.");
  if (form.find(std::string(kConsentDecisionField), &decision) != Params::Lookup::one ||
      (decision != "allow" && decision != "deny"))
    return html_page(400, "Invalid request", "The consent form carried no decision.");

  if (decision == "deny") {
    Response r = report_to_client(cf, req, login->authz.client_id, login->authz.redirect_uri, login->authz.state,
                                  "access_denied", "the user denied access");
    clear_login_cookie(cf, r);
    r.event(MCPA_EV_CONSENT, "consent.denied", "denied").client_id = login->authz.client_id;
    return r;
  }
  login->remember = cf.consent_remember &&
                    form.find(std::string(kConsentRememberField), &remember) == Params::Lookup::one &&
                    remember == "1";
  IdTokenClaims who;
  who.sub = f->str("g_sub");
  who.name = f->str("g_name");
  who.email = f->str("g_email");
  who.preferred_username = f->str("g_username");
  ProviderTokens tokens = get_tokens(*f);
  Response r = issue_code(cf, store, req, *login, tokens, who, *kept, f->str("g_scope"));
  wipe(tokens.access_token);
  wipe(tokens.refresh_token);
  wipe(tokens.id_token);
  r.event(MCPA_EV_CONSENT, "consent.allowed", "allowed").client_id = login->authz.client_id;
  // the consent came before the login's end it completes
  std::rotate(r.events.begin(), r.events.end() - 1, r.events.end());
  return r;
}

}  // namespace mcpauth
