/*
 * ngx_http_mcp_auth.h -- the one private header of the nginx glue: the
 * types its files share (the location configuration, the request context,
 * the shared-memory zone), and the functions one file calls in another.
 * Everything else in a file is static.  The C++ core is reached only
 * through src/mcp_auth.h.
 */

#ifndef NGX_HTTP_MCP_AUTH_H_INCLUDED
#define NGX_HTTP_MCP_AUTH_H_INCLUDED


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mcp_auth.h"
#include "zone_index.h"
#include "ngx_http_mcp_auth_redis.h"


/*
 * "mcp_auth_endpoint status": the zone's figures for operators, served by
 * the glue alone (no core); a value outside the core's mcpa_endpoint_e.
 */
#define NGX_HTTP_MCP_AUTH_EP_STATUS    1000

/* "mcp_auth_endpoint metrics": the counters (ngx_http_mcp_auth_metrics.c) */
#define NGX_HTTP_MCP_AUTH_EP_METRICS   1001


typedef struct ngx_http_mcp_auth_metrics_zone_s  ngx_http_mcp_auth_metrics_zone_t;


/*
 * mcp_auth_audit_log: a file nginx opens (and reopens), or syslog; with
 * buffer=, a file's lines are gathered per worker and written when the
 * buffer fills, after flush= time, on reopen and at exit.
 */
typedef struct {
    ngx_open_file_t          *file;
    ngx_syslog_peer_t        *syslog;
    size_t                    buffer_size;
    ngx_msec_t                flush;
    unsigned                  set:1;
} ngx_http_mcp_auth_audit_t;


/*
 * The cores built so far, one per distinct set of settings: locations that
 * say the same share one (and its keys are read once); the counters; the
 * audit log.
 */
typedef struct {
    ngx_array_t               cores;           /* ngx_http_mcp_auth_core_t */
    ngx_uint_t                users;           /* locations using them */
    ngx_http_mcp_auth_metrics_zone_t  *metrics;
    ngx_http_mcp_auth_audit_t  audit;
} ngx_http_mcp_auth_main_conf_t;


/*
 * The shared-memory store: entries keyed by a string, found through an
 * open-addressed hash index sized with the zone (src/zone_index.h: keyed
 * SipHash, linear probing, full key compare), with a queue that a sweep
 * walks to drop expired entries, as limit_req does.
 */
typedef struct {
    uint32_t                  hash;            /* low half of the key's hash */
    u_short                   key_len;
    u_short                   flags;           /* NGX_HTTP_MCP_AUTH_UNAUTH */
    uint32_t                  value_len;
    int64_t                   expires;
    ngx_queue_t               queue;
    u_char                    data[1];         /* key, then value */
} ngx_http_mcp_auth_node_t;


/*
 * An entry that anyone can make (MCPA_PUT_UNAUTHENTICATED: a registration
 * not yet used for a login, a fetched client metadata document).  Such
 * entries live within a budget of their own (mcp_auth_zone ...
 * unauthenticated=) and the oldest of them make room for new ones, so that
 * anonymous traffic can never take the zone from logged-in users.
 */
#define NGX_HTTP_MCP_AUTH_UNAUTH  0x0001

/*
 * An unauthenticated entry is allocated with this link in front of its
 * node: the queue of unauthenticated entries in the order they were made,
 * the oldest at the tail, which eviction takes.  The main queue cannot keep
 * that order (the sweep rotates it), and normal entries, the many, do
 * without the 16 bytes.
 */
typedef struct {
    ngx_queue_t               queue;
} ngx_http_mcp_auth_unauth_t;

#define ngx_http_mcp_auth_unauth_of(an)                                      \
    ((ngx_http_mcp_auth_unauth_t *) (an) - 1)
#define ngx_http_mcp_auth_node_of(u)                                         \
    ((ngx_http_mcp_auth_node_t *) ((ngx_http_mcp_auth_unauth_t *) (u) + 1))


typedef struct {
    mcpa_zindex_t             index;
    ngx_queue_t               queue;
    ngx_uint_t                count;
    ngx_uint_t                changes;         /* bumped by every write */

    /* unauthenticated entries: the oldest at the tail; the bytes their
     * allocations take from the slab (expired ones not yet dropped
     * included); how many live ones were evicted to make room */
    ngx_queue_t               unauth;
    ngx_uint_t                unauth_count;
    size_t                    unauth_bytes;
    ngx_uint_t                evicted;
} ngx_http_mcp_auth_shctx_t;


