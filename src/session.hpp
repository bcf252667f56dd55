// The records the endpoints keep in the Store, and the payloads sealed into
// the tokens and continuations they hand out.  Every record is a flat JSON
// object of strings ("v":"1" plus its fields; integers written in decimal),
// so a record from another version fails to decode instead of being misread.
//
//   key                      value            lifetime
//   newclient:<client_id>    ClientMetadata   min(client_ttl, 1 day), until a login
//                                             goes through it (unauthenticated)
//   client:<client_id>       ClientMetadata   the rest of client_ttl after that
//   cimd:<url>               ClientMetadata   a fetched metadata document's cache
//                                             lifetime (unauthenticated)
//   loginused:<nonce>        "1"              a completed login, until its state
//                                             expires (the state is single use)
//   session:<sid>            Session          session_ttl (absolute)
//   code:<sha256(code)>      CodeGrant        code_ttl
//   usedcode:<sha256(code)>  sid              until the session would end
//   jwks:<provider issuer>   provider JWKS    1 hour
//   renewing:<sid>           "1"              30 s (one provider refresh)
//   consentforgot:<sha256(sub)>:<sha256(client_id)>
//                            revoked at (decimal) as long as a remembered
//                                             consent lives: the user revoked
//                                             the client on the account page,
//                                             so consent remembered before that
//                                             in any browser is asked again
//   bysub:, byclient:, clients:, clientoff:   see session_index.hpp
//   exchange:<sid>:<audience key>, exchanging:<sid>:<audience key>
//                                             see token_exchange.hpp
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mcpauth {

// A flat JSON object of string values (integers as decimal strings).
class Fields {
 public:
  void set(const std::string& name, std::string value) { values_[name] = std::move(value); }
  void set_int(const std::string& name, int64_t value) { values_[name] = std::to_string(value); }
  // "" / 0 when absent; get_int fails (nullopt) on a non-integer.
  std::string str(const std::string& name) const;
  std::optional<int64_t> num(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  std::string encode() const;
  // nullopt unless a JSON object whose values are all strings.
  static std::optional<Fields> decode(std::string_view json);

 private:
  std::map<std::string, std::string> values_;
};

// An /authorize request that passed validation, waiting for consent.
struct PendingAuthz {
  std::string client_id;
  std::string redirect_uri;
  bool redirect_uri_sent = false;  // RFC 6749 §4.1.3: then /token must repeat it
  std::string state;               // the MCP client's state, echoed back
  std::string code_challenge;      // S256
  std::string scope;
  std::string resource;            // RFC 8707; "" when the client sent none
  int64_t created = 0;
};

// A login at the upstream provider: sealed into the state we send it.
struct LoginState {
  PendingAuthz authz;
  std::string provider_verifier;  // our PKCE verifier at the provider
  std::string nonce;              // also names the login once it completed
  std::string browser_hash;       // sha256_b64url of the login cookie value
  bool remember = false;          // "remember my choice" was ticked
  // Claim rules on scopes (mcp_auth_scope_claim): the consent page comes
  // after the sign-in, when the gateway knows which scopes the user may hold.
  bool consent_after = false;
  // A sign-in for the account page (account_endpoint.cpp), not for a
  // client: the page's path, where the callback sends the browser back with
  // the account cookie.  authz is then empty and nothing is stored.
  std::string account_path;
  bool account() const { return !account_path.empty(); }
  // The consent page was skipped because this browser remembered approving
  // the client: when that approval was given (0: it was not skipped).  A
  // user who revoked the client since (consentforgot:) sees the page again.
  int64_t remembered_at = 0;
};

// One user's grant to one client; every token refers to it by sid.
// Revocation deletes the record.  The provider's tokens are wiped
// (OPENSSL_cleanse) when a Session is destroyed.
struct Session {
  std::string sid, sub, name, email, client_id, scope, resource;
  // "client" for a service client's own session (grant_type=
  // client_credentials, sub "client:<ID>"); "" for a user's sign-in.
  std::string subject_type;
  std::string redirect_uri;  // where the client got its code (its host is shown to the user)
  std::string claims;  // what the claim rules keep (ClaimSet::to_record)
  // The audiences (their keys, space-separated) a backend's exchanged token
  // is cached for: deleted with the session (token_exchange.hpp).
  std::string exchanges;
  std::string provider_access_token, provider_refresh_token;
  int64_t provider_expires = 0;  // 0: unknown
  int64_t created = 0, expires = 0;
  int64_t gen = 0;         // refresh-token generation
  int64_t rotated_at = 0;  // when gen last changed

  Session() = default;
  Session(const Session&) = default;
  Session(Session&&) = default;
  Session& operator=(const Session&) = default;
  Session& operator=(Session&&) = default;
  ~Session() { wipe_provider_tokens(); }
  // Overwrites the provider's tokens with zeros and empties them.
  void wipe_provider_tokens();
};

// What an authorization code stands for (stored under its hash).
struct CodeGrant {
  std::string sid, client_id, redirect_uri, code_challenge, resource, scope;
  bool redirect_uri_sent = false;
  int64_t session_expires = 0;
};

// Sealed into access tokens (purpose access_token).
struct AccessClaims {
  std::string sid, client_id, scope, resource;
  int64_t exp = 0;
};

// Sealed into refresh tokens (purpose refresh_token).
struct RefreshClaims {
  std::string sid, client_id;
  int64_t gen = 0, exp = 0;
};

// Purpose bytes (KeyRing::seal), distinct from crypto.hpp's: continuations
// (the state a handler needs when the provider's answer comes back), a
// pending authorization request on its way through consent, and a login at
// the provider (its state parameter).
inline constexpr uint8_t kContinuationPurpose = 0x21;
inline constexpr uint8_t kPendingPurpose = 0x22;
inline constexpr uint8_t kLoginPurpose = 0x23;
// A completed sign-in waiting on the consent page that follows it.
inline constexpr uint8_t kGrantPurpose = 0x24;
// The account page's cookie: who signed in there, until when.
inline constexpr uint8_t kAccountPurpose = 0x25;

std::string encode_pending(const PendingAuthz& p);
std::optional<PendingAuthz> decode_pending(std::string_view text);
std::string encode_login(const LoginState& l);
std::optional<LoginState> decode_login(std::string_view text);
std::string encode_session(const Session& s);
// The one reader of session records: into *out, reusing its strings'
// buffers (the guard keeps one Session per worker); every field of *out is
// set.  False (and *out meaningless) when the text is not a session record.
bool decode_session_into(std::string_view text, Session* out);
// The same into a new Session.
std::optional<Session> decode_session(std::string_view text);
std::string encode_code(const CodeGrant& c);
std::optional<CodeGrant> decode_code(std::string_view text);
std::string encode_access(const AccessClaims& a);
std::optional<AccessClaims> decode_access(std::string_view text);
std::string encode_refresh(const RefreshClaims& r);
std::optional<RefreshClaims> decode_refresh(std::string_view text);

// Field-level helpers for sealed values built on Fields.
void put_pending(Fields& f, const PendingAuthz& p);
std::optional<PendingAuthz> get_pending(const Fields& f);
void put_login(Fields& f, const LoginState& l);
std::optional<LoginState> get_login(const Fields& f);

}  // namespace mcpauth
