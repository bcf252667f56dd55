// Which backends may exchange a user's identity assertion for a token of
// which downstream audience (mcp_auth_exchange_client), and how the gateway
// gets that token from the provider (mcp_auth_exchange_audience).  Parsed
// from the directives' lines; the files they name are read by Config::load.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "configured_client.hpp"

namespace mcpauth {

struct ExchangeAudience {
  // How the provider is asked: RFC 8693 token exchange (Keycloak's
  // standard token exchange), Microsoft's on-behalf-of flow (Entra ID), or
  // a refresh-token grant for the audience's scopes (providers whose
  // refresh tokens serve several audiences).
  enum class Method { token_exchange, on_behalf_of, refresh_token };

  std::string name;  // what a backend asks for (audience=)
  Method method = Method::token_exchange;
  // The scopes a backend may ask for at this audience, passed to the
  // provider as they are (Entra: "https://graph.microsoft.com/User.Read").
  // Empty: backends ask for none and the provider decides.
  std::vector<std::string> scopes;
  // token_exchange: the `audience` (default: name) and `resource` (none)
  // sent to the provider.
  std::string provider_audience, provider_resource;
};

// One audience a backend may ask for, and the scopes it may ask for there
// (empty: all of the audience's).
struct ExchangeGrant {
  std::string audience;
  std::vector<std::string> scopes;
};

// A backend (its credential: configured_client.hpp) and the audiences it
// may ask for.
struct ExchangeClient : ConfiguredClient {
  std::vector<ExchangeGrant> grants;

  const ExchangeGrant* grant_for(std::string_view audience) const;
};

inline constexpr size_t kMaxExchangeAudiences = 16;
inline constexpr size_t kMaxExchangeClients = 64;

// One directive's line, its words apart by tabs:
//   AUDIENCE method=token_exchange|on_behalf_of|refresh_token [scope=S...]
//            [provider_audience=A] [provider_resource=URI]
//   CLIENT_ID secret_file=PATH|jwks_file=PATH audience=A [scope=S...] ...
// (a client's scope= applies to the audience= before it).  nullopt and a
// message naming the directive in *err.
std::optional<ExchangeAudience> parse_exchange_audience(std::string_view line, std::string* err);
std::optional<ExchangeClient> parse_exchange_client(std::string_view line, std::string* err);

const char* exchange_method_word(ExchangeAudience::Method m);

}  // namespace mcpauth