typedef struct {
    ngx_http_mcp_auth_shctx_t  *sh;
    ngx_slab_pool_t            *shpool;

    /* the state file: entries survive a restart */
    ngx_str_t                   state_file;
    ngx_msec_t                  state_interval;
    mcpa_config_t              *keys;          /* a core with a key file */
    ngx_uint_t                  saved;         /* changes at the last save */
    ngx_event_t                 save_event;

    /* the most bytes unauthenticated entries may take (unauthenticated=);
     * configuration, so a reload may change it */
    size_t                      unauth_budget;
    ngx_str_t                   unauth_conf;   /* as written, for checks */

    /* this process's last prefetched key and its hash: the get() that
     * follows does not hash it again */
    u_char                      prefetched[64];
    size_t                      prefetched_len;
    uint64_t                    prefetched_hash;
} ngx_http_mcp_auth_zone_t;


typedef struct {
    ngx_uint_t                endpoint;        /* mcpa_endpoint_e */

    /* the core's settings (mcpa_settings_t), each checked on its line */
    ngx_str_t                 issuer;
    ngx_str_t                 resource;
    ngx_str_t                 resource_name;
    ngx_str_t                 scopes;
    ngx_str_t                 cors_origins;
    ngx_str_t                 authorization_path;
    ngx_str_t                 token_path;
    ngx_str_t                 registration_path;
    ngx_str_t                 revocation_path;
    ngx_str_t                 consent_path;
    ngx_str_t                 callback_path;
    ngx_str_t                 key_file;
    ngx_str_t                 admin_key_file;
    ngx_str_t                 provider_issuer;
    ngx_str_t                 provider_authorization_endpoint;
    ngx_str_t                 provider_token_endpoint;
    ngx_str_t                 provider_client_id;
    ngx_str_t                 provider_client_secret_file;
    ngx_uint_t                provider_client_auth;
    ngx_str_t                 provider_private_key_file;
    ngx_str_t                 provider_key_id;
    ngx_str_t                 provider_certificate_file;
    ngx_str_t                 provider_scopes;
    time_t                    access_token_ttl;
    time_t                    refresh_token_ttl;
    time_t                    session_ttl;
    time_t                    code_ttl;
    time_t                    login_ttl;
    time_t                    client_ttl;
    ngx_flag_t                consent_remember;
    ngx_flag_t                secure_cookies;
    ngx_flag_t                pass_provider_token;
    ngx_flag_t                filter_tools;
    size_t                    filter_tools_max_size;
    ngx_flag_t                client_metadata_documents;
    ngx_flag_t                client_metadata_allow_private;
    ngx_array_t              *client_metadata_ports;  /* of int */
    ngx_str_t                 identity_key_file;
    ngx_str_t                 identity_issuer;
    ngx_str_t                 identity_audience;
    ngx_str_t                 tool_scopes;     /* "NAME SCOPE...\n" lines */
    ngx_str_t                 metrics_tools;
    ngx_str_t                 claim_rules;     /* "KIND\tWORD...\n" lines */
    ngx_str_t                 scope_descriptions;
    ngx_str_t                 provider_params;
    ngx_str_t                 limits;          /* mcp_auth_limit lines */
    ngx_str_t                 exchange_audiences;  /* mcp_auth_exchange_audience
                                                      lines */
    ngx_str_t                 exchange_clients;    /* mcp_auth_exchange_client
                                                      lines */
    ngx_str_t                 service_clients;     /* mcp_auth_service_client
                                                      lines */
    ngx_str_t                 trusted_issuers;     /* mcp_auth_trusted_issuer
                                                      lines */
    ngx_str_t                 enterprise_clients;  /* mcp_auth_enterprise_client
                                                      lines */

    ngx_flag_t                protect;
    ngx_msec_t                stream_check;
    size_t                    max_body;
    size_t                    peek_size;

    ngx_shm_zone_t           *shm_zone;        /* mcp_auth_zone */
    ngx_mcp_auth_redis_t     *redis;           /* mcp_auth_redis */
    ngx_str_t                 provider_token_location;
    ngx_str_t                 provider_jwks_location;
    ngx_str_t                 client_metadata_location;

    mcpa_config_t            *core;            /* shared, read-only */
    mcpa_store_t              store;

    ngx_int_t                 response_slot;   /* its 2xx counter, or -1 */
    ngx_int_t                 unavailable_slot;  /* its 503s, or -1 */
} ngx_http_mcp_auth_loc_conf_t;


/*
 * Per request, one part for each thing the module does with it.  The fetch:
 * a call to the provider (or a client metadata document) in flight, and what
 * resumes the request once it has answered.
 */
typedef struct {
    mcpa_request_t            req;             /* kept for mcpa_resume() */
    ngx_str_t                 continuation;
    ngx_str_t                 body;            /* $mcp_auth_fetch_body */
    ngx_str_t                 authorization;   /* ..._fetch_authorization */
    ngx_str_t                 url;             /* $mcp_auth_fetch_url */
    ngx_str_t                 answer;
    ngx_str_t                 answer_cache_control;
    ngx_int_t                 answer_status;
    ngx_uint_t                count;           /* calls made; never loop */
    mcpa_fetch_e              target;          /* of the call in flight */
    ngx_msec_t                started;
    unsigned                  waiting:1;
    unsigned                  fetched:1;       /* an answer awaits the guard */
    unsigned                  observed:1;      /* counted in the metrics */
} ngx_http_mcp_auth_fetch_ctx_t;


