/*
 * ngx_http_mcp_auth_redis_conn.h -- the Redis store's insides, shared by
 * its connection (ngx_http_mcp_auth_redis.c) and the Sentinel code that
 * finds the primary and watches for failovers
 * (ngx_http_mcp_auth_sentinel.c).  Nothing else includes it.
 */

#ifndef NGX_HTTP_MCP_AUTH_REDIS_CONN_H_INCLUDED
#define NGX_HTTP_MCP_AUTH_REDIS_CONN_H_INCLUDED

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <hiredis/hiredis.h>

#include "ngx_http_mcp_auth_redis.h"


/* the connection's state */
#define NGX_MCP_AUTH_REDIS_IDLE           0
#define NGX_MCP_AUTH_REDIS_CONNECTING     1
#define NGX_MCP_AUTH_REDIS_READY          2
#define NGX_MCP_AUTH_REDIS_HANDSHAKE_TLS  3
#define NGX_MCP_AUTH_REDIS_ASKING         4     /* a Sentinel, asked */

#define NGX_MCP_AUTH_REDIS_RETRY       1000  /* ms after a failure */

/*
 * The +switch-master subscription is asked for again this often (Redis
 * confirms each SUBSCRIBE, even of a channel it has, and the Sentinel's ACL
 * needs nothing more); a Sentinel that has not confirmed the last one by
 * the next is left for the next Sentinel: a stopped or cut-off one keeps
 * its connection open and says nothing.
 */
#define NGX_MCP_AUTH_REDIS_WATCH_BEAT  2000

/* a command argument that is no key (ngx_mcp_auth_redis_command) */
#define NGX_MCP_AUTH_REDIS_NO_KEY      ((ngx_uint_t) -1)

#define NGX_MCP_AUTH_REDIS_SENTINELS   8


typedef struct {
    ngx_addr_t                      addr;
    ngx_str_t                       host;       /* NUL-terminated */
} ngx_mcp_auth_redis_sentinel_t;


/*
 * A worker's subscription to Sentinel's +switch-master, on a connection of
 * its own, so that it leaves a primary the Sentinels replaced even while
 * that one still answers (cut off from the Sentinels, not from this edge).
 */
typedef struct {
    ngx_mcp_auth_redis_t           *rd;
    ngx_peer_connection_t           peer;
    redisReader                    *reader;
    ngx_event_t                     retry;
    ngx_event_t                     beat;
    ngx_str_t                      *tls_name;
    ngx_uint_t                      next;       /* the Sentinel to use next */
    size_t                          sent;
    unsigned                        started:1;
    unsigned                        connecting:1;
    unsigned                        unanswered:1;   /* a beat, no reply since */
} ngx_mcp_auth_redis_watch_t;


struct ngx_mcp_auth_redis_s {
    /* configuration */
    ngx_addr_t                      addr;
    ngx_str_t                       prefix;
    ngx_str_t                       user;
    ngx_str_t                       password;
    ngx_int_t                       db;
    ngx_msec_t                      timeout;
    ngx_msec_t                      connect_timeout;
    time_t                          cache;
    size_t                          unauth_budget;
    ngx_str_t                       unauth_order;   /* prefixed index keys */
    ngx_str_t                       unauth_expiry;
    ngx_str_t                       unauth_sizes;
    ngx_str_t                       unauth_budget_arg;

    /* Sentinel mode: nsentinels > 0, master named */
    ngx_mcp_auth_redis_sentinel_t   sentinels[NGX_MCP_AUTH_REDIS_SENTINELS];
    ngx_uint_t                      nsentinels;
    ngx_str_t                       master;
    ngx_str_t                       sentinel_user;
    ngx_str_t                       sentinel_password;
    ngx_str_t                       ask;        /* [AUTH] SENTINEL get-... */
    ngx_uint_t                      ask_replies;
    ngx_str_t                       subscribe;  /* [AUTH] SUBSCRIBE ... */

