// Verification of the gateway's identity assertion (header X-MCP-Identity):
// a short-lived JWT signed by ngx_mcp_auth with HS256 (shared secret) or
// ES256 (gateway's public key).
#pragma once

#include "config.hpp"

#include "../src/claims.hpp"  // mcpauth::ClaimSet

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace toolserver {

struct Identity {
    std::string subject;
    std::string client_id;
    std::string scope;
    mcpauth::ClaimSet claims;  // the assertion's "claims" member; empty when absent
};

class IdentityVerifier {
public:
    // Loads the key named in `cfg`. Null (with `error`) when unusable.
    static std::unique_ptr<IdentityVerifier> create(const Config& cfg, std::string& error);

    // True when `token` is a valid assertion; fills `out`. Otherwise `why`
    // says what failed (safe to return to the caller, never contains the token).
    bool verify(std::string_view token, Identity& out, std::string& why) const;

private:
    IdentityVerifier() = default;
    bool verify_uncached(const std::string& token, Identity& out, std::string& why) const;

    // Assertions already verified, by their exact text: the gateway reuses
    // one per session for minutes, so the signature, issuer, audience and
    // algorithm of a byte-identical token need no second look; its times
    // are checked again on every request.  Bounded (emptied when full).
    // A token is compared with the cached ones in constant time, and hashed
    // by its last bytes (the signature; only verified tokens are stored).
    // Only the event-loop thread uses it (the server has no other threads).
    struct Verified {
        std::string token;  // the key views these bytes
        Identity identity;
        long exp, iat, nbf;
        bool has_nbf;
    };
    struct TailHash {
        size_t operator()(std::string_view token) const noexcept;
    };
    struct ConstantTimeEqual {
        bool operator()(std::string_view a, std::string_view b) const noexcept;
    };
    static constexpr size_t kMaxCached = 10000;
    mutable std::unordered_map<std::string_view, std::unique_ptr<Verified>, TailHash, ConstantTimeEqual> cache_;

    std::vector<unsigned char> key_;
    bool es256_ = false;
    std::string iss_;
    std::string aud_;
};

}  // namespace toolserver