/* The client metadata document being fetched: where it is. */
typedef struct {
    ngx_str_t                 host;            /* $mcp_auth_fetch_host */
    ngx_str_t                 path;
    ngx_int_t                 port;
} ngx_http_mcp_auth_doc_ctx_t;


/*
 * The guard: where its check of the request stands, what it established
 * (the $mcp_auth_* variables, the headers sent upstream), and the timer
 * that looks at a stream's session now and then.
 */
typedef struct {
    unsigned                  done:1;
    unsigned                  body_read:1;
    unsigned                  waiting_body:1;
    ngx_str_t                 subject;
    ngx_str_t                 client_id;
    ngx_str_t                 scope;
    ngx_str_t                 session_tag;
    ngx_str_t                 session_key;
    ngx_str_t                 identity;
    ngx_str_t                 provider_token;
    ngx_event_t               stream_check;
} ngx_http_mcp_auth_guard_ctx_t;


/*
 * A deferred store (Redis), see mcpa_store_t: the operation in flight, and
 * what the next run of the core is told of the last one.
 */
typedef struct {
    int64_t                   now;             /* one clock for all runs */
    int64_t                   now_ms;          /* the same, in ms (quotas) */
    ngx_str_t                 replay;
    int                       replay_status;
    ngx_str_t                 replay_value;
    ngx_mcp_auth_redis_cmd_t *cmd;             /* in flight */
    ngx_uint_t                ops;
    ngx_uint_t                epoch;           /* its changes' connection */
    unsigned                  waiting:1;
    unsigned                  guard:1;         /* the guard asked */
    unsigned                  cleanup:1;
    unsigned                  resuming:1;      /* mcpa_resume(), not handle */
} ngx_http_mcp_auth_store_ctx_t;


/* The request's id, and the W3C trace context: "00-TRACE_ID-PARENT_ID-FLAGS". */
typedef struct {
    u_char                    id[32];
    ngx_str_t                 request_id;
    u_char                    buf[55];
    ngx_str_t                 traceparent;
    ngx_str_t                 trace_id;
    unsigned                  from_client:1;
} ngx_http_mcp_auth_trace_ctx_t;


/* A stream's session looked up in Redis (the stream check's probe). */
typedef struct {
    unsigned                  answered:1;
    int                       status;
    ngx_str_t                *value;
    ngx_str_t                 key;
} ngx_http_mcp_auth_probe_ctx_t;


/*
 * The tools/list filter (mcp_auth_filter_tools): what the guard allowed
 * the request with, and the upstream's answer gathered until it ends.
 */
typedef struct {
    ngx_str_t                 claims;          /* the guard's, copied */
    u_char                   *buf;             /* the answer so far */
    size_t                    len;
    size_t                    size;
    size_t                    scanned;         /* events looked at */
    unsigned                  lists_tools:1;   /* the guard said so */
    unsigned                  gathering:1;
    unsigned                  event_stream:1;
} ngx_http_mcp_auth_filter_ctx_t;


typedef struct {
    ngx_http_mcp_auth_fetch_ctx_t   fetch;
    ngx_http_mcp_auth_doc_ctx_t     doc;
    ngx_http_mcp_auth_guard_ctx_t   guard;
    ngx_http_mcp_auth_store_ctx_t   store;
    ngx_http_mcp_auth_probe_ctx_t   probe;
    ngx_http_mcp_auth_trace_ctx_t   trace;
    ngx_http_mcp_auth_filter_ctx_t  filter;
} ngx_http_mcp_auth_ctx_t;


extern ngx_module_t  ngx_http_mcp_auth_module;


/*
 * The headers of a list (a request's, a response's) one at a time, NULL
 * after the last; *part NULL starts with the first:
 *
 *     part = NULL;
 *     while ((h = ngx_http_mcp_auth_next_header(list, &part, &i))) { ... }
 */
static ngx_inline ngx_table_elt_t *
ngx_http_mcp_auth_next_header(ngx_list_t *list, ngx_list_part_t **part,
    ngx_uint_t *i)
{
    if (*part == NULL) {
        *part = &list->part;
        *i = 0;
    }

    while (*i >= (*part)->nelts) {
        if ((*part)->next == NULL) {
            return NULL;
        }

        *part = (*part)->next;
        *i = 0;
    }

    return (ngx_table_elt_t *) (*part)->elts + (*i)++;
}


