// GET /authorize (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707, RFC 9207).
//
// The client and its redirect URI are checked FIRST and failures shown as
// an HTML page: an unverified redirect URI must never receive the browser
// (RFC 6749 §4.1.2.1, OAuth 2.1 §4.1.2.1).  Every later error is for the
// client, with state and iss: sent there automatically only when this
// browser approved the client and logged in through it before, else shown
// on a page with a link there (report_to_client, RFC 9700 §4.11.2).
//
// Nothing is stored: the validated request travels sealed through the
// consent page (seal_pending).
#include <algorithm>

#include "client_metadata_document.hpp"
#include "consent_page.hpp"
#include "crypto.hpp"
#include "encoding.hpp"
#include "endpoints.hpp"
#include "pkce.hpp"
#include "redirect_uri.hpp"
#include "session_index.hpp"

namespace mcpauth {
namespace {

Response bad_request_page(const std::string& message) {
  return html_page(400, "Invalid sign-in request", message);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The client's state is echoed back and travels sealed through the login:
// bounded, like everything a client hands us to keep.
constexpr size_t kMaxStateLength = 512;

bool contains_port(const std::vector<int>& ports, int port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

}  // namespace

Response handle_authorize(const Config& cf, Store& store, const Request& req) {
  if (req.method != "GET") {
    Response r = html_page(405, "Method not allowed", "Use GET for the authorization endpoint.");
    r.header("Allow", "GET");
    return r;
  }
  if (!cf.keys) return html_page(500, "Not configured", "The sign-in service is not configured (key file).");
  auto params = Params::parse(req.args);
  if (!params) return bad_request_page("The sign-in request is malformed.");

  // 1. The client.
  std::string client_id;
  switch (params->find("client_id", &client_id)) {
    case Params::Lookup::absent: return bad_request_page("The request names no client (client_id is missing).");
    case Params::Lookup::repeated: return bad_request_page("The client_id parameter is repeated.");
    case Params::Lookup::one: break;
  }
  ClientMetadata client;
  StoreStatus st = load_client(store, client_id, &client);
  if (st == StoreStatus::not_found) {
    // A client_id that is an https URL names the client's metadata
    // document: fetch it (not cached yet), then come back here.
    if (auto where = client_id_document_location(client_id)) {
      if (!cf.cimd || !cf.cimd_fetch)
        return bad_request_page("This server does not accept client metadata documents; the application "
                                "must register first.");
      // Only the configured ports (443): a client-chosen URL must not make
      // the gateway talk to another service on the host (SSRF).
      if (!contains_port(cf.cimd_ports, where->port))
        return bad_request_page("The application's metadata document is on a port this server does not "
                                "fetch from (" + std::to_string(where->port) + ").");
      Response r;
      r.fetch.target = MCPA_FETCH_CLIENT_METADATA;
      r.fetch.host = where->host;
      r.fetch.port = where->port;
      r.fetch.path = where->path;
      r.fetch.continuation = client_id;
      return r;
    }
    return bad_request_page("The application that sent you here is not registered (unknown client_id). "
                            "Start again from your app.");
  }
  if (st != StoreStatus::ok) return store_failure_page(st);
  // An operator's kill switch (the admin API): no new sign-ins.
  st = client_disabled(store, client.client_id);
  if (st == StoreStatus::ok)
    return bad_request_page("This application has been disabled by the server's operator.");
  if (st != StoreStatus::not_found) return store_failure_page(st);

  // 2. The redirect URI: exact match with a registered one (loopback port
  // may vary, RFC 8252 §7.3).  Optional only when exactly one is registered.
  std::string redirect_uri;
  bool redirect_uri_sent = false;
  switch (params->find("redirect_uri", &redirect_uri)) {
    case Params::Lookup::repeated: return bad_request_page("The redirect_uri parameter is repeated.");
    case Params::Lookup::absent:
      if (client.redirect_uris.size() != 1)
        return bad_request_page("The request has no redirect_uri and the client registered several.");
      redirect_uri = client.redirect_uris.front();
      break;
    case Params::Lookup::one:
      redirect_uri_sent = true;
      if (!redirect_uri_matches(redirect_uri, client.redirect_uris))
        return bad_request_page("The redirect_uri is not one this client registered.");
      break;
  }

  // From here on, errors are for the client, at its validated redirect URI.
  // RFC 6749 §3.1: parameters must not repeat.
  std::string state;
  if (params->find("state", &state) == Params::Lookup::repeated) state.clear();
  auto fail = [&](const char* error, const std::string& description) {
    return report_to_client(cf, req, client.client_id, redirect_uri, state, error, description);
  };
  if (state.size() > kMaxStateLength) {
    state.clear();
    return fail("invalid_request", "state is longer than " + std::to_string(kMaxStateLength) + " characters");
  }
  for (const char* name : {"state", "response_type", "code_challenge", "code_challenge_method", "scope"}) {
    std::string ignored;
    if (params->find(name, &ignored) == Params::Lookup::repeated)
      return fail("invalid_request", std::string(name) + " is repeated");
  }

  std::string response_type;
  if (params->find("response_type", &response_type) == Params::Lookup::absent)
    return fail("invalid_request", "response_type is required");
  if (response_type != "code") return fail("unsupported_response_type", "only response_type=code is supported");
  if (!contains(client.response_types, "code") || !contains(client.grant_types, "authorization_code"))
    return fail("unauthorized_client", "this client did not register for the authorization code grant");

  // PKCE (OAuth 2.1 §4.1.1, RFC 7636): required, and S256 only.
  std::string method, challenge;
  if (params->find("code_challenge_method", &method) == Params::Lookup::absent)
    return fail("invalid_request", "code_challenge_method is required and must be S256");
  if (method == "plain") return fail("invalid_request", "PKCE method plain is not allowed; use S256");
  if (method != "S256") return fail("invalid_request", "code_challenge_method must be S256");
  if (params->find("code_challenge", &challenge) == Params::Lookup::absent)
    return fail("invalid_request", "code_challenge is required (PKCE)");
  if (!valid_challenge(challenge)) return fail("invalid_request", "code_challenge is not a valid S256 challenge");

  // Scope (RFC 6749 §3.3): every requested scope must be offered by the
  // server and, when the client registered a scope, be part of it.
  const std::vector<std::string> registered = split_scope(client.scope);
  std::string scope_text;
  std::vector<std::string> scopes;
  if (params->find("scope", &scope_text) == Params::Lookup::one && !split_scope(scope_text).empty()) {
    scopes = split_scope(scope_text);
    for (const auto& s : scopes) {
      if (!contains(cf.scopes, s)) return fail("invalid_scope", "scope \"" + s + "\" is not offered");
      if (!registered.empty() && !contains(registered, s))
        return fail("invalid_scope", "scope \"" + s + "\" was not registered by this client");
    }
  } else {
    scopes = registered.empty() ? cf.scopes : registered;
  }

  // Resource indicators (RFC 8707 §2): each one must name our resource.
  std::string resource;
  for (const auto& [name, value] : params->items()) {
    if (name != "resource") continue;
    if (!resource_matches(value, cf.resource))
      return fail("invalid_target", "this server issues tokens only for " + cf.resource);
    resource = cf.resource;
  }

  PendingAuthz authz;
  authz.client_id = client.client_id;
  authz.redirect_uri = redirect_uri;
  authz.redirect_uri_sent = redirect_uri_sent;
  authz.state = state;
  authz.code_challenge = challenge;
  authz.scope = join_scope(scopes);
  authz.resource = resource;
  authz.created = req.now;

  // With claim rules on scopes the consent page offers only the scopes the
  // user may hold: it follows the sign-in, which tells who the user is.
  if (cf.access.has_scope_rules()) return start_provider_login(cf, req, authz, false, true);

  // Consent already given in this browser for this client, redirect URI
  // and every scope asked for: straight on to the provider.  Anything more
  // goes through the consent page, which names what is new.
  auto remembered = remembered_scopes(cf, req, authz.client_id, authz.redirect_uri);
  if (remembered && std::all_of(scopes.begin(), scopes.end(), [&](const std::string& s) {
        return contains(*remembered, s);
      }))
    return start_provider_login(cf, req, authz, false, false,
                                remembered_since(cf, req, authz.client_id, authz.redirect_uri));

  return redirect_to(
      add_query(cf.url(cf.consent_path), {{"authz", seal_pending(cf, authz, req.now + cf.login_ttl)}}));
}

Response resume_authorize(const Config& cf, Store& store, const Request& req,
                          const std::string& continuation, int fetch_status, const std::string& fetch_body) {
  const std::string& client_id = continuation;
  if (!client_id_document_location(client_id)) return html_page(500, "Sign-in failed", "Start again from your app.");
  if (fetch_status == 0)
    return html_page(502, "Application unknown",
                     "The application's metadata document could not be fetched (unreachable, refused "
                     "address, too large, or too slow). Start again from your app.");
  // The status is not echoed: it would tell a prober what answers at an
  // address the gateway can reach.
  if (fetch_status != 200)
    return html_page(400, "Application unknown",
                     "The application's metadata document could not be fetched. Start again from your app.");
  if (fetch_body.size() > kMaxClientDocument)
    return html_page(400, "Application not accepted",
                     "The application's metadata document is larger than " +
                         std::to_string(kMaxClientDocument / 1024) + " KiB.");
  auto parsed = parse_client_id_document(fetch_body, client_id, cf.scopes);
  if (auto* e = std::get_if<RegistrationError>(&parsed))
    return html_page(400, "Application not accepted", "The application's metadata document is not valid: " +
                                                          e->description + ".");
  auto& client = std::get<ClientMetadata>(parsed);
  client.client_id_issued_at = req.now;
  // Anyone can make the gateway fetch a document: it is kept as an
  // unauthenticated entry (its own budget, evicted oldest first).
  StoreStatus st = store.put("cimd:" + client_id, serialize_client(client),
                             req.now + client_id_document_lifetime(req.fetch_cache_control),
                             StoreClass::unauthenticated);
  if (st != StoreStatus::ok) return store_failure_page(st);
  return handle_authorize(cf, store, req);
}

}  // namespace mcpauth
