/*
 * mcp_auth.h -- the only contact between the nginx glue
 * (ngx_mcp_auth_module.c and nginx/) and the C++ core (src/).
 *
 * Plain C types only.  Every function is noexcept: the core catches any
 * exception and reports MCPA_ERROR, which the glue turns into a 500 and an
 * error-log line.  Strings are (pointer, length) pairs and are never assumed
 * to be NUL-terminated.
 */

#ifndef MCP_AUTH_H_INCLUDED
#define MCP_AUTH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define MCPA_API      extern "C" __attribute__((visibility("default")))
#define MCPA_NOEXCEPT noexcept
#else
#define MCPA_API      __attribute__((visibility("default")))
#define MCPA_NOEXCEPT
#endif

#define MCPA_OK          0
#define MCPA_ERROR      -1
#define MCPA_NOT_FOUND  -2      /* store: no such key (or expired) */
#define MCPA_EXISTS     -3      /* store: put_new found the key */
#define MCPA_CONFLICT   -4      /* store: replace_if saw another value */
#define MCPA_FULL       -5      /* store: no memory left after eviction */
#define MCPA_UNAVAILABLE -6     /* store: could not be reached in time */

typedef struct {
    const char  *data;
    size_t       len;
} mcpa_str_t;

typedef struct {
    mcpa_str_t   name;
    mcpa_str_t   value;
} mcpa_header_t;


/* --- configuration ------------------------------------------------------ */

/*
 * A core configuration: built at configuration time from the settings of
 * the directives and never changed afterwards, so workers share it
 * read-only.  Locations whose settings are the same share one.
 */
typedef struct mcpa_config_s  mcpa_config_t;

typedef enum {
    MCPA_PROVIDER_AUTH_CLIENT_SECRET_BASIC = 0,
    MCPA_PROVIDER_AUTH_CLIENT_SECRET_POST,
    MCPA_PROVIDER_AUTH_PRIVATE_KEY_JWT
} mcpa_provider_auth_e;

/*
 * The settings, as nginx parsed them: every directive was checked on its
 * own line (mcpa_check_setting() for the strings, nginx's slots for the
 * numbers and flags).  Unset: strings empty, numbers and flags -1; the
 * core's defaults then apply.  Lifetimes are in seconds.
 */
typedef struct {
    mcpa_str_t   issuer;
    mcpa_str_t   resource;
    mcpa_str_t   resource_name;
    mcpa_str_t   scopes;                       /* space-separated */
    mcpa_str_t   cors_origins;                 /* space-separated */

    mcpa_str_t   authorization_path;
    mcpa_str_t   token_path;
    mcpa_str_t   registration_path;
    mcpa_str_t   revocation_path;
    mcpa_str_t   consent_path;
    mcpa_str_t   callback_path;

    mcpa_str_t   key_file;

    mcpa_str_t   provider_issuer;
    mcpa_str_t   provider_authorization_endpoint;
    mcpa_str_t   provider_token_endpoint;
    mcpa_str_t   provider_client_id;
    mcpa_str_t   provider_client_secret_file;
    int          provider_client_auth;         /* mcpa_provider_auth_e */
    mcpa_str_t   provider_private_key_file;
    mcpa_str_t   provider_key_id;
    mcpa_str_t   provider_certificate_file;
    mcpa_str_t   provider_scopes;              /* space-separated */

    int64_t      access_token_ttl;
    int64_t      refresh_token_ttl;
    int64_t      session_ttl;
    int64_t      code_ttl;
    int64_t      login_ttl;
    int64_t      client_ttl;
    int64_t      session_cache_ttl;            /* mcp_auth_redis cache= */

    int          consent_remember;
    int          secure_cookies;
    int          pass_provider_token;

    int          client_metadata_documents;
    int          client_metadata_allow_private;
    int          client_metadata_fetch;        /* a location fetches them */
    const int   *client_metadata_ports;
    size_t       client_metadata_ports_n;

    mcpa_str_t   identity_key_file;
    mcpa_str_t   identity_issuer;
    mcpa_str_t   identity_audience;
    mcpa_str_t   tool_scopes;                  /* "NAME SCOPE...\n" lines */
    mcpa_str_t   metrics_tools;                /* space-separated */

    /* claim rules (claims.hpp): "KIND\tWORD...\n" lines, KIND one of
     * login, email, scope, tool */
    mcpa_str_t   claim_rules;
    mcpa_str_t   scope_descriptions;           /* "SCOPE\tTEXT\n" lines */
    mcpa_str_t   provider_params;              /* "NAME\tVALUE\n" lines */

    int          filter_tools;                 /* mcp_auth_filter_tools */
    int64_t      filter_tools_max_size;        /* bytes */

    mcpa_str_t   admin_key_file;               /* mcp_auth_admin_key_file */
    mcpa_str_t   limits;                       /* mcp_auth_limit: one rule
                                                  a line, words apart */

    /* token exchange for backends (token_exchange.hpp): one
     * mcp_auth_exchange_audience / _client directive a line, its words
     * apart (tabs) */
    mcpa_str_t   exchange_audiences;
    mcpa_str_t   exchange_clients;
    /* services of the client-credentials grant (configured_client.hpp):
     * one mcp_auth_service_client directive a line, its words apart (tabs) */
    mcpa_str_t   service_clients;
    /* enterprise-managed authorization (enterprise_grant.hpp): one
     * mcp_auth_trusted_issuer / mcp_auth_enterprise_client a line, its
     * words apart (tabs) */
    mcpa_str_t   trusted_issuers;
    mcpa_str_t   enterprise_clients;
} mcpa_settings_t;

