// GET/POST /account: "Your connected apps".  A user signs in through the
// same provider (an account sign-in: LoginState::account_path, checked by
// the callback exactly like a client's, claim rules included) and sees the
// apps that hold sessions in their name, each with a Revoke button.
//
//   GET  without a valid account cookie   -> sign-in at the provider
//   (callback: account_signed_in)         -> account cookie, 303 to the page
//   GET  with it                          -> the page
//   POST action=revoke session=<sid>      -> end_session, the consent this
//                                            browser remembered is forgotten
//                                            (and any other browser's: the
//                                            consentforgot: mark), 303 back
//   POST action=signout                   -> the cookie goes
//
// The account cookie is sealed (AES-256-GCM, kAccountPurpose) and holds the
// user's sub, a display name, a random id the forms' CSRF tokens are bound
// to, and its expiry (15 minutes); nothing is stored for it.  The path is
// the page's own (nginx's URI of the location serving it), carried through
// the sign-in sealed in the state: no directive names it.
//
// POST defences as at /consent: Fetch Metadata (cross-site refused), Origin
// ours when sent, a CSRF token bound to the cookie; and a session is ended
// only when its record names the cookie's user (else the same "not found"
// as for a session that does not exist).
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "account_page.hpp"
#include "crypto.hpp"
#include "csrf.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "identity_assertion.hpp"
#include "redirect_uri.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

constexpr int64_t kAccountSeconds = 900;
constexpr size_t kMaxSessionId = 128;
constexpr size_t kMaxCookie = 4096;
// A request's store operations are bounded (MCPA_MAX_STORE_OPS): the page
// reads the list, then each session and its client's name, so it shows
// the sessions that expire last (the newest) up to this many.
constexpr size_t kMaxListed = 25;

struct AccountCookie {
  std::string sub, name, id;
};

// Scoped to the page's path, so it never travels with other requests (the
// MCP upstream's among them): __Host- would need Path=/, __Secure- does not.
std::string account_cookie_name(const Config& cf) {
  return cf.secure_cookies ? "__Secure-mcp_account" : "mcp_account";
}

// SameSite=Lax, not Strict: the cookie is set at the end of a redirect chain
// that started at the provider (another site), and a Strict cookie would not
// come with the page's first request.  Cross-site POSTs never carry it.
std::string account_cookie(const Config& cf, const std::string& path, const std::string& value, int64_t max_age) {
  std::string c = account_cookie_name(cf) + "=" + value + "; Path=" + path +
                  "; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age);
  if (cf.secure_cookies) c += "; Secure";
  return c;
}

// The page's path, fit for a cookie's Path and a Location (nginx's URI is
// decoded, so anything else falls back to the default).
std::string page_path(const Request& req) {
  const std::string& p = req.uri;
  bool ok = !p.empty() && p[0] == '/' && p.size() <= 256;
  for (char c : p)
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr("/-._~", c)) ok = false;
  return ok ? p : "/account";
}

// The page's URL: the path is nginx's whole URI, so it goes on the
// issuer's origin (an issuer with a path already has it in the URI).
std::string page_url(const Config& cf, const std::string& path) { return url_origin(cf.issuer) + path; }

std::optional<AccountCookie> open_account(const Config& cf, const Request& req) {
  auto v = cookie_value(req.cookie, account_cookie_name(cf));
  if (!v || v->empty() || v->size() > kMaxCookie) return std::nullopt;
  auto plain = cf.keys->open(kAccountPurpose, *v);
  if (!plain) return std::nullopt;
  auto f = Fields::decode(*plain);
  if (!f || f->str("v") != "1") return std::nullopt;
  auto exp = f->num("exp");
  if (!exp || *exp <= req.now) return std::nullopt;
  AccountCookie a{f->str("sub"), f->str("name"), f->str("id")};
  if (a.sub.empty() || a.id.empty()) return std::nullopt;
  return a;
}

std::string account_csrf_key(const Config& cf) { return cf.keys->derive_key("mcp-auth account csrf v1"); }

// Bound to this cookie (its random id) and its user.
std::string csrf_for(const Config& cf, const AccountCookie& a, int64_t now) {
  return make_csrf_token(account_csrf_key(cf), a.id, "account", a.sub, now);
}

