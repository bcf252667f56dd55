// mcp-tool-server: command line, start-up and shutdown.
#include "alloc_cache.hpp"
#include "config.hpp"
#include "exchange_client.hpp"
#include "http_server.hpp"
#include "identity.hpp"
#include "log.hpp"
#include "mcp_protocol.hpp"
#include "metrics.hpp"
#include "snippet_store.hpp"
#include "tools.hpp"

#include <event2/event.h>

#include <cerrno>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace toolserver {

namespace {

const char* kUsage =
    "Usage: mcp-tool-server [options]\n"
    "\n"
    "MCP tool server (hello_mcp, get_snippet, save_snippet) behind the ngx_mcp_auth gateway.\n"
    "Transports: HTTP+SSE (GET /sse, POST /message) and Streamable HTTP (/mcp).\n"
    "\n"
    "  --listen HOST:PORT          address to listen on (default 127.0.0.1:8808; port 0 picks one)\n"
    "  --store sqlite|redis        snippet store (default sqlite)\n"
    "  --data-dir DIR              where snippets.db lives (default .)\n"
    "  --redis-host HOST           Redis address (default 127.0.0.1)\n"
    "  --redis-port PORT           Redis port (default 6379)\n"
    "  --redis-user USER           Redis ACL user (needs --redis-password-file)\n"
    "  --redis-password-file FILE  Redis password, read from this file\n"
    "  --redis-db N                Redis database number (default 0)\n"
    "  --redis-prefix PREFIX       key prefix, one hash per owner (default mcp:snippet:)\n"
    "  --redis-timeout-ms MS       Redis connect, handshake and command timeout (default 1000)\n"
    "  --redis-allow-async-durability\n"
    "                              accept a Redis that does not fsync every write\n"
    "  --redis-sentinel HOST:PORT  a Sentinel to ask for the primary ([IPv6]:PORT); repeatable, up to 8;\n"
    "                              replaces --redis-host and --redis-port\n"
    "  --redis-master NAME         the master's name at the Sentinels (required with --redis-sentinel)\n"
    "  --redis-sentinel-user USER  Sentinel ACL user (needs --redis-sentinel-password-file)\n"
    "  --redis-sentinel-password-file FILE\n"
    "                              the Sentinels' password, read from this file\n"
    "  --redis-wait-replicas N     a save is confirmed only once WAIT counts N replicas (default 0: no WAIT)\n"
    "  --redis-wait-timeout-ms MS  WAIT's timeout (default 500; below --redis-timeout-ms)\n"
    "  --identity-key FILE         HS256 secret shared with the gateway (>= 32 bytes)\n"
    "  --identity-public-key PEM   verify ES256 assertions with this public key instead\n"
    "  --identity-iss ISS          expected issuer (default ngx_mcp_auth)\n"
    "  --identity-aud AUD          expected audience (default mcp-tool-server)\n"
    "  --insecure-no-auth          accept requests without assertions (sub=anonymous); testing only\n"
    "  --snippet-scope SCOPE       private (per subject, default) or shared\n"
    "  --allowed-origins LIST      comma-separated allowed Origin values (default: loopback origins)\n"
    "  --max-body BYTES            largest request body (default 4194304)\n"
    "  --max-snippet BYTES         largest snippet (default 1048576)\n"
    "  --keepalive-interval SECS   keep-alive comment period on idle streams (default 15)\n"
    "  --max-sessions N            MCP sessions in all, both transports (default 10000)\n"
    "  --max-sessions-per-subject N\n"
    "                              MCP sessions of one subject (default 16); at a cap the least\n"
    "                              recently used session without an open stream is ended, and\n"
    "                              with none, a new session is refused (429 subject, 503 total)\n"
    "  --tool-scope NAME=SCOPE[,SCOPE...]\n"
    "                              scopes the identity assertion must grant for a tool (or, when\n"
    "                              NAME contains '/', an MCP method); repeatable; the gateway's\n"
    "                              mcp_auth_tool_scope rules (see README)\n"
    "  --tool-claim NAME:PATH=VALUE[,VALUE...]\n"
    "                              a tool call needs the claim at PATH in the identity assertion's\n"
    "                              claims to hold one of the values; repeatable, all must hold; the\n"
    "                              gateway's mcp_auth_tool_claim rules (see README)\n"
    "  --exchange-token-url URL    the gateway's token endpoint for RFC 8693 token exchange, plain\n"
    "                              http://HOST:PORT/PATH (TLS is not spoken: an internal listener)\n"
    "  --exchange-client-id ID     this server's client id at that endpoint (HTTP Basic)\n"
    "  --exchange-client-secret-file FILE\n"
    "                              its client secret, the first line of FILE (never a flag);\n"
    "                              the three --exchange-* above go together\n"
    "  --exchange-timeout-ms MS    timeout of each outbound call, connect to whole answer (default 5000)\n"
    "  --whoami-downstream-url URL a downstream API's GET endpoint (plain http://): offers the sample\n"
    "                              tool whoami_downstream, which calls it as the signed-in user\n"
    "  --whoami-downstream-audience AUD\n"
    "                              the audience of the token exchanged for it (required with the URL)\n"
    "  --whoami-downstream-scope SCOPE\n"
    "                              the scope asked for in that exchange (optional)\n"
    "  --log-level LEVEL           debug, info, warn or error (default info)\n"
    "  --help                      show this help\n";

bool parse_size(const char* s, size_t& out) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return false;
    out = static_cast<size_t>(v);
    return true;
}

