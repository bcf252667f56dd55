/*
 * ngx_http_mcp_auth_redis.h -- the Redis store of ngx_mcp_auth_module: one
 * connection per worker on nginx's event loop, commands pipelined on it,
 * replies read with hiredis' protocol reader.  Never a blocking call.
 */

#ifndef NGX_HTTP_MCP_AUTH_REDIS_H_INCLUDED
#define NGX_HTTP_MCP_AUTH_REDIS_H_INCLUDED

#include <ngx_config.h>
#include <ngx_core.h>

#include "mcp_auth.h"


typedef struct ngx_mcp_auth_redis_s      ngx_mcp_auth_redis_t;
typedef struct ngx_mcp_auth_redis_cmd_s  ngx_mcp_auth_redis_cmd_t;

/*
 * The answer to one store operation: status is MCPA_OK, MCPA_NOT_FOUND,
 * MCPA_EXISTS, MCPA_CONFLICT, MCPA_FULL or MCPA_UNAVAILABLE; value (GET and
 * TAKE) is valid during the call only.  Always called from an event
 * handler, never from within ngx_mcp_auth_redis_run().
 */
typedef void (*ngx_mcp_auth_redis_handler_pt)(void *data, int status,
    ngx_str_t *value);


/* "mcp_auth_redis ADDRESS|sentinel=HOST:PORT... master=NAME [db=N]
 *  [prefix=P] [user=U] [password_file=F] [sentinel_user=U]
 *  [sentinel_password_file=F] [wait_replicas=N] [wait_timeout=T]
 *  [timeout=T] [connect_timeout=T] [cache=T] [unauthenticated=SIZE]
 *  [tls ...]" */
char *ngx_mcp_auth_redis_parse(ngx_conf_t *cf, ngx_mcp_auth_redis_t **rdp);

/* Seconds a worker may trust a session record it read (cache=). */
time_t ngx_mcp_auth_redis_cache(ngx_mcp_auth_redis_t *rd);

/* Whether requests' changes are confirmed (wait_replicas=): MCPA_OP_SYNC. */
ngx_uint_t ngx_mcp_auth_redis_confirms(ngx_mcp_auth_redis_t *rd);

/*
 * Sends one operation.  NULL when Redis cannot be asked now (it failed
 * moments ago, or memory ran out), or a confirmation cannot be had (the
 * changes went on a connection since lost): the caller answers
 * MCPA_UNAVAILABLE itself, and the handler is not called.  epoch (NULL for
 * reads only) is the request's own: which connection its changes went on,
 * 0 at first.
 */
ngx_mcp_auth_redis_cmd_t *ngx_mcp_auth_redis_run(ngx_mcp_auth_redis_t *rd,
    mcpa_store_op_t *op, ngx_uint_t *epoch,
    ngx_mcp_auth_redis_handler_pt handler, void *data, ngx_log_t *log);

/* The handler will not be called (its request is gone). */
void ngx_mcp_auth_redis_cancel(ngx_mcp_auth_redis_cmd_t *cmd);

/* For the status endpoint. */
ngx_uint_t ngx_mcp_auth_redis_connected(ngx_mcp_auth_redis_t *rd);
ngx_uint_t ngx_mcp_auth_redis_in_flight(ngx_mcp_auth_redis_t *rd);
ngx_str_t *ngx_mcp_auth_redis_address(ngx_mcp_auth_redis_t *rd);
size_t ngx_mcp_auth_redis_unauth_budget(ngx_mcp_auth_redis_t *rd);


/* The counters learn of the connection's state (ngx_http_mcp_auth_metrics.c). */
void ngx_http_mcp_auth_count_redis(ngx_uint_t up);


#endif /* NGX_HTTP_MCP_AUTH_REDIS_H_INCLUDED */
