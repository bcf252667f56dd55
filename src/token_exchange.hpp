// RFC 8693 token exchange at /token for backends: a tool server presents
// the identity assertion it received with an MCP request (subject_token,
// a JWT the gateway signed) and asks for a token of one downstream
// audience.  The gateway checks the backend (an operator-configured
// confidential client), the audience and scopes the operator allows it,
// the assertion and its live session; then gets the token from the
// organisation's provider the way the audience is configured
// (exchange_policy.hpp), through the provider-token subrequest.
//
// At most one request per session and audience asks the provider at a
// time: it holds exchanging:<sid>:<key> (put_new) while the others wait
// (Response::wait_ms) and then take its answer from exchange:<sid>:<key>,
// where a token stays until shortly before it expires (a refusal for
// kRefusalSeconds).  The session's record lists the keys it has (its
// `exchanges`), and ending the session deletes them.
#pragma once

#include <cstdint>
#include <string>

#include "endpoints.hpp"

namespace mcpauth {

inline constexpr const char* kTokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";

// An audience's short key in store keys: a digest of its name.
std::string exchange_audience_key(const std::string& audience);
std::string exchange_cache_key(const std::string& sid, const std::string& audience_key);

class Params;
// The grant; the form was parsed and checked for repeated parameters.
Response token_exchange_grant(const Config& cf, Store& store, const Request& req, const Params& form);

// The provider answered (continuation: sealed Fields of kind "exchange" or
// "exchange-renew"); false when the continuation is not one of these.
bool is_exchange_continuation(const Fields& f);
Response resume_token_exchange(const Config& cf, Store& store, const Request& req, const Fields& continuation,
                               int fetch_status, const std::string& fetch_body);

}  // namespace mcpauth