/* nginx/ngx_http_mcp_auth_audit.c */
char *ngx_http_mcp_auth_audit_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_mcp_auth_audit(ngx_http_request_t *r, const mcpa_event_t *ev);
void ngx_http_mcp_auth_audit_exit_process(ngx_cycle_t *cycle);
ngx_str_t *ngx_http_mcp_auth_traceparent(ngx_http_request_t *r);
ngx_str_t *ngx_http_mcp_auth_trace_id(ngx_http_request_t *r);
ngx_str_t *ngx_http_mcp_auth_request_id(ngx_http_request_t *r);


/* nginx/ngx_http_mcp_auth_endpoint.c */
ngx_int_t ngx_http_mcp_auth_endpoint_handler(ngx_http_request_t *r);
ngx_http_mcp_auth_ctx_t *ngx_http_mcp_auth_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_mcp_auth_run(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
ngx_int_t ngx_http_mcp_auth_store(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp, ngx_uint_t guard);
ngx_int_t ngx_http_mcp_auth_store_cleanup_add(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
void ngx_http_mcp_auth_replay(ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_replay_t *replay);
ngx_int_t ngx_http_mcp_auth_copy_str(ngx_pool_t *pool, ngx_str_t *dst,
    mcpa_str_t *src);
ngx_int_t ngx_http_mcp_auth_send(ngx_http_request_t *r,
    mcpa_response_t *resp);
ngx_int_t ngx_http_mcp_auth_flatten_body(ngx_http_request_t *r,
    ngx_str_t *body);
void ngx_http_mcp_auth_header_str(ngx_table_elt_t *h, mcpa_str_t *s);


/* nginx/ngx_http_mcp_auth_fetch.c */
ngx_int_t ngx_http_mcp_auth_fetch(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp, ngx_uint_t guard);


/* nginx/ngx_http_mcp_auth_guard.c */
ngx_int_t ngx_http_mcp_auth_guard_handler(ngx_http_request_t *r);


/* nginx/ngx_http_mcp_auth_metrics.c */
ngx_http_mcp_auth_metrics_zone_t *ngx_http_mcp_auth_metrics_add_zone(
    ngx_conf_t *cf, ngx_array_t *cores);
void ngx_http_mcp_auth_metrics_init_process(ngx_cycle_t *cycle);
void ngx_http_mcp_auth_count(const int *metric);
void ngx_http_mcp_auth_observe(mcpa_metric_e m, int a, int64_t b);
void ngx_http_mcp_auth_count_stream(ngx_int_t delta);
void ngx_http_mcp_auth_count_redis(ngx_uint_t up);
ngx_int_t ngx_http_mcp_auth_response_slot(ngx_http_mcp_auth_loc_conf_t *alcf,
    ngx_int_t *unavailable503);
ngx_int_t ngx_http_mcp_auth_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mcp_auth_metrics_handler(ngx_http_request_t *r);

/* One event: its counters and its audit line. */
static ngx_inline void
ngx_http_mcp_auth_event(ngx_http_request_t *r, const mcpa_event_t *ev)
{
    ngx_http_mcp_auth_count(ev->metric);
    ngx_http_mcp_auth_audit(r, ev);
}


/* nginx/ngx_http_mcp_auth_state.c */
void ngx_http_mcp_auth_load_state(ngx_http_mcp_auth_zone_t *zone,
    ngx_log_t *log);
ngx_int_t ngx_http_mcp_auth_init_process(ngx_cycle_t *cycle);
void ngx_http_mcp_auth_exit_process(ngx_cycle_t *cycle);
void ngx_http_mcp_auth_exit_master(ngx_cycle_t *cycle);


/* nginx/ngx_http_mcp_auth_status.c */
ngx_int_t ngx_http_mcp_auth_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_mcp_auth_send_document(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_str_t *type);


/* nginx/ngx_http_mcp_auth_zone.c */
typedef struct {
    ngx_uint_t                live;
    ngx_uint_t                expired;          /* not yet swept */
    ngx_uint_t                sessions;         /* live ones */
    ngx_uint_t                codes;            /* live, not yet redeemed */
    ngx_uint_t                pages_free;
    ngx_uint_t                unauth_count;
    size_t                    unauth_bytes;
    ngx_uint_t                evicted;
} ngx_http_mcp_auth_census_t;

void ngx_http_mcp_auth_zone_census(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_census_t *c);
void ngx_http_mcp_auth_store_prefetch(void *data, mcpa_str_t key);
int ngx_http_mcp_auth_store_get(void *data, mcpa_str_t key, int take,
    mcpa_sink_pt sink, void *sink_ctx);
int ngx_http_mcp_auth_store_put(void *data, mcpa_str_t key,
    mcpa_str_t value, int64_t expires, int mode, mcpa_str_t expect);
int ngx_http_mcp_auth_store_del(void *data, mcpa_str_t key);
char *ngx_http_mcp_auth_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* NGX_HTTP_MCP_AUTH_H_INCLUDED */