bool csrf_ok(const Config& cf, const AccountCookie& a, const std::string& token, int64_t now) {
  return verify_csrf_token(account_csrf_key(cf), token, a.id, "account", a.sub, now, kAccountSeconds);
}

// The page headers of the consent page: the forms post to this page only.
void page_headers(Response& r) { add_form_page_headers(r, "'self'"); }

Response refused(const std::string& message) { return html_page(403, "Request refused", message); }

Response not_found() {
  return html_page(404, "Not found", "That app's access was not found. It may have ended already.");
}

Response start_sign_in(const Config& cf, const Request& req) {
  LoginState login;
  login.account_path = page_path(req);
  Response r = send_to_provider(cf, req, std::move(login));
  if (r.status != 303) return r;
  r.event(MCPA_EV_LOGIN_STARTED, "account.login_started", "ok");
  // a cookie that did not open (expired, forged, old key) goes
  if (cookie_value(req.cookie, account_cookie_name(cf)))
    r.header("Set-Cookie", account_cookie(cf, page_path(req), "", 0));
  return r;
}

std::string host_of(const std::string& uri) {
  if (uri.empty()) return "";
  std::string why;
  auto u = parse_uri(uri, &why);
  return u && !u->host.empty() ? u->host : url_origin(uri);
}

Response show(const Config& cf, Store& store, const Request& req, const AccountCookie& a) {
  std::vector<IndexEntry> entries;
  StoreStatus st = sessions_of_subject(store, a.sub, req.now, &entries);
  if (st != StoreStatus::ok) return store_failure_page(st);

  AccountView view;
  view.user_display = a.name;
  view.csrf_token = csrf_for(cf, a, req.now);
  view.action_path = page_path(req);
  auto params = Params::parse(req.args);
  std::string done;
  if (params && params->find("revoked", &done) == Params::Lookup::one && done == "1")
    view.notice = "Access revoked. That app can no longer use this server in your name.";

  if (entries.size() > kMaxListed) {
    view.more = entries.size() - kMaxListed;
    entries.erase(entries.begin(), entries.end() - static_cast<long>(kMaxListed));
  }
  std::map<std::string, std::string> names;  // client id -> name, one load per client
  for (const auto& e : entries) {
    if (e.member.empty() || e.member.size() > kMaxSessionId) continue;
    std::string raw;
    st = store.get("session:" + e.member, &raw);
    if (st == StoreStatus::not_found) continue;  // ended; the list catches up later
    if (st != StoreStatus::ok) return store_failure_page(st);
    Session s;
    // the list is keyed by a hash of the sub: the record must name this user
    if (!decode_session_into(raw, &s) || s.sub != a.sub || s.expires <= req.now) continue;
    auto known = names.find(s.client_id);
    if (known == names.end()) {
      ClientMetadata client;
      st = load_client(store, s.client_id, &client);
      if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_page(st);
      known = names.emplace(s.client_id, st == StoreStatus::ok ? client.client_name : std::string()).first;
    }
    AccountApp app;
    app.session_id = s.sid;
    app.client_name = known->second;
    app.client_id = s.client_id;
    app.redirect_host = host_of(s.redirect_uri);
    app.scope = s.scope;
    app.created = s.created;
    app.last_active = std::max(s.rotated_at, s.created);
    app.remembered = !s.redirect_uri.empty() && consent_remembered(cf, req, s.client_id, s.redirect_uri);
    view.apps.push_back(std::move(app));
  }
  // most recently active first
  std::stable_sort(view.apps.begin(), view.apps.end(),
                   [](const AccountApp& x, const AccountApp& y) { return x.last_active > y.last_active; });

  Response r;
  r.body = render_account_page(view);
  page_headers(r);
  return r;
}