bool parse_int(const char* s, int min, int max, int& out) {
    size_t v = 0;
    if (!parse_size(s, v) || v < static_cast<size_t>(min) || v > static_cast<size_t>(max)) return false;
    out = static_cast<int>(v);
    return true;
}

// A space-separated list of RFC 6749 scope-tokens.
bool valid_scope_list(const std::string& s) {
    if (s.empty()) return false;
    size_t start = 0;
    for (;;) {
        const size_t sp = s.find(' ', start);
        if (!mcpauth::valid_scope_token(std::string_view(s).substr(start, sp - start))) return false;
        if (sp == std::string::npos) return true;
        start = sp + 1;
    }
}

// Checks an http:// URL flag; prints why not.
bool url_flag(const std::string& flag, const std::string& value, std::string& out) {
    HttpUrl url;
    std::string why;
    if (!parse_http_url(value, url, why)) {
        std::fprintf(stderr, "mcp-tool-server: %s %s (see --help)\n", flag.c_str(), why.c_str());
        return false;
    }
    out = value;
    return true;
}

bool parse_listen(const std::string& s, Config& cfg) {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    std::string host = s.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    size_t port = 0;
    if (!parse_size(s.c_str() + colon + 1, port) || port > 65535) return false;
    cfg.listen_host = host;
    cfg.listen_port = static_cast<int>(port);
    return true;
}

// HOST:PORT, an IPv6 address in brackets ([::1]:26379); the port is required.
bool parse_sentinel(const std::string& s, RedisAddress& out) {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    std::string host = s.substr(0, colon);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return false;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
        return false;  // an IPv6 address without brackets: where would the port start?
    }
    for (unsigned char c : host)
        if (c <= 0x20 || c >= 0x7f) return false;
    int port = 0;
    if (!parse_int(s.c_str() + colon + 1, 1, 65535, port)) return false;
    out.host = host;
    out.port = port;
    return true;
}

// Sentinel's master names: what its configuration and its "+switch-master"
// notices (space-separated) can carry.
bool valid_master_name(const std::string& s) {
    if (s.empty() || s.size() > 256) return false;
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (!item.empty()) out.push_back(item);
        start = end + 1;
    }
    return out;
}

// The combinations of the Sentinel and WAIT flags; 0, or 3 after saying why.
int check_redis_flags(const RedisConfig& r, bool redis_address, bool wait_timeout) {
    const char* problem = nullptr;
    const bool sentinel = !r.sentinels.empty();
    if (sentinel && redis_address)
        problem = "--redis-sentinel replaces --redis-host and --redis-port: give the Sentinels or the address, "
                  "not both";
    else if (sentinel && r.master_name.empty())
        problem = "--redis-sentinel needs --redis-master NAME (the master's name at the Sentinels)";
    else if (!sentinel && !r.master_name.empty())
        problem = "--redis-master needs --redis-sentinel";
    else if (!sentinel && (!r.sentinel_user.empty() || !r.sentinel_password_file.empty()))
        problem = "--redis-sentinel-user and --redis-sentinel-password-file need --redis-sentinel";
    else if (!r.sentinel_user.empty() && r.sentinel_password_file.empty())
        problem = "--redis-sentinel-user needs --redis-sentinel-password-file";
    else if (wait_timeout && r.wait_replicas == 0)
        problem = "--redis-wait-timeout-ms needs --redis-wait-replicas N (N > 0)";
    if (problem) {
        std::fprintf(stderr, "mcp-tool-server: %s (see --help)\n", problem);
        return 3;
    }
    if (r.wait_replicas > 0 && r.wait_timeout_ms >= r.timeout_ms) {
        std::fprintf(stderr,
                     "mcp-tool-server: --redis-wait-timeout-ms (%d) must be below --redis-timeout-ms (%d): the "
                     "save's command timeout covers its WAIT (see --help)\n",
                     r.wait_timeout_ms, r.timeout_ms);
        return 3;
    }
    return 0;
}

