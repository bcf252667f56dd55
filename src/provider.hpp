// The upstream OpenID provider as the gateway's own OAuth client sees it:
// the authorization URL it sends the browser to, the token requests it
// makes (authorization_code, refresh_token) with the configured client
// authentication, and the provider's token response.  Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "config.hpp"
#include "response.hpp"

namespace mcpauth {

// <provider_authorization_endpoint>?response_type=code&client_id=...&
// redirect_uri=<issuer><callback_path>&scope=...&state=...&nonce=...&
// code_challenge=...&code_challenge_method=S256.  The MCP client's
// `resource` is never forwarded: it names our resource, not the provider's.
std::string provider_authorization_url(const Config& cf, const std::string& state,
                                       const std::string& nonce, const std::string& code_challenge);

struct ProviderRequest {
  bool ok = false;
  std::string body;           // application/x-www-form-urlencoded
  std::string authorization;  // "Basic ..." for client_secret_basic
  std::string error;          // when !ok (a private_key_jwt signing failure)
};

ProviderRequest provider_code_request(const Config& cf, const std::string& code,
                                      const std::string& code_verifier, int64_t now);
ProviderRequest provider_refresh_request(const Config& cf, const std::string& refresh_token, int64_t now);

// A token for a downstream audience, asked for the way the audience is
// configured (exchange_policy.hpp): RFC 8693 token exchange with the
// user's provider access token as subject_token; Microsoft's on-behalf-of
// flow (a jwt-bearer grant with requested_token_use=on_behalf_of) with it
// as assertion; or a refresh_token grant with the user's provider refresh
// token.  `user_token` is the token that method needs; `scope` may be "".
ProviderRequest provider_exchange_request(const Config& cf, const ExchangeAudience& audience,
                                          const std::string& user_token, const std::string& scope, int64_t now);

// The response that asks the glue to send `pr` to the provider's token
// endpoint (the token subrequest) and to resume with `continuation`.
Response provider_token_fetch(ProviderRequest pr, std::string continuation);

struct ProviderTokens {
  std::string access_token, id_token, refresh_token, scope;
  int64_t expires_in = 0;  // 0: not given
};

// A 200 token response (RFC 6749 §5.1).  Needs access_token and
// token_type Bearer; id_token is the caller's business.  Else a reason.
std::variant<ProviderTokens, std::string> parse_provider_tokens(const std::string& body);

// The `error` code of a provider error response (RFC 6749 §5.2), reduced to
// its allowed characters; "" when none.
std::string provider_error_code(const std::string& body);

}  // namespace mcpauth