Response act(const Config& cf, Store& store, const Request& req) {
  // A cross-site form post is never the user's.
  if (!form_post_from_gateway(cf, req)) return refused("This form cannot be submitted from another site.");
  if (media_type(req.content_type) != "application/x-www-form-urlencoded")
    return html_page(400, "Invalid request", "The form was not sent as a form.");
  auto a = open_account(cf, req);
  if (!a)
    return refused("Your sign-in to this page has expired or your browser did not send its cookie. "
                   "Open the page again to sign in.");
  auto form = Params::parse(req.body);
  std::string csrf, action;
  if (!form || form->find(std::string(kAccountCsrfField), &csrf) != Params::Lookup::one ||
      !csrf_ok(cf, *a, csrf, req.now))
    return refused("The form's security token is missing, invalid or expired. Open the page again.");
  if (form->find(std::string(kAccountActionField), &action) != Params::Lookup::one)
    return html_page(400, "Invalid request", "The form carried no action.");
  const std::string path = page_path(req);

  if (action == "signout") {
    Response r = html_page(200, "Signed out", "You signed out of your connected apps page. Your apps keep "
                                              "their access; open the page again to manage them.");
    r.header("Set-Cookie", account_cookie(cf, path, "", 0));
    return r;
  }
  if (action != "revoke") return html_page(400, "Invalid request", "The form carried an unknown action.");

  std::string sid, raw;
  if (form->find(std::string(kAccountSessionField), &sid) != Params::Lookup::one || sid.empty() ||
      sid.size() > kMaxSessionId)
    return not_found();
  StoreStatus st = store.get("session:" + sid, &raw);
  if (st != StoreStatus::ok && st != StoreStatus::not_found) return store_failure_page(st);
  Session s;
  // Another user's session is answered as one that does not exist.
  if (st == StoreStatus::not_found || !decode_session_into(raw, &s) || s.sub != a->sub) {
    Response r = not_found();
    r.event(MCPA_EV_REVOCATION, "account.revocation_refused", "unknown").subject = a->sub;
    return r;
  }
  // Every browser's remembered consent for the client is asked again: the
  // mark outlives any approval remembered before it.
  st = store.put(consent_forgot_key(s.sub, s.client_id), std::to_string(req.now),
                 req.now + remembered_consent_seconds(cf) + 1);
  if (st != StoreStatus::ok) return store_failure_page(st);
  Session ended;
  st = end_session(store, sid, req.now, &ended);
  if (st == StoreStatus::not_found) return not_found();  // ended meanwhile
  if (st != StoreStatus::ok) return store_failure_page(st);

  Response r = redirect_to(page_url(cf, add_query(path, {{"revoked", "1"}})));
  // The consent this browser remembered for the app goes with it: the app
  // has to ask again.
  std::string forget = forget_consent_cookie(cf, req, ended.client_id, ended.redirect_uri);
  if (!forget.empty()) r.header("Set-Cookie", forget);
  Event& e = r.event(MCPA_EV_REVOCATION, "account.revoked", "revoked");
  e.subject = ended.sub;
  e.client_id = ended.client_id;
  e.session_tag = session_log_tag(sid);
  return r;
}

}  // namespace

Response handle_account(const Config& cf, Store& store, const Request& req) {
  if (!cf.keys || !cf.has_provider())
    return html_page(500, "Not configured", "The sign-in service is not configured.");
  if (req.method == "GET") {
    auto a = open_account(cf, req);
    if (!a) return start_sign_in(cf, req);
    return show(cf, store, req, *a);
  }
  if (req.method == "POST") return act(cf, store, req);
  Response r = html_page(405, "Method not allowed", "Use GET, or the page's forms.");
  r.header("Allow", "GET, POST");
  return r;
}

Response account_signed_in(const Config& cf, const Request& req, const LoginState& login, const std::string& sub,
                           const std::string& display) {
  Fields f;
  f.set("v", "1");
  f.set("sub", sub);
  f.set("name", display);
  f.set("id", random_token(16));
  f.set_int("exp", req.now + kAccountSeconds);
  Response r = redirect_to(page_url(cf, login.account_path));
  r.header("Set-Cookie",
           account_cookie(cf, login.account_path, cf.keys->seal(kAccountPurpose, f.encode()), kAccountSeconds));
  Event& e = r.event(MCPA_EV_LOGIN, "account.signed_in", "completed");
  e.subject = sub;
  return r;
}

}  // namespace mcpauth