// Returns 0 to continue, otherwise the process exit status (+1).
int parse_args(int argc, char** argv, Config& cfg) {
    bool redis_flags = false;
    bool redis_address = false;  // --redis-host or --redis-port
    bool wait_timeout = false;
    bool exchange_timeout = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool has_inline = false;
        size_t eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline = true;
        }
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            return 1;
        }
        if (arg == "--insecure-no-auth") {
            cfg.insecure_no_auth = true;
            continue;
        }
        if (arg.rfind("--redis-", 0) == 0) redis_flags = true;
        if (arg == "--redis-allow-async-durability") {
            cfg.redis.allow_async_durability = true;
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "mcp-tool-server: %s needs a value (see --help)\n", arg.c_str());
                return 3;
            }
            value = argv[++i];
        }
        bool ok = true;
        if (arg == "--listen") ok = parse_listen(value, cfg);
        else if (arg == "--data-dir") cfg.data_dir = value;
        else if (arg == "--store") {
            if (value == "sqlite") cfg.store = StoreKind::Sqlite;
            else if (value == "redis") cfg.store = StoreKind::Redis;
            else ok = false;
        } else if (arg == "--redis-host") {
            redis_address = true;
            cfg.redis.host = value;
            ok = !value.empty();
        } else if (arg == "--redis-port") {
            redis_address = true;
            ok = parse_int(value.c_str(), 1, 65535, cfg.redis.port);
        } else if (arg == "--redis-sentinel") {
            if (cfg.redis.sentinels.size() == 8) {
                std::fprintf(stderr, "mcp-tool-server: at most 8 --redis-sentinel (see --help)\n");
                return 3;
            }
            RedisAddress a;
            ok = parse_sentinel(value, a);
            if (ok) cfg.redis.sentinels.push_back(a);
        } else if (arg == "--redis-master") {
            cfg.redis.master_name = value;
            ok = valid_master_name(value);
        } else if (arg == "--redis-sentinel-user") {
            cfg.redis.sentinel_user = value;
            ok = !value.empty();
        } else if (arg == "--redis-sentinel-password-file") {
            cfg.redis.sentinel_password_file = value;
            ok = !value.empty();
        } else if (arg == "--redis-wait-replicas") {
            ok = parse_int(value.c_str(), 0, 1000, cfg.redis.wait_replicas);
        } else if (arg == "--redis-wait-timeout-ms") {
            wait_timeout = true;
            ok = parse_int(value.c_str(), 1, 600000, cfg.redis.wait_timeout_ms);
        }
        else if (arg == "--redis-user") {
            cfg.redis.user = value;
            ok = !value.empty();
        } else if (arg == "--redis-password-file") {
            cfg.redis.password_file = value;
            ok = !value.empty();
        }
        else if (arg == "--redis-db") ok = parse_int(value.c_str(), 0, 1 << 20, cfg.redis.db);
        else if (arg == "--redis-prefix") cfg.redis.prefix = value;
        else if (arg == "--redis-timeout-ms") ok = parse_int(value.c_str(), 1, 600000, cfg.redis.timeout_ms);
        else if (arg == "--identity-key") cfg.identity_key_file = value;
        else if (arg == "--identity-public-key") cfg.identity_public_key_file = value;
        else if (arg == "--identity-iss") cfg.identity_iss = value;
        else if (arg == "--identity-aud") cfg.identity_aud = value;
        else if (arg == "--snippet-scope") {
            if (value == "private") cfg.snippet_scope = SnippetScope::Private;
            else if (value == "shared") cfg.snippet_scope = SnippetScope::Shared;
            else ok = false;
        } else if (arg == "--allowed-origins") cfg.allowed_origins = split_commas(value);
        else if (arg == "--max-body") ok = parse_size(value.c_str(), cfg.max_body) && cfg.max_body > 0;
        else if (arg == "--max-snippet") ok = parse_size(value.c_str(), cfg.max_snippet) && cfg.max_snippet > 0;
        else if (arg == "--keepalive-interval") {
            size_t secs = 0;
            ok = parse_size(value.c_str(), secs) && secs > 0 && secs <= 3600;
            cfg.keepalive_interval = static_cast<int>(secs);
        } else if (arg == "--max-sessions") {
            ok = parse_size(value.c_str(), cfg.max_sessions) && cfg.max_sessions > 0;
        } else if (arg == "--max-sessions-per-subject") {
            ok = parse_size(value.c_str(), cfg.max_sessions_per_subject) && cfg.max_sessions_per_subject > 0;
        } else if (arg == "--tool-scope") {
            std::string why;
            if (!cfg.tool_scopes.add(value, why)) {
                std::fprintf(stderr, "mcp-tool-server: %s (see --help)\n", why.c_str());
                return 3;
            }
        } else if (arg == "--tool-claim") {
            std::string why;
            if (!cfg.tool_claims.add(value, why)) {
                std::fprintf(stderr, "mcp-tool-server: %s (see --help)\n", why.c_str());
                return 3;
            }
        } else if (arg == "--exchange-token-url") {
            if (!url_flag(arg, value, cfg.exchange.token_url)) return 3;
        } else if (arg == "--exchange-client-id") {
            cfg.exchange.client_id = value;
            ok = !value.empty();
        } else if (arg == "--exchange-client-secret-file") {
            cfg.exchange.client_secret_file = value;
            ok = !value.empty();
        } else if (arg == "--exchange-timeout-ms") {
            exchange_timeout = true;
            ok = parse_int(value.c_str(), 1, 600000, cfg.exchange.timeout_ms);
        } else if (arg == "--whoami-downstream-url") {
            if (!url_flag(arg, value, cfg.whoami.url)) return 3;
        } else if (arg == "--whoami-downstream-audience") {
            cfg.whoami.audience = value;
            ok = !value.empty();
            for (unsigned char c : value) ok = ok && c >= 0x20 && c < 0x7f;
        } else if (arg == "--whoami-downstream-scope") {
            cfg.whoami.scope = value;
            ok = valid_scope_list(value);
        } else if (arg == "--log-level") ok = log_set_level(value);
        else {
            std::fprintf(stderr, "mcp-tool-server: unknown option %s (see --help)\n", arg.c_str());
            return 3;
        }
        if (!ok) {
            std::fprintf(stderr, "mcp-tool-server: bad value for %s (see --help)\n", arg.c_str());
            return 3;
        }
    }
    if (redis_flags && cfg.store != StoreKind::Redis) {
        std::fprintf(stderr, "mcp-tool-server: --redis-* options need --store redis (see --help)\n");
        return 3;
    }
    if (int rc = check_redis_flags(cfg.redis, redis_address, wait_timeout)) return rc;
    // The token exchange client: all three flags or none.
    const ExchangeConfig& x = cfg.exchange;
    const int exchange_flags = !x.token_url.empty() + !x.client_id.empty() + !x.client_secret_file.empty();
    if (exchange_flags != 0 && exchange_flags != 3) {
        std::fprintf(stderr,
                     "mcp-tool-server: --exchange-token-url, --exchange-client-id and --exchange-client-secret-file "
                     "go together; missing:%s%s%s (see --help)\n",
                     x.token_url.empty() ? " --exchange-token-url" : "",
                     x.client_id.empty() ? " --exchange-client-id" : "",
                     x.client_secret_file.empty() ? " --exchange-client-secret-file" : "");
        return 3;
    }
    if (exchange_timeout && exchange_flags == 0) {
        std::fprintf(stderr, "mcp-tool-server: --exchange-timeout-ms needs the --exchange-* flags (see --help)\n");
        return 3;
    }
    const WhoamiConfig& w = cfg.whoami;
    const bool whoami = !w.url.empty() || !w.audience.empty() || !w.scope.empty();
    if (whoami && (w.url.empty() || w.audience.empty())) {
        std::fprintf(stderr,
                     "mcp-tool-server: whoami_downstream needs both --whoami-downstream-url and "
                     "--whoami-downstream-audience (see --help)\n");
        return 3;
    }
    if (whoami && exchange_flags == 0) {
        std::fprintf(stderr,
                     "mcp-tool-server: whoami_downstream gets its token by token exchange: it needs "
                     "--exchange-token-url, --exchange-client-id and --exchange-client-secret-file (see --help)\n");
        return 3;
    }
    return 0;
}