/* Every field unset. */
MCPA_API void mcpa_settings_init(mcpa_settings_t *s) MCPA_NOEXCEPT;

/* What a string directive's value must be; checked on the directive's line. */
typedef enum {
    MCPA_CHECK_BASE_URL = 0,      /* an issuer or resource: https URL (http
                                     on loopback), no query, no trailing / */
    MCPA_CHECK_PROVIDER_URL,      /* https URL (http on loopback) */
    MCPA_CHECK_PATH,              /* a plain path starting with "/" */
    MCPA_CHECK_SCOPES,            /* scope tokens (RFC 6749) */
    MCPA_CHECK_PROVIDER_SCOPES,   /* scope tokens, "openid" among them */
    MCPA_CHECK_NOT_EMPTY,
    MCPA_CHECK_TOOL_RULE,         /* "NAME SCOPE..." of mcp_auth_tool_scope */
    MCPA_CHECK_CLAIM_RULE,        /* one line of claim_rules */
    MCPA_CHECK_SCOPE_DESCRIPTION, /* one line of scope_descriptions */
    MCPA_CHECK_PROVIDER_PARAM,    /* one line of provider_params */
    MCPA_CHECK_LIMIT,             /* one mcp_auth_limit rule */
    MCPA_CHECK_EXCHANGE_AUDIENCE, /* one mcp_auth_exchange_audience */
    MCPA_CHECK_EXCHANGE_CLIENT,   /* one mcp_auth_exchange_client */
    MCPA_CHECK_SERVICE_CLIENT,    /* one mcp_auth_service_client */
    MCPA_CHECK_TRUSTED_ISSUER,    /* one mcp_auth_trusted_issuer */
    MCPA_CHECK_ENTERPRISE_CLIENT  /* one mcp_auth_enterprise_client */
} mcpa_check_e;

/* MCPA_OK, or MCPA_ERROR with a message naming the directive in err. */
MCPA_API int mcpa_check_setting(mcpa_check_e kind, mcpa_str_t directive,
    mcpa_str_t value, char *err, size_t err_len) MCPA_NOEXCEPT;

/*
 * Builds a configuration: reads the files the settings name (keys,
 * provider credentials, identity key) and checks what depends on several
 * settings.  NULL with a message in err on failure.
 */
MCPA_API mcpa_config_t *mcpa_config_build(const mcpa_settings_t *s,
    char *err, size_t err_len) MCPA_NOEXCEPT;

