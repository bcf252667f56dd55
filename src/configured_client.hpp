// Confidential clients the operator configures in nginx.conf rather than
// registers: backends of the token exchange (mcp_auth_exchange_client,
// exchange_policy.hpp) and services of the client-credentials grant
// (mcp_auth_service_client).  What they share lives here: the words of their
// directives' lines, the credential the line names (secret_file= or
// jwks_file=) read by Config::load, and the client authentication at /token
// -- client_secret_basic / _post against the secret's hash, or a
// private_key_jwt assertion (RFC 7523) whose jti is good for one request.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jwks.hpp"

namespace mcpauth {

struct ConfiguredClient {
  std::string client_id;
  // client_secret_basic / _post: the file holds the secret (one line, at
  // least kMinSecretLength characters); only its SHA-256 is kept.
  std::string secret_file, secret_hash;
  // private_key_jwt (RFC 7523): the client's public keys, a JWKS file, or
  // an internal location proxied to its jwks_uri (fetched when an
  // assertion needs them, cached in the store an hour under
  // jwks:client:<ID>, so a key rotation needs no reload).
  std::string jwks_file, jwks_location;
  std::vector<Jwk> keys;

  static constexpr size_t kMinSecretLength = 32;
};

// A service that calls tools as itself (grant_type=client_credentials):
// the scopes it may ask for (all of them when it names none) and the name
// the admin API and the identity assertion show.
struct ServiceClient : ConfiguredClient {
  std::vector<std::string> scopes;
  std::string name;
};

inline constexpr size_t kMaxServiceClients = 64;
// The subject of a service client's tokens and sessions: "client:<ID>".
inline constexpr std::string_view kClientSubjectPrefix = "client:";

// One mcp_auth_service_client line, its words apart by tabs:
//   CLIENT_ID secret_file=PATH|jwks_file=PATH scope=S... [name=DISPLAY NAME]
// nullopt and a message naming the directive in *err.
std::optional<ServiceClient> parse_service_client(std::string_view line, std::string* err);

// An app that acts for users on the word of their enterprise's identity
// provider (grant_type=jwt-bearer with an ID-JAG, enterprise_grant.hpp):
// the issuers whose assertions it may present, the scopes its users'
// tokens may hold at most, and its display name.
struct EnterpriseClient : ServiceClient {
  std::vector<std::string> issuers;
};

inline constexpr size_t kMaxEnterpriseClients = 64;

// One mcp_auth_enterprise_client line:
//   CLIENT_ID secret_file=PATH|jwks_file=PATH issuer=URL... scope=S... [name=DISPLAY NAME]
std::optional<EnterpriseClient> parse_enterprise_client(std::string_view line, std::string* err);

// The words of a directive's line (the glue joins them with tabs).
std::vector<std::string_view> directive_words(std::string_view line);
// An audience, client id or path: visible ASCII without quotes or
// backslashes (it goes into audit lines and provider requests).
bool plain_word(std::string_view w);
// RFC 6749 §3.3 scope-tokens, space-separated, each kept once; false when
// there is none or one is malformed.
bool parse_scope_words(std::string_view text, std::vector<std::string>* out);
// NAME=VALUE; false when the word has no "=".
bool split_setting(std::string_view word, std::string_view* name, std::string_view* value);

// secret_file=, jwks_file= or jwks_location= on a client's line: true when
// the setting was one of them, taken into *c; false for any other setting,
// or one given twice.
bool take_credential_setting(std::string_view name, std::string_view value, ConfiguredClient* c);
// Exactly one of them was given; else a message for the directive.
// (load_credential has nothing to read for a jwks_location.)
std::string check_credential_settings(const char* directive, const ConfiguredClient& c);
// Reads the file the client's line names: the secret's hash, or the JWKS's
// keys.  "" or a message that begins with `where`.
std::string load_credential(const std::string& where, ConfiguredClient* c);

struct Config;
struct Request;
struct Response;
class Params;
class Store;

// Which configured clients a request is looked up among.
using ConfiguredClientFinder = const ConfiguredClient* (*)(const Config&, std::string_view client_id);

// The client a /token request authenticates as, among those `find` knows:
// HTTP Basic or client_secret_post against the secret's hash, or a
// client_assertion (RFC 7523 §3: iss = sub = the client id, aud the token
// endpoint or the issuer, at most 10 minutes to live, a jti the store keeps
// until the assertion expires).  *client_id is who the request claims to
// be, once that is known.  nullptr with *error (401 invalid_client, 400
// invalid_request, or a store failure); *unknown is then true when the
// request named no client `find` knows (it may be a registered one).
//
// A client with a jwks_location whose keys are not cached (or lack the
// assertion's kid) gets *error = a fetch of that location; the answer's
// continuation (kind "client_jwks") goes to resume_client_jwks, which
// caches the keys, and the request then runs again from the start.  A set
// fetched in the last kJwksRefetchSeconds is not fetched again for a kid it
// lacks: that assertion is invalid_client.
const ConfiguredClient* authenticate_configured_client(const Config& cf, Store& store, const Request& req,
                                                       const Params& form, ConfiguredClientFinder find,
                                                       std::string* client_id, bool* unknown, Response* error);

// authenticate_configured_client for a grant that only configured clients
// may use: a registered client that proves who it is gets
// unauthorized_client, saying `who_may` (the directive); anyone else what a
// wrong secret gets.
const ConfiguredClient* authenticate_for_grant(const Config& cf, Store& store, const Request& req,
                                               const Params& form, ConfiguredClientFinder find,
                                               const std::string& who_may, std::string* client_id, Response* error);

class Fields;
bool is_client_jwks_continuation(const Fields& f);
// Caches what the location answered; true when the request may now run
// again, else false with the answer to send in *answer (503 when the keys
// could not be had).
bool resume_client_jwks(Store& store, const Request& req, const Fields& f, int fetch_status,
                        const std::string& fetch_body, Response* answer);

}  // namespace mcpauth
