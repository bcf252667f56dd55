// One handler per endpoint.  Each takes the parsed request and returns the
// response; none of them does I/O of its own: state goes through Store,
// time comes from Request::now, randomness from crypto.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "registration.hpp"
#include "response.hpp"
#include "session.hpp"
#include "store.hpp"

namespace mcpauth {

struct Request {
  std::string method, uri, args, body, content_type, cookie, origin, sec_fetch_site,
      authorization;
  std::string fetch_cache_control;  // of the last fetch's answer
  int64_t now = 0;
  int waits = 0;  // how often this request waited already (Response::wait_ms)
  std::string request_id;  // unique to the request, the same for all its runs
};

Response handle_authorization_server_metadata(const Config& cf, const Request& req);
Response handle_protected_resource_metadata(const Config& cf, const Request& req);

Response handle_register(const Config& cf, Store& store, const Request& req);
Response handle_authorize(const Config& cf, Store& store, const Request& req);
// The client's metadata document arrived (continuation: its URL).
Response resume_authorize(const Config& cf, Store& store, const Request& req,
                          const std::string& continuation, int fetch_status, const std::string& fetch_body);
Response handle_consent(const Config& cf, Store& store, const Request& req);
Response handle_callback(const Config& cf, Store& store, const Request& req);
Response resume_callback(const Config& cf, Store& store, const Request& req,
                         const std::string& continuation, int fetch_status,
                         const std::string& fetch_body);
Response handle_token(const Config& cf, Store& store, const Request& req);
Response resume_token(const Config& cf, Store& store, const Request& req,
                      const std::string& continuation, int fetch_status,
                      const std::string& fetch_body);
// A session begun without a browser (client credentials, an enterprise
// assertion): listed, stored, and its access token issued -- no refresh
// token, the session lasts as long as the token (token_endpoint.cpp).
Response open_session_and_issue(const Config& cf, Store& store, const Request& req, const Session& s);
class Params;
// Every `resource` parameter of a /token form names the gateway's resource
// (RFC 8707 §2.2).
bool resources_ok(const Config& cf, const Params& form);
Response handle_revoke(const Config& cf, Store& store, const Request& req);
Response handle_admin(const Config& cf, Store& store, const Request& req);
// GET/POST /account: the user's connected apps (account_endpoint.cpp).
Response handle_account(const Config& cf, Store& store, const Request& req);
// The callback's end of an account sign-in (LoginState::account()): the ID
// token checked out and the claim rules admit `sub`; sets the account
// cookie and sends the browser back to the page.  Nothing is stored.
Response account_signed_in(const Config& cf, const Request& req, const LoginState& login, const std::string& sub,
                           const std::string& display);

// Dispatch by endpoint (capi.cpp calls these two only).
Response handle_endpoint(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req);
Response resume_endpoint(mcpa_endpoint_e ep, const Config& cf, Store& store, const Request& req,
                         const std::string& continuation, int fetch_status,
                         const std::string& fetch_body);

// --- helpers shared by the handlers (dispatch.cpp) ----------------------

// Store failures as the client sees them: full -> 503 temporarily_unavailable
// with Retry-After, anything else -> 500 server_error.  JSON for the OAuth
// endpoints, an HTML page for the browser ones.  pending -> an empty
// response at no cost: the run is discarded (store.hpp).
Response store_failure_json(StoreStatus st);
Response store_failure_page(StoreStatus st);

// A self-contained HTML page (consent_page.hpp) with the browser-facing
// security headers (CSP, X-Frame-Options, no-store, no-referrer).
Response html_page(int status, const std::string& title, const std::string& message);
void add_page_security_headers(Response& r, const std::string& form_action);
// The same for a page whose forms post back to the gateway (consent, the
// account page): Referrer-Policy same-origin, not no-referrer, under which
// browsers send "Origin: null" with the form's own POST.
void add_form_page_headers(Response& r, const std::string& form_action);
// A form POST the user made on the gateway's own page: not cross-site
// (Fetch Metadata), and Origin, when sent, the issuer's.
bool form_post_from_gateway(const Config& cf, const Request& req);

// 302 with Location and Cache-Control: no-store.
Response redirect_to(const std::string& location);
// `uri` plus "?" or "&" and the percent-encoded parameters (empty values
// are left out).
std::string add_query(const std::string& uri,
                      const std::vector<std::pair<std::string, std::string>>& params);
// The 302 back to the client's redirect URI with an error (RFC 6749
// §4.1.2.1) and the issuer (RFC 9207).
Response redirect_error(const Config& cf, const std::string& redirect_uri, const std::string& state,
                        const std::string& error, const std::string& description);

// Cookie names: "__Host-<base>" when secure_cookies, else "<base>".
std::string cookie_name(const Config& cf, const char* base);
// Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure when configured;
// max_age < 0 omits Max-Age (a browser-session cookie), 0 deletes.
std::string set_cookie(const Config& cf, const std::string& name, const std::string& value,
                       int64_t max_age);

// "scheme://host[:port]" of an http(s) URL; "scheme:" for other schemes
// (custom-scheme redirect URIs); "" when the URL does not parse or holds a
// character that must not reach a header.
std::string url_origin(const std::string& url);

// media type of a Content-Type value, lowercased, parameters dropped.
std::string media_type(const std::string& content_type);

// Registrations: newclient:<id> (unauthenticated, at most a day) until a
// login goes through it, then client:<id> for the rest of client_ttl.
inline constexpr std::string_view kClientPrefix = "client:";
inline constexpr std::string_view kNewClientPrefix = "newclient:";
inline constexpr int64_t kUnusedClientSeconds = 86400;

// Loads client:<id>, else newclient:<id> (or cimd:<url> for a metadata
// document).  not_found also when the record does not decode.
StoreStatus load_client(Store& store, const std::string& client_id, ClientMetadata* out);

// A login went through the client: a registration still under newclient:
// becomes client:<id> until client_id_issued_at + client_ttl.  Documents
// and clients already promoted are left as they are.
StoreStatus promote_client(const Config& cf, Store& store, const std::string& client_id);

// Scopes: split on spaces, duplicates dropped, order kept.
std::vector<std::string> split_scope(const std::string& scope);
std::string join_scope(const std::vector<std::string>& scopes);

// Keys derived from the KeyRing for the browser-side MACs.
std::string csrf_key(const Config& cf);
std::string consent_cookie_key(const Config& cf);

// Cookie base names.
inline constexpr const char* kBrowserCookie = "mcp_browser";
inline constexpr const char* kLoginCookie = "mcp_login";
inline constexpr const char* kConsentCookie = "mcp_consent";

// Step 4 of the flow (consent allowed, or remembered): seals the login into
// the state sent to the provider, sets the login cookie (the browser
// binding) and answers 303 to the provider.  `remember`: the user ticked
// "remember my choice" (the cookie is set once the login has completed).
// consent_after: the consent page follows the sign-in (claim rules on
// scopes), shown by the callback.
Response start_provider_login(const Config& cf, const Request& req, const PendingAuthz& authz, bool remember,
                              bool consent_after = false, int64_t remembered_at = 0);
// The part of it every sign-in shares (a client's or the account page's):
// a new PKCE verifier, nonce and browser binding in `login`, sealed into
// the state; the login cookie and the 303 to the provider.
Response send_to_provider(const Config& cf, const Request& req, LoginState login);

// The consent page for `client` and a request for `scope`: the browser
// cookie (set when missing) and a CSRF token bound to it, the client and
// the redirect URI; `carried` is the sealed request (or sign-in) the form
// posts back; `user_display` names the account once it is known.
Response consent_page_response(const Config& cf, const Request& req, const ClientMetadata& client,
                               const std::string& redirect_uri, const std::string& scope,
                               std::pair<std::string, std::string> carried, const std::string& form_action,
                               const std::string& user_display);

// The consent page's answer when it followed the sign-in: the form carries
// the completed sign-in sealed (`grant`).  Fetch Metadata, Origin and the
// form's media type were checked by the caller.
class Params;
Response decide_after_login(const Config& cf, Store& store, const Request& req, const Params& form);

// "remember consent" cookie: the scopes this browser approved for
// client_id + redirect_uri (nullopt when none are remembered); and the new
// cookie value with `scope` added for that pair (at most 10 pairs kept).
std::optional<std::vector<std::string>> remembered_scopes(const Config& cf, const Request& req,
                                                         const std::string& client_id,
                                                         const std::string& redirect_uri);
bool consent_remembered(const Config& cf, const Request& req, const std::string& client_id,
                        const std::string& redirect_uri);
// When this browser approved the pair (its entry's expiry less the time an
// entry lives); 0 when it remembers nothing for it.
int64_t remembered_since(const Config& cf, const Request& req, const std::string& client_id,
                         const std::string& redirect_uri);
// How long a remembered consent lives (cookie and entries).
int64_t remembered_consent_seconds(const Config& cf);
// consentforgot:<sha256(sub)>:<sha256(client_id)> (session.hpp)
std::string consent_forgot_key(const std::string& sub, const std::string& client_id);
std::string remember_consent_value(const Config& cf, const Request& req, const std::string& client_id,
                                   const std::string& redirect_uri, const std::string& scope);
// The Set-Cookie header value that forgets the pair (the cookie rewritten
// without it, or deleted when nothing is left); "" when this browser
// remembered nothing for it.
std::string forget_consent_cookie(const Config& cf, const Request& req, const std::string& client_id,
                                  const std::string& redirect_uri);

// An error (or a denial) for the client at its validated redirect URI: a
// 303 there when this browser approved the client and logged in through it
// (remembered consent), else a page naming the outcome with a link there
// (RFC 9700 §4.11.2: no automatic redirect to a client the user has not
// approved).
Response report_to_client(const Config& cf, const Request& req, const std::string& client_id,
                          const std::string& redirect_uri, const std::string& state, const std::string& error,
                          const std::string& description);

// The pending authorization request (through consent) and the provider
// login (its state parameter) travel sealed, with an expiry inside; open_*
// give nullopt when the text does not open, is expired or too long.
inline constexpr size_t kMaxSealedFlowLength = 16384;
std::string seal_pending(const Config& cf, const PendingAuthz& authz, int64_t expires);
std::optional<PendingAuthz> open_pending(const Config& cf, std::string_view text, int64_t now);
std::string seal_login(const Config& cf, const LoginState& login, int64_t expires);
std::optional<LoginState> open_login(const Config& cf, std::string_view text, int64_t now);

// Client authentication at /token and /revoke (RFC 6749 §2.3.1): HTTP Basic
// or client_secret_post for confidential clients, client_id alone for
// public ones.  On failure `error` holds the response to send.
struct ClientAuth {
  bool ok = false;
  ClientMetadata client;
  Response error;
};
class Params;
ClientAuth authenticate_client(const Config& cf, Store& store, const Request& req,
                               const Params& form);

// The credentials a request presents (HTTP Basic, or client_id and
// client_secret in the form; never both), before anyone checks them.
struct ClientCredentials {
  bool ok = false;
  bool basic = false;  // HTTP Basic was used (a 401 then names the scheme)
  std::string client_id, secret;
  Response error;
};
ClientCredentials read_client_credentials(const Config& cf, const Request& req, const Params& form);
// 401 invalid_client, with WWW-Authenticate when Basic was used.
Response invalid_client_error(const Config& cf, const std::string& description, bool basic_used);

}  // namespace mcpauth