/*
 * Whether a location may use cf to serve endpoint (MCPA_EP_NONE: none)
 * and, when guard is set, to guard MCP traffic: the key file for
 * endpoints that keep state, the provider for the login and token
 * endpoints, the identity key for the guard.  MCPA_OK or MCPA_ERROR with a
 * message in err.
 */
MCPA_API int mcpa_config_check_use(const mcpa_config_t *cf, int endpoint,
    int guard, char *err, size_t err_len) MCPA_NOEXCEPT;

MCPA_API void mcpa_config_free(mcpa_config_t *cf) MCPA_NOEXCEPT;


/* --- the store ----------------------------------------------------------- */

/*
 * Key/value entries with an absolute expiry (seconds since the epoch), seen
 * by every worker.  The glue implements it over a shared-memory zone; the
 * core reaches it only through these calls.  Each call is atomic: it holds
 * the zone's lock for the lookup and copy only, never across I/O.
 */
typedef void (*mcpa_sink_pt)(void *ctx, const char *data, size_t len);

typedef struct {
    void   *data;

    /* Copies the live value to sink; with take != 0 also deletes it, in the
     * same lock (single-use codes). MCPA_OK or MCPA_NOT_FOUND. */
    int   (*get)(void *data, mcpa_str_t key, int take, mcpa_sink_pt sink,
                 void *sink_ctx);

    /* Stores value.  mode MCPA_PUT_SET replaces any value; MCPA_PUT_NEW fails
     * with MCPA_EXISTS when a live value exists; MCPA_PUT_REPLACE_IF stores
     * only when the live value equals expect (else MCPA_CONFLICT or
     * MCPA_NOT_FOUND).  MCPA_FULL when the zone has no room.  The mode may
     * carry MCPA_PUT_UNAUTHENTICATED (below). */
    int   (*put)(void *data, mcpa_str_t key, mcpa_str_t value,
                 int64_t expires, int mode, mcpa_str_t expect);

    /* MCPA_OK or MCPA_NOT_FOUND. */
    int   (*del)(void *data, mcpa_str_t key);

    /* Optional (NULL): a hint that get() of key follows soon; the zone
     * starts loading the key's index slot from memory.  Changes nothing. */
    void  (*prefetch)(void *data, mcpa_str_t key);

    /*
     * A networked store (Redis) cannot answer while the core waits: with
     * deferred set (and no functions), a response may instead carry a
     * store_op.  The glue performs it without blocking, then calls the same
     * function again with the response's replay and the answer
     * (store_status, store_value) in the request; the core runs the request
     * again from the start, answering earlier operations from the replay
     * (never repeating them).  `now` must stay the same across these calls.
     */
    int     deferred;

    /*
     * Deferred stores only: an endpoint request that changed anything ends
     * with one MCPA_OP_SYNC, before its response (or provider fetch) goes
     * out.  The glue answers MCPA_OK once the request's changes are on the
     * replicas it was told to wait for, else MCPA_UNAVAILABLE: the change
     * is then not acknowledged (a 503), though it may have been made.
     */
    int     confirm_writes;
} mcpa_store_t;

#define MCPA_PUT_SET         0
#define MCPA_PUT_NEW         1
#define MCPA_PUT_REPLACE_IF  2
#define MCPA_PUT_MODE_MASK   0x0f

/*
 * ORed into a put's mode: an entry that unauthenticated traffic created (a
 * registration not yet used for a login, a fetched client metadata
 * document).  The store keeps such entries within a budget of their own and
 * makes room for a new one by evicting the oldest of them, never an entry
 * without the flag; a key never changes its class.
 */
#define MCPA_PUT_UNAUTHENTICATED  0x100

typedef enum {
    MCPA_OP_NONE = 0,
    MCPA_OP_GET,          /* value or MCPA_NOT_FOUND */
    MCPA_OP_TAKE,         /* get and delete, atomically */
    MCPA_OP_PUT,          /* mode, expires, expect as for put() */
    MCPA_OP_DEL,
    MCPA_OP_SYNC          /* MCPA_OK once this request's changes are safe */
} mcpa_op_e;

