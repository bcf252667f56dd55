// GET/POST /consent: the user approves (or denies) one MCP client before we
// send them to the upstream provider.  A gateway with one static client id
// at the provider must ask for consent per dynamically registered client,
// or any client could ride on the user's provider session (MCP security
// best practices, "confused deputy").  With claim rules on scopes the page
// comes after the sign-in instead (callback_endpoint.cpp shows it; its
// answer, which carries `grant`, goes to decide_after_login): no session or
// code exists before it either way.
//
// POST defences: Fetch Metadata (Sec-Fetch-Site cross-site refused), Origin
// must be ours when sent, and a CSRF token bound to the browser cookie, the
// client and the redirect URI.  The request being approved travels sealed
// in the page's URL and form (seal_pending): nothing is stored for it, and
// the browser can neither read nor change it.
#include <algorithm>

#include "consent_page.hpp"
#include "crypto.hpp"
#include "csrf.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "pkce.hpp"
#include "provider.hpp"
#include "redirect_uri.hpp"

namespace mcpauth {
namespace {

Response expired_page() {
  return html_page(400, "Sign-in expired", "This sign-in request has expired; start again from your app.");
}

Response forbidden_page(const std::string& message) { return html_page(403, "Request refused", message); }

bool valid_browser_id(const std::string& id) {
  auto raw = b64url_decode(id);
  return raw && raw->size() == 32;
}

// form-action must allow where the POST's redirect goes (Chrome applies it
// to redirects after a form submission): the provider on allow, the
// client's redirect URI on deny.
std::string consent_form_action(const Config& cf, const std::string& redirect_uri) {
  std::string out = "'self'";
  std::string provider = url_origin(cf.provider_authorization_endpoint);
  if (!provider.empty()) out += " " + provider;
  std::string client = url_origin(redirect_uri);
  if (!client.empty()) out += " " + client;
  return out;
}

// The sealed request named by `authz` (the page's URL or the form).
std::optional<PendingAuthz> pending_of(const Config& cf, const Params& params, const Request& req) {
  std::string sealed;
  if (params.find("authz", &sealed) != Params::Lookup::one) return std::nullopt;
  return open_pending(cf, sealed, req.now);
}

Response show(const Config& cf, Store& store, const Request& req) {
  auto params = Params::parse(req.args);
  std::optional<PendingAuthz> authz;
  if (params) authz = pending_of(cf, *params, req);
  if (!authz) return expired_page();
  ClientMetadata client;
  StoreStatus st = load_client(store, authz->client_id, &client);
  if (st == StoreStatus::not_found) return expired_page();
  if (st != StoreStatus::ok) return store_failure_page(st);

  std::string sealed;
  params->find("authz", &sealed);
  return consent_page_response(cf, req, client, authz->redirect_uri, authz->scope, {"authz", sealed},
                               consent_form_action(cf, authz->redirect_uri), "");
}

}  // namespace

Response consent_page_response(const Config& cf, const Request& req, const ClientMetadata& client,
                               const std::string& redirect_uri, const std::string& scope,
                               std::pair<std::string, std::string> carried, const std::string& form_action,
                               const std::string& user_display) {
  Response r;
  const std::string browser_name = cookie_name(cf, kBrowserCookie);
  auto browser = cookie_value(req.cookie, browser_name);
  std::string browser_id;
  if (browser && valid_browser_id(*browser)) {
    browser_id = *browser;
  } else {
    browser_id = random_token(32);
    r.header("Set-Cookie", set_cookie(cf, browser_name, browser_id, -1));
  }

  ConsentView view;
  view.client_name = client.client_name;
  view.client_id = client.client_id;
  std::string why;
  auto uri = parse_uri(redirect_uri, &why);
  view.redirect_uri_host = uri && !uri->host.empty() ? uri->host : redirect_uri;
  view.csrf_token = make_csrf_token(csrf_key(cf), browser_id, client.client_id, redirect_uri, req.now);
  view.action_path = cf.consent_path;
  view.hidden_fields.push_back(std::move(carried));
  auto remembered = remembered_scopes(cf, req, client.client_id, redirect_uri);
  for (const auto& s : split_scope(scope)) {
    view.scopes.emplace_back(s, cf.scope_description(s));
    if (remembered && std::find(remembered->begin(), remembered->end(), s) == remembered->end())
      view.new_scopes.push_back(s);
  }
  view.remember_option = cf.consent_remember;
  view.user_display = user_display;
  r.body = render_consent_page(view);
  add_form_page_headers(r, form_action);
  return r;
}

namespace {

Response decide(const Config& cf, Store& store, const Request& req) {
  // A cross-site form post is never a user's own decision.
  if (!form_post_from_gateway(cf, req)) return forbidden_page("This form cannot be submitted from another site.");
  if (media_type(req.content_type) != "application/x-www-form-urlencoded")
    return html_page(400, "Invalid request", "The consent form was not sent as a form.");
  auto form = Params::parse(req.body);
  if (form && form->has("grant")) return decide_after_login(cf, store, req, *form);
  std::string csrf, decision, remember;
  std::optional<PendingAuthz> authz;
  if (form) authz = pending_of(cf, *form, req);
  if (!authz) return expired_page();
  if (form->find(std::string(kConsentCsrfField), &csrf) != Params::Lookup::one)
    return forbidden_page("The form is missing its security token. Start again from your app.");

  auto browser = cookie_value(req.cookie, cookie_name(cf, kBrowserCookie));
  if (!browser || !valid_browser_id(*browser))
    return forbidden_page("Your browser did not send its sign-in cookie. Enable cookies and start again.");
  if (!verify_csrf_token(csrf_key(cf), csrf, *browser, authz->client_id, authz->redirect_uri, req.now))
    return forbidden_page("The form's security token is invalid or expired. Start again from your app.");

  if (form->find(std::string(kConsentDecisionField), &decision) != Params::Lookup::one ||
      (decision != "allow" && decision != "deny"))
    return html_page(400, "Invalid request", "The consent form carried no decision.");

  if (decision == "deny") {
    Response r = report_to_client(cf, req, authz->client_id, authz->redirect_uri, authz->state, "access_denied",
                                  "the user denied access");
    r.event(MCPA_EV_CONSENT, "consent.denied", "denied").client_id = authz->client_id;
    return r;
  }

  const bool remembered = cf.consent_remember &&
                          form->find(std::string(kConsentRememberField), &remember) == Params::Lookup::one &&
                          remember == "1";
  Response r = start_provider_login(cf, req, *authz, remembered);
  r.event(MCPA_EV_CONSENT, "consent.allowed", "allowed").client_id = authz->client_id;
  // the consent came before the login it starts
  std::rotate(r.events.begin(), r.events.end() - 1, r.events.end());
  return r;
}

}  // namespace

Response handle_consent(const Config& cf, Store& store, const Request& req) {
  if (!cf.keys || !cf.has_provider())
    return html_page(500, "Not configured", "The sign-in service is not configured.");
  if (req.method == "GET") return show(cf, store, req);
  if (req.method == "POST") return decide(cf, store, req);
  Response r = html_page(405, "Method not allowed", "Use the consent form.");
  r.header("Allow", "GET, POST");
  return r;
}

Response start_provider_login(const Config& cf, const Request& req, const PendingAuthz& authz, bool remember,
                              bool consent_after, int64_t remembered_at) {
  LoginState login;
  login.authz = authz;
  login.remember = remember;
  login.consent_after = consent_after;
  login.remembered_at = remembered_at;
  Response out = send_to_provider(cf, req, std::move(login));
  if (out.status == 303) out.event(MCPA_EV_LOGIN_STARTED, "login.started", "ok").client_id = authz.client_id;
  return out;
}

Response send_to_provider(const Config& cf, const Request& req, LoginState login) {
  if (!cf.has_provider()) return html_page(500, "Not configured", "No identity provider is configured.");
  login.provider_verifier = random_token(32);  // 43 characters (RFC 7636 §4.1)
  login.nonce = random_token(32);
  // The login cookie binds the provider's answer to this browser: a state
  // value replayed in another browser (login CSRF) finds no matching cookie.
  const std::string binding = random_token(32);
  login.browser_hash = sha256_b64url(binding);
  const int64_t ttl = std::min<int64_t>(cf.login_ttl, 600);
  // The state we send the provider is the login itself, sealed: nothing is
  // stored until the user has logged in (the verifier stays secret inside).
  const std::string state = seal_login(cf, login, req.now + ttl);

  Response out = redirect_to(
      provider_authorization_url(cf, state, login.nonce, s256_challenge(login.provider_verifier)));
  // SameSite=Lax: the provider brings the browser back with a top-level GET.
  out.header("Set-Cookie", set_cookie(cf, cookie_name(cf, kLoginCookie), binding, ttl));
  return out;
}

}  // namespace mcpauth
