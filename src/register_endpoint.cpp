// POST /register: OAuth 2.0 Dynamic Client Registration (RFC 7591).
// Anyone may register, so a registration starts as an unauthenticated
// entry, newclient:<client_id>, that lives a day at most; the first login
// through it makes it client:<client_id> for the rest of client_ttl
// (promote_client).  Only the SHA-256 of a confidential client's secret is
// kept.
#include <algorithm>

#include "crypto.hpp"
#include "endpoints.hpp"

namespace mcpauth {
namespace {

constexpr const char* kMethods = "POST, OPTIONS";

Response register_client(const Config& cf, Store& store, const Request& req) {
  if (req.method != "POST") return method_not_allowed(kMethods);
  // RFC 7591 §3.1: the request is a JSON document.
  if (media_type(req.content_type) != "application/json")
    return oauth_error(400, "invalid_client_metadata",
                       "the registration request must be sent as Content-Type: application/json");
  auto parsed = parse_registration_request(req.body, cf.scopes);
  if (auto* err = std::get_if<RegistrationError>(&parsed)) return oauth_error(400, err->error, err->description);
  ClientMetadata& client = std::get<ClientMetadata>(parsed);

  client.client_id_issued_at = req.now;
  std::string secret;
  if (client.token_endpoint_auth_method != "none") {
    secret = random_token(32);
    client.client_secret_hash = sha256_b64url(secret);
  }
  // 16 random bytes: a 22-character id nobody can guess or enumerate.  A
  // collision is practically impossible; put_new makes it harmless anyway.
  StoreStatus st = StoreStatus::exists;
  for (int attempt = 0; attempt < 3 && st == StoreStatus::exists; ++attempt) {
    client.client_id = random_token(16);
    if (auto too_big = stored_size_error(client)) return oauth_error(400, too_big->error, too_big->description);
    st = store.put_new(std::string(kNewClientPrefix) + client.client_id, serialize_client(client),
                       req.now + std::min(cf.client_ttl, kUnusedClientSeconds), StoreClass::unauthenticated);
  }
  if (st != StoreStatus::ok) return store_failure_json(st == StoreStatus::exists ? StoreStatus::error : st);
  Response r = json_response(201, registration_response_json(client, secret.empty() ? nullptr : &secret));
  r.event(MCPA_EV_REGISTRATION, "client.registered", "ok").client_id = client.client_id;
  return r;
}

}  // namespace

Response handle_register(const Config& cf, Store& store, const Request& req) {
  if (req.method == "OPTIONS") return preflight(cf, req.origin, kMethods);
  Response r = register_client(cf, store, req);
  add_cors(r, cf, req.origin);
  return r;
}

}  // namespace mcpauth