typedef struct {
    mcpa_op_e    op;
    mcpa_str_t   key;
    mcpa_str_t   value;                 /* MCPA_OP_PUT */
    mcpa_str_t   expect;                /* MCPA_PUT_REPLACE_IF */
    int64_t      expires;               /* MCPA_OP_PUT: absolute, seconds */
    int          mode;                  /* MCPA_OP_PUT, with its flags */
} mcpa_store_op_t;

/* The most store operations one request may make over a deferred store:
 * every run replays the answers before it, so a request's work grows with
 * the square of its operations.  OAuth and MCP requests make a handful;
 * the admin API and the account page bound theirs to fit. */
#define MCPA_MAX_STORE_OPS  128

/* What a request carries back after a store_op (deferred stores only). */
typedef struct {
    mcpa_str_t   log;                   /* the previous response's replay */
    int          status;                /* MCPA_OK, MCPA_NOT_FOUND, ...,
                                           MCPA_UNAVAILABLE */
    mcpa_str_t   value;                 /* GET and TAKE */
} mcpa_replay_t;


/* --- observability: events for the audit log and the metrics ----------- */

/*
 * What a request did, as the core decided it: the glue writes each event as
 * one audit line (mcp_auth_audit_log) and adds one to each counter slot
 * it names in the metrics zone (mcp_auth_endpoint metrics).  Every label a
 * counter has is bounded: outcomes and reasons are words of the core, tool
 * names those of the configuration (anything else counts as "other").
 * Strings are valid as long as the response or guard result they came in.
 */
typedef enum {
    MCPA_EV_NONE = 0,
    MCPA_EV_REGISTRATION,        /* client.registered */
    MCPA_EV_AUTHORIZE,           /* authorize: outcome of /authorize */
    MCPA_EV_LOGIN_STARTED,       /* sent to the provider to sign in */
    MCPA_EV_LOGIN,               /* back from the provider: outcome */
    MCPA_EV_CONSENT,             /* allowed or denied */
    MCPA_EV_TOKEN,               /* /token: grant_type, outcome */
    MCPA_EV_REFRESH_REUSE,       /* a used refresh token came back */
    MCPA_EV_REVOCATION,
    MCPA_EV_GUARD,               /* an MCP request: allowed or denied */
    MCPA_EV_PROVIDER_RENEWAL,    /* the provider's token renewed, or not */
    MCPA_EV_SESSION_ENDED,       /* a stream closed: its session ended */
    MCPA_EV_ADMIN,               /* an operator's action at the admin API */
    MCPA_EV_EXCHANGE             /* a backend's token exchange: grant_type
                                    holds the provider method */
} mcpa_event_e;

#define MCPA_EVENT_METRICS  12

typedef struct {
    mcpa_event_e     kind;
    mcpa_str_t       name;            /* the audit line's "event" */
    mcpa_str_t       outcome;         /* a word of the core */
    mcpa_str_t       reason;          /* a word of the core, or empty */
    mcpa_str_t       grant_type;
    mcpa_str_t       tool;            /* as called (a guarded tools/call) */
    mcpa_str_t       subject;
    mcpa_str_t       client_id;
    mcpa_str_t       session_tag;
    mcpa_str_t       audience;        /* MCPA_EV_EXCHANGE: asked for */
    mcpa_str_t       scope;           /* MCPA_EV_EXCHANGE: asked for */

    /* counter slots to add one to; -1 ends the list early */
    int              metric[MCPA_EVENT_METRICS];
    unsigned         audit:1;         /* worth an audit line */
} mcpa_event_t;

/*
 * The counters, in one flat array of 64-bit slots that the glue keeps in
 * shared memory and the core names when it renders them:
 * mcpa_metrics_slots() of them, the tools' counters last.
 */