    ngx_uint_t                      wait_replicas;
    ngx_msec_t                      wait_timeout;
    ngx_str_t                       wait_timeout_arg;

#if (NGX_SSL)
    ngx_ssl_t                      *ssl;        /* tls: verified, always */
    ngx_str_t                       tls_name;   /* SNI and the name checked */
    ngx_str_t                       tls_ca;
    ngx_str_t                       tls_certificate;
    ngx_str_t                       tls_certificate_key;
    ngx_str_t                      *tls_peer;   /* the name this peer needs */
#endif

    /* per worker: configuration memory is private after fork */
    ngx_uint_t                      state;
    ngx_uint_t                      epoch;      /* counts connections */
    ngx_uint_t                      replicas;   /* connected, ROLE says */
    ngx_msec_t                      replicas_at;
    ngx_uint_t                      replicas_asked;
    ngx_uint_t                      hello;      /* commands wait for ROLE */
    size_t                          hello_len;  /* the handshake in out */
    ngx_uint_t                      asking;     /* connected to a Sentinel */
    ngx_uint_t                      asked;      /* Sentinels asked, this round */
    ngx_uint_t                      next_sentinel;
    ngx_uint_t                      ask_pending;
    size_t                          ask_sent;
    ngx_sockaddr_t                  primary_sockaddr;
    socklen_t                       primary_socklen;
    ngx_str_t                       primary_name;   /* ip:port */
    u_char                          primary_text[NGX_SOCKADDR_STRLEN];
    ngx_str_t                       primary_host;   /* NUL-terminated */
    u_char                          primary_host_text[NGX_INET6_ADDRSTRLEN + 1];
    ngx_mcp_auth_redis_watch_t      watch;
    ngx_peer_connection_t           peer;
    redisReader                    *reader;
    ngx_queue_t                     waiting;    /* sent, awaiting replies */
    ngx_uint_t                      in_flight;
    u_char                         *out;        /* commands not yet sent */
    size_t                          out_len;
    size_t                          out_sent;
    size_t                          out_size;
    ngx_msec_t                      retry_at;
};


/* ngx_http_mcp_auth_redis.c */
ngx_int_t ngx_mcp_auth_redis_open(ngx_mcp_auth_redis_t *rd,
    struct sockaddr *sockaddr, socklen_t socklen, ngx_str_t *name,
    ngx_str_t *tls_name);
void ngx_mcp_auth_redis_close(ngx_mcp_auth_redis_t *rd, ngx_uint_t failed);
void ngx_mcp_auth_redis_drop(ngx_mcp_auth_redis_t *rd);
void ngx_mcp_auth_redis_disconnect(ngx_peer_connection_t *peer,
    redisReader **reader);
size_t ngx_mcp_auth_redis_error_code(redisReply *reply);
ngx_int_t ngx_mcp_auth_redis_command(ngx_mcp_auth_redis_t *rd,
    ngx_uint_t nargs, ngx_str_t *args, ngx_uint_t prefixed);
#if (NGX_SSL)
ngx_int_t ngx_mcp_auth_redis_tls_start(ngx_ssl_t *ssl, ngx_connection_t *c,
    ngx_str_t *name, ngx_connection_handler_pt done);
ngx_int_t ngx_mcp_auth_redis_tls_check(ngx_connection_t *c, ngx_str_t *name,
    ngx_str_t *peer);
#endif

/* ngx_http_mcp_auth_sentinel.c */
char *ngx_mcp_auth_redis_sentinel(ngx_conf_t *cf, ngx_mcp_auth_redis_t *rd,
    ngx_str_t *value);
char *ngx_mcp_auth_redis_sentinel_conf(ngx_conf_t *cf,
    ngx_mcp_auth_redis_t *rd);
ngx_int_t ngx_mcp_auth_redis_ask(ngx_mcp_auth_redis_t *rd);
void ngx_mcp_auth_redis_ask_send(ngx_mcp_auth_redis_t *rd);
void ngx_mcp_auth_redis_ask_read(ngx_mcp_auth_redis_t *rd);
void ngx_mcp_auth_redis_watch_start(ngx_mcp_auth_redis_t *rd);


#endif /* NGX_HTTP_MCP_AUTH_REDIS_CONN_H_INCLUDED */
