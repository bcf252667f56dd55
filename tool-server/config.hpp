// Run-time configuration, filled from the command line by main.cpp.
#pragma once

#include "tool_claims.hpp"
#include "tool_scopes.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace toolserver {

enum class SnippetScope { Private, Shared };
enum class StoreKind { Sqlite, Redis };

// A host (IP address or name) and port, as --redis-sentinel gives it.
struct RedisAddress {
    std::string host;
    int port = 0;
};

// Where the Redis store connects and how it names its keys (--redis-*).
struct RedisConfig {
    std::string host = "127.0.0.1";
    int port = 6379;
    // Sentinel (--redis-sentinel, --redis-master): when set, host and port
    // are unused; the primary is whatever the Sentinels name for master_name.
    std::vector<RedisAddress> sentinels;
    std::string master_name;
    std::string sentinel_user;           // Sentinel's own ACL user; empty: the default user
    std::string sentinel_password_file;  // read at start
    int wait_replicas = 0;     // a save waits for WAIT to count this many replicas; 0: no WAIT
    int wait_timeout_ms = 500; // WAIT's own timeout, below timeout_ms
    std::string user;           // ACL user; empty: the default user
    std::string password_file;  // read at start; never a password on the command line
    int db = 0;
    std::string prefix = "mcp:snippet:";
    int timeout_ms = 1000;  // connect, handshake and per-command timeout
    bool allow_async_durability = false;
};

// The token exchange client (--exchange-*); an empty token_url: none.
struct ExchangeConfig {
    std::string token_url;
    std::string client_id;
    std::string client_secret_file;  // read at start; never a secret on the command line
    int timeout_ms = 5000;           // each outbound call, connect to the whole answer
};

// The sample tool whoami_downstream (--whoami-downstream-*); an empty url: not offered.
struct WhoamiConfig {
    std::string url;
    std::string audience;
    std::string scope;
};

struct Config {
    std::string listen_host = "127.0.0.1";
    int listen_port = 8808;
    StoreKind store = StoreKind::Sqlite;
    std::string data_dir = ".";
    RedisConfig redis;
    std::string identity_key_file;         // HS256 shared secret
    std::string identity_public_key_file;  // ES256 public key (PEM)
    std::string identity_iss = "ngx_mcp_auth";
    std::string identity_aud = "mcp-tool-server";
    bool insecure_no_auth = false;
    SnippetScope snippet_scope = SnippetScope::Private;
    std::vector<std::string> allowed_origins;  // empty: loopback origins only
    size_t max_body = 4 * 1024 * 1024;
    size_t max_snippet = 1024 * 1024;
    int keepalive_interval = 15;  // seconds
    size_t max_sessions = 10000;             // MCP sessions in all (both transports)
    size_t max_sessions_per_subject = 16;    // MCP sessions of one subject
    ToolScopes tool_scopes;       // --tool-scope rules; empty: no call needs a scope
    ToolClaims tool_claims;       // --tool-claim rules; empty: no call needs a claim
    ExchangeConfig exchange;
    WhoamiConfig whoami;
};

}  // namespace toolserver