typedef enum {
    MCPA_M_FETCH = 0,            /* a: mcpa_fetch_e, b: HTTP status (0: none) */
    MCPA_M_FETCH_SECONDS,        /* a: mcpa_fetch_e, b: microseconds */
    MCPA_M_RESPONSE,             /* a: mcpa_endpoint_e or MCPA_M_EP_*, b: status
                                    (with 200, slots[0] is the endpoint's 2xx
                                    counter, its 3xx, 4xx and 5xx follow;
                                    with 503, slots[1] its 503 counter) */
    MCPA_M_STREAM_CLOSED,        /* the session ended */
    MCPA_M_STORE_ERROR,          /* a: MCPA_FULL or MCPA_UNAVAILABLE */
    MCPA_M_TOOLS_LIST_FILTER     /* a: mcpa_filter_e */
} mcpa_metric_e;

#define MCPA_M_EP_GUARDED   100   /* a guarded MCP location */
#define MCPA_M_EP_STATUS    101
#define MCPA_M_EP_METRICS   102

/* How many slots the counters take (the tools' included), and the most
 * tool names counted under their own label. */
MCPA_API size_t mcpa_metrics_slots(void) MCPA_NOEXCEPT;
#define MCPA_METRICS_TOOLS  64

/* The slots (up to MCPA_EVENT_METRICS, -1 after the last) that an event the
 * glue observed itself adds to, and for MCPA_M_FETCH_SECONDS the amount. */
MCPA_API void mcpa_metrics_observe(mcpa_metric_e m, int a, int64_t b,
    int *slots, int64_t *amounts) MCPA_NOEXCEPT;

/* The tool names the configuration counts under their own label (the tool
 * rules' and mcp_auth_metrics_tools'), and where the glue keeps each one's
 * counters: slot is the tool's index in the zone's table of names, or -1
 * (counted as "other").  Set before workers start. */
MCPA_API size_t mcpa_config_tools(const mcpa_config_t *cf, mcpa_str_t *names,
    size_t n) MCPA_NOEXCEPT;
MCPA_API void mcpa_config_set_tool_slot(mcpa_config_t *cf, size_t i,
    int slot) MCPA_NOEXCEPT;

/* The gauges the glue reads when it is scraped; -1: not reported. */
typedef struct {
    int64_t          sessions;
    int64_t          pending_logins;
    int64_t          guarded_streams;
    int64_t          zone_bytes_used;
    int64_t          zone_bytes_total;
    int64_t          redis_up;
} mcpa_gauges_t;

/* Which gauge a store key counts toward: 1 a session, 2 a pending login
 * (an authorization code not yet redeemed), 0 neither. */
MCPA_API int mcpa_metrics_key_class(mcpa_str_t key) MCPA_NOEXCEPT;

/* The Prometheus text exposition (format 0.0.4) of the counters (the flat
 * array), the tool names of the zone's table, and the gauges. */
MCPA_API int mcpa_metrics_render(const uint64_t *slots, size_t nslots,
    const mcpa_str_t *tools, size_t ntools, const mcpa_gauges_t *gauges,
    mcpa_sink_pt sink, void *sink_ctx) MCPA_NOEXCEPT;


/* --- requests and responses -------------------------------------------- */

/* What a location serves (mcp_auth_endpoint). */
typedef enum {
    MCPA_EP_NONE = 0,
    MCPA_EP_AUTHORIZATION_SERVER_METADATA,   /* RFC 8414 */
    MCPA_EP_PROTECTED_RESOURCE_METADATA,     /* RFC 9728 */
    MCPA_EP_REGISTER,                        /* RFC 7591 */
    MCPA_EP_AUTHORIZE,
    MCPA_EP_CONSENT,
    MCPA_EP_CALLBACK,
    MCPA_EP_TOKEN,
    MCPA_EP_REVOKE,                          /* RFC 7009 */
    MCPA_EP_ADMIN,                           /* the operators' API */
    MCPA_EP_ACCOUNT                          /* the user's connected apps */
} mcpa_endpoint_e;

