// Keeping the provider's tokens in a session fresh: shared by the token
// endpoint (a client's refresh) and the guard (an MCP request that finds the
// provider's access token expired).  One renewal at a time per session,
// across all workers, through a `renewing:<sid>` entry.
#pragma once

#include <cstdint>
#include <string>

#include "session.hpp"
#include "store.hpp"

namespace mcpauth {

// Whether the session holds a provider token that expires within `margin`
// seconds and can be renewed.
bool provider_renewal_due(const Session& s, int64_t now, int64_t margin);

// Claims the session's renewal for 30 s: ok when claimed, exists when
// another request has it, else the store's failure (pending among them).
StoreStatus claim_provider_renewal(Store& store, const std::string& sid, int64_t now);

enum class RenewalOutcome {
  renewed,      // new provider tokens stored in the session
  ended,        // the provider said invalid_grant, or the claim rules no
                // longer admit the user: the session is deleted
  unavailable,  // unreachable, 5xx, or an unusable answer: nothing changed
  pending,      // a store operation's answer is not known yet (store.hpp)
};

struct Config;

// Applies the provider's answer to a refresh_token request and releases the
// claim.  With claim rules (Config::access) the answer's ID token is
// checked against them again: the session ends, or keeps the claims and
// the scopes they allow now.
RenewalOutcome apply_provider_renewal(const Config& cf, Store& store, const std::string& sid, int fetch_status,
                                      const std::string& fetch_body, int64_t now);

// The outcome's word in the audit log and the metrics: renewed, ended,
// failed (unavailable).
const char* renewal_outcome_word(RenewalOutcome o);

}  // namespace mcpauth