// Every idle SSE stream holds a descriptor; allow as many as the hard limit.
void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

struct ShutdownState {
    event_base* base;
    HttpServer* server;
};

void on_signal(evutil_socket_t sig, short, void* arg) {
    auto* st = static_cast<ShutdownState*>(arg);
    LOG_INFO("shutdown", {{"signal", std::to_string(sig)}});
    st->server->shutdown();
    // Leave the loop shortly, after the streams' final bytes are written.
    timeval grace{0, 200 * 1000};
    event_base_loopexit(st->base, &grace);
}

}  // namespace

int run(int argc, char** argv) {
    alloc_cache_install();  // before anything allocates through libevent or cJSON
    Config cfg;
    if (int rc = parse_args(argc, argv, cfg)) return rc - 1;

    if (!cfg.identity_key_file.empty() && !cfg.identity_public_key_file.empty()) {
        std::fprintf(stderr, "mcp-tool-server: pass only one of --identity-key and --identity-public-key\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    std::unique_ptr<IdentityVerifier> verifier;
    if (cfg.insecure_no_auth) {
        std::fprintf(stderr,
                     "**************************************************************\n"
                     "WARNING: --insecure-no-auth: identity assertions are NOT checked.\n"
                     "Anyone who can reach this port can use the tools. Testing only.\n"
                     "**************************************************************\n");
        LOG_WARN("insecure_no_auth");
    } else {
        std::string error;
        verifier = IdentityVerifier::create(cfg, error);
        if (!verifier) {
            LOG_ERROR("startup_failed", {{"error", error}});
            return 1;
        }
    }

    // evhttp switches a connection's read and write events on and off several
    // times per request; the changelist folds those into at most one epoll_ctl
    // per descriptor per loop turn (4 calls per request without it).
    event_config* ev_cfg = event_config_new();
    if (ev_cfg) event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_base* base = ev_cfg ? event_base_new_with_config(ev_cfg) : nullptr;
    if (ev_cfg) event_config_free(ev_cfg);
    if (!base) {
        LOG_ERROR("startup_failed", {{"error", "event_base_new failed"}});
        return 1;
    }
    int exit_code = 0;
    {
        // The Redis store and the exchange client live on the loop: made
        // after it, destroyed before it (the client after the tools using it).
        std::string error;
        std::unique_ptr<ExchangeClient> exchange;
        if (!cfg.exchange.token_url.empty()) {
            exchange = ExchangeClient::create(cfg.exchange, base, error);
            if (!exchange) {
                LOG_ERROR("startup_failed", {{"error", error}});
                event_base_free(base);
                return 1;
            }
            metrics::enable_exchanges();
        }
        std::optional<WhoamiDownstream> whoami;
        if (!cfg.whoami.url.empty()) {
            whoami.emplace();
            whoami->client = exchange.get();
            parse_http_url(cfg.whoami.url, whoami->url, error);  // checked with the flags
            whoami->audience = cfg.whoami.audience;
            whoami->scope = cfg.whoami.scope;
        }
        std::unique_ptr<SnippetStore> store = cfg.store == StoreKind::Redis
                                                  ? open_redis_store(cfg.redis, base, error)
                                                  : open_sqlite_store(cfg.data_dir, error);
        if (!store) {
            LOG_ERROR("startup_failed", {{"error", "snippet store: " + error}});
            event_base_free(base);
            return 1;
        }
        store = metrics::timed_store(std::move(store), cfg.store == StoreKind::Redis ? "redis" : "sqlite");
        Tools tools(*store, cfg.snippet_scope, cfg.max_snippet, std::move(whoami));
        mcp::Server mcp_server(tools, cfg.tool_scopes, cfg.tool_claims);

        HttpServer server(cfg, base, verifier.get(), mcp_server);
        int port = server.listen(error);
        if (port < 0) {
            LOG_ERROR("startup_failed", {{"error", error}});
            exit_code = 1;
        } else {
            ShutdownState st{base, &server};
            event* sigterm = evsignal_new(base, SIGTERM, on_signal, &st);
            event* sigint = evsignal_new(base, SIGINT, on_signal, &st);
            event_add(sigterm, nullptr);
            event_add(sigint, nullptr);

            bool v6 = cfg.listen_host.find(':') != std::string::npos;
            std::printf("mcp-tool-server listening on %s%s%s:%d\n", v6 ? "[" : "", cfg.listen_host.c_str(),
                        v6 ? "]" : "", port);
            std::fflush(stdout);
            LOG_INFO("started", {{"port", std::to_string(port)},
                                 {"store", cfg.store == StoreKind::Redis ? "redis" : "sqlite"},
                                 {"scope", cfg.snippet_scope == SnippetScope::Shared ? "shared" : "private"},
                                 {"auth", cfg.insecure_no_auth ? "none" : (cfg.identity_public_key_file.empty()
                                                                               ? "HS256" : "ES256")}});
            event_base_dispatch(base);
            event_free(sigterm);
            event_free(sigint);
            LOG_INFO("stopped");
        }
    }
    event_base_free(base);
    return exit_code;
}

}  // namespace toolserver

int main(int argc, char** argv) { return toolserver::run(argc, argv); }