typedef struct {
    mcpa_endpoint_e  endpoint;
    mcpa_str_t       method;
    mcpa_str_t       uri;             /* path without the query */
    mcpa_str_t       args;            /* raw query string */
    mcpa_str_t       body;
    mcpa_str_t       content_type;
    mcpa_str_t       cookie;
    mcpa_str_t       origin;
    mcpa_str_t       sec_fetch_site;
    mcpa_str_t       authorization;
    mcpa_str_t       fetch_cache_control;  /* of the last fetch's answer */
    int64_t          now;             /* seconds since the epoch */
    mcpa_replay_t    replay;          /* deferred stores: see mcpa_store_t */
    int              waits;           /* how often the request waited
                                         (mcpa_response_t wait_ms) */
    mcpa_str_t       request_id;      /* unique to the request, the same
                                         for all its runs */
} mcpa_request_t;

/* Calls to the upstream OpenID provider that a response may ask for. */
typedef enum {
    MCPA_FETCH_NONE = 0,
    MCPA_FETCH_PROVIDER_TOKEN,               /* POST to its token endpoint */
    MCPA_FETCH_PROVIDER_JWKS,                /* GET its jwks_uri */
    MCPA_FETCH_CLIENT_METADATA,              /* GET a client's metadata
                                                document (fetch_host...) */
    MCPA_FETCH_ISSUER_JWKS                   /* GET a trusted issuer's JWKS
                                                from the internal location
                                                in fetch_path */
} mcpa_fetch_e;

typedef struct {
    int              status;
    mcpa_header_t   *headers;
    size_t           nheaders;
    mcpa_str_t       body;

    /*
     * When fetch is not MCPA_FETCH_NONE, the response is not sent: the glue
     * makes the call (a subrequest to the location configured for that
     * target, with $mcp_auth_fetch_body and $mcp_auth_fetch_authorization
     * set from these fields) and hands the answer to mcpa_resume() together
     * with the continuation, which the core alone interprets.
     */
    mcpa_fetch_e     fetch;
    mcpa_str_t       fetch_body;
    mcpa_str_t       fetch_authorization;
    mcpa_str_t       continuation;

    /* MCPA_FETCH_CLIENT_METADATA: an https URL the glue resolves itself, so
     * that only addresses mcpa_fetch_address_allowed() approves are ever
     * contacted ($mcp_auth_fetch_url then names the address, and
     * $mcp_auth_fetch_host the host, for Host and SNI) */
    mcpa_str_t       fetch_host;
    int              fetch_port;
    mcpa_str_t       fetch_path;

    /* Deferred stores: when store_op.op is not MCPA_OP_NONE, nothing is
     * sent; perform the operation and call again with replay (see
     * mcpa_store_t).  Takes precedence over fetch. */
    mcpa_store_op_t  store_op;
    mcpa_str_t       replay;

    /*
     * When wait_ms is set (and neither store_op nor fetch), nothing is
     * sent: the request waits that long without blocking, then runs again
     * from the start (mcpa_handle, an empty replay, the new time) with
     * waits one higher.  The core answers by itself once waits reaches
     * its own bound.  Another request holds what this one needs (one
     * exchange at the provider per session and audience).
     */
    int              wait_ms;

    /* what the request did (only in a response that is sent) */
    const mcpa_event_t  *events;
    size_t           nevents;

    void            *owner;           /* core-owned storage; do not touch */
} mcpa_response_t;

/*
 * Serves one endpoint request.  On MCPA_OK the response is filled and must
 * be released with mcpa_response_free() once copied out.
 */
MCPA_API int mcpa_handle(const mcpa_config_t *cf, const mcpa_store_t *store,
    const mcpa_request_t *req, mcpa_response_t *resp) MCPA_NOEXCEPT;

/*
 * Continues a request after a fetch: fetch_status is the provider's HTTP
 * status (0 when it could not be reached or timed out), fetch_body its body.
 * The new response may ask for another fetch.
 */
MCPA_API int mcpa_resume(const mcpa_config_t *cf, const mcpa_store_t *store,
    const mcpa_request_t *req, mcpa_str_t continuation, int fetch_status,
    mcpa_str_t fetch_body, mcpa_response_t *resp) MCPA_NOEXCEPT;

MCPA_API void mcpa_response_free(mcpa_response_t *resp) MCPA_NOEXCEPT;

/* --- the guard (mcp_auth_protect) -------------------------------------- */

typedef struct {
    mcpa_str_t       method;          /* HTTP method */
    mcpa_str_t       authorization;   /* the Authorization header, if any */
    mcpa_str_t       args;            /* query string: tokens there are refused */
    mcpa_str_t       origin;
    mcpa_str_t       mcp_method;      /* Mcp-Method header (2026-07-28) */
    mcpa_str_t       mcp_name;        /* Mcp-Name header */
    int              mirror_headers;  /* MCPA_MIRROR_*: which were sent */
    mcpa_str_t       body;            /* JSON-RPC body, when the glue read it */
    int              body_read;       /* 1 when body is the whole body */
    int64_t          now;
    mcpa_replay_t    replay;          /* deferred stores: see mcpa_store_t */
    int64_t          now_ms;          /* the quotas' clock, fixed for the
                                         request like now (0: now * 1000) */
} mcpa_guard_request_t;

#define MCPA_MIRROR_METHOD    1   /* Mcp-Method present */
#define MCPA_MIRROR_NAME      2   /* Mcp-Name present */
#define MCPA_MIRROR_REPEATED  4   /* either one more than once */

typedef enum {
    MCPA_GUARD_ALLOW = 0,             /* pass upstream with the identity */
    MCPA_GUARD_DENY,                  /* send response */
    MCPA_GUARD_NEED_BODY,             /* read the body, then ask again */
    MCPA_GUARD_FETCH,                 /* call the provider (response.fetch),
                                         then mcpa_guard_resume() */
    MCPA_GUARD_STORE                  /* deferred store: perform
                                         response.store_op, then the same
                                         call again with response.replay */
} mcpa_guard_verdict_e;

typedef struct {
    mcpa_guard_verdict_e  verdict;

    /* ALLOW: the X-MCP-Identity value and what log variables show; held by
     * the configuration's per-process caches, valid until the next
     * mcpa_guard or mcpa_guard_resume call with the same configuration
     * (copy them before that) */
    mcpa_str_t       identity;
    mcpa_str_t       subject;
    mcpa_str_t       client_id;
    mcpa_str_t       scope;
    mcpa_str_t       session_tag;     /* non-reversible, for access logs */
    mcpa_str_t       session_key;     /* for mcpa_session_alive() */
    mcpa_str_t       provider_token;  /* with mcp_auth_pass_provider_token */
    mcpa_str_t       claims;          /* the session's kept claims, as its
                                         record keeps them (claims.hpp) */
    int              lists_tools;     /* the body is one tools/list request
                                         and mcp_auth_filter_tools is on */

    /* DENY: a complete response (401/403/503 with WWW-Authenticate) */
    mcpa_response_t  response;

    /* ALLOW and DENY: the decision (kind MCPA_EV_GUARD) */
    mcpa_event_t     event;

    void            *owner;
} mcpa_guard_result_t;

/*
 * The session-to-token check for one MCP request: opens the sealed bearer
 * token, finds its live session, applies the per-tool scope rules.  No I/O
 * beyond the store; nothing is logged.
 */
MCPA_API int mcpa_guard(const mcpa_config_t *cf, const mcpa_store_t *store,
    const mcpa_guard_request_t *req, mcpa_guard_result_t *res) MCPA_NOEXCEPT;

MCPA_API int mcpa_guard_resume(const mcpa_config_t *cf,
    const mcpa_store_t *store, const mcpa_guard_request_t *req,
    mcpa_str_t continuation, int fetch_status, mcpa_str_t fetch_body,
    mcpa_guard_result_t *res) MCPA_NOEXCEPT;

MCPA_API void mcpa_guard_result_free(mcpa_guard_result_t *res) MCPA_NOEXCEPT;

/* 1 when tool rules (scopes or claims) exist or mcp_auth_filter_tools is on,
 * so that a POST's body names what it needs (or whether it lists tools). */
MCPA_API int mcpa_guard_reads_body(const mcpa_config_t *cf) MCPA_NOEXCEPT;

/* 1 while the session named by session_key is live, 0 once it has ended
 * (expired or revoked): open event streams are closed then.  A store that
 * fails (any get result but MCPA_OK and MCPA_NOT_FOUND) counts as live.
 * With a deferred store, the glue passes a store whose get answers what it
 * fetched for the key the previous call asked for, with deferred set (the
 * values a deferred store holds are sealed by the core). */
MCPA_API int mcpa_session_alive(const mcpa_config_t *cf,
    const mcpa_store_t *store, mcpa_str_t session_key, int64_t now)
    MCPA_NOEXCEPT;


/* --- the state file ----------------------------------------------------- */

/*
 * The zone's entries are written to a state file (periodically and at exit)
 * and read back at start, sealed with the location's key file (AES-256-GCM,
 * the first key seals, every key opens) because they hold provider tokens.
 * Both return MCPA_ERROR when the configuration has no keys or, for open,
 * when the file is not one of ours or has been tampered with.
 */
MCPA_API int mcpa_state_seal(const mcpa_config_t *cf, mcpa_str_t plain,
    mcpa_sink_pt sink, void *sink_ctx) MCPA_NOEXCEPT;
MCPA_API int mcpa_state_open(const mcpa_config_t *cf, mcpa_str_t sealed,
    mcpa_sink_pt sink, void *sink_ctx) MCPA_NOEXCEPT;
MCPA_API int mcpa_config_has_keys(const mcpa_config_t *cf) MCPA_NOEXCEPT;


/* Whether a client metadata document may be fetched from this address (IPv4
 * or IPv6 text): never private, loopback or link-local ones unless
 * mcp_auth_client_metadata_allow_private is on. */
MCPA_API int mcpa_fetch_address_allowed(const mcpa_config_t *cf,
    mcpa_str_t ip) MCPA_NOEXCEPT;


/* Library version string, for the error log at start-up. */
MCPA_API const char *mcpa_version(void) MCPA_NOEXCEPT;


/* --- tools/list filtering (mcp_auth_filter_tools) ------------------------ */

typedef enum {
    MCPA_FILTER_FILTERED = 0,     /* tools removed: the sink has the body */
    MCPA_FILTER_UNCHANGED,        /* nothing to remove: send it as it is */
    MCPA_FILTER_NOT_FILTERABLE,   /* not read exactly: send it as it is */
    MCPA_FILTER_TOO_LARGE         /* the glue's: larger than
                                     mcp_auth_filter_tools_max_size */
} mcpa_filter_e;

/*
 * An upstream's answer to a tools/list (the guard result's lists_tools)
 * without the tools the user may not call: those whose tools/call needs a
 * scope (mcp_auth_tool_scope) that scope lacks, or that a
 * mcp_auth_tool_claim rule keeps from the claims (the guard result's; empty:
 * none).  body is the whole answer, JSON or, with event_stream, an event
 * stream (src/tools_list_filter.hpp).  On MCPA_FILTER_FILTERED the sink has
 * had the new body, once; otherwise the answer goes on as it is.
 */
MCPA_API int mcpa_filter_tools_list(const mcpa_config_t *cf, mcpa_str_t body,
    int event_stream, mcpa_str_t scope, mcpa_str_t claims, mcpa_sink_pt sink,
    void *sink_ctx) MCPA_NOEXCEPT;

/*
 * An event stream answer still arriving: the end of its first event that
 * carries a JSON-RPC response, or 0 while none has arrived whole.  *from
 * (0 at first) is where to look on; the call moves it past what it read.
 * The glue filters up to there and passes the rest, so that a server that
 * keeps the stream open after its answer is not waited for.
 */
MCPA_API size_t mcpa_sse_response_end(mcpa_str_t stream, size_t *from)
    MCPA_NOEXCEPT;

#endif /* MCP_AUTH_H_INCLUDED */
