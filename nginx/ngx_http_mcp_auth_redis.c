/*
 * ngx_http_mcp_auth_redis.c -- the Redis store (mcp_auth_redis).
 *
 * Each worker keeps one connection, made with nginx's own peer connection
 * machinery and driven by its event loop; commands are pipelined on it and
 * answered in order, so one connection carries any number of requests.
 * hiredis is used only for what it does well, reading the RESP protocol;
 * commands are written here (the few this store needs).
 *
 * Atomicity is Redis's: GETDEL takes a single-use value once across every
 * node, SET NX creates once, and a compare-and-set script lets one writer
 * win (a code redeemed, a refresh token rotated); another script keeps
 * unauthenticated entries within their budget.
 * Every key carries an expiry equal to its lifetime (EXAT); the budget's
 * index keys, that of the last entry they count.
 *
 * When Redis fails (refused, reset, no answer within timeout) every waiting
 * operation is answered MCPA_UNAVAILABLE -- the core turns that into a 503
 * with Retry-After -- and no new connection is tried for a second, so that
 * an outage costs requests a fast answer, not a timeout each.
 *
 * With Sentinels (sentinel=, master=; ngx_http_mcp_auth_sentinel.c) the
 * address is not configured but
 * asked for: each new connection starts by asking the Sentinels in turn for
 * the master's address, then opens it and checks with ROLE that it is the
 * primary before any command goes out.  A lost connection, a READONLY
 * answer (the node was demoted) or Sentinel's +switch-master notice (a
 * subscription on a connection of its own) drops the connection, and the
 * next request asks again: a failover is ridden through without a reload.
 *
 * With wait_replicas=N, a request's changes are confirmed (MCPA_OP_SYNC) by
 * WAIT on the connection they went on, for N replicas or as many as are
 * connected when fewer are; a confirmation asked on another connection than
 * its changes' fails, since WAIT only speaks for its own.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <hiredis/hiredis.h>

#include "ngx_http_mcp_auth_redis_conn.h"


/* how a command's reply is read */
#define NGX_MCP_AUTH_REDIS_HANDSHAKE   1     /* AUTH, SELECT */
#define NGX_MCP_AUTH_REDIS_GET         2     /* GET, GETDEL */
#define NGX_MCP_AUTH_REDIS_SET         3
#define NGX_MCP_AUTH_REDIS_SET_NX      4
#define NGX_MCP_AUTH_REDIS_REPLACE     5
#define NGX_MCP_AUTH_REDIS_DEL         6
#define NGX_MCP_AUTH_REDIS_UNAUTH      7     /* the budget script */
#define NGX_MCP_AUTH_REDIS_ROLE        8     /* is this the primary? */
#define NGX_MCP_AUTH_REDIS_WAIT        9     /* MCPA_OP_SYNC */
#define NGX_MCP_AUTH_REDIS_REPLICAS    10    /* ROLE again: still primary? */

/* how long the count of connected replicas is trusted */
#define NGX_MCP_AUTH_REDIS_REPLICAS_TTL  1000



/* the budget script is sent at most this often for one put (see below) */
#define NGX_MCP_AUTH_REDIS_UNAUTH_ROUNDS  4



/*
 * An unauthenticated put, kept with its command because the budget script
 * may have to be sent again, naming the entries it must evict.
 */
typedef struct {
    ngx_str_t                       key;
    ngx_str_t                       value;
    ngx_str_t                       expires;
    ngx_uint_t                      nx;
    ngx_uint_t                      rounds;
    u_char                          at[NGX_INT64_LEN];
} ngx_mcp_auth_redis_put_t;


struct ngx_mcp_auth_redis_cmd_s {
    ngx_queue_t                     queue;
    ngx_uint_t                      kind;
    ngx_mcp_auth_redis_handler_pt   handler;    /* NULL: nobody waits */
    void                           *data;
    ngx_mcp_auth_redis_put_t       *put;        /* NGX_MCP_AUTH_REDIS_UNAUTH */
    ngx_uint_t                      want;       /* NGX_MCP_AUTH_REDIS_WAIT */
};




/*
 * Compare-and-set: the value is replaced only when it is still the one the
 * caller read.  1 replaced, 0 another value is there, -1 no value.
 */
static ngx_str_t  ngx_mcp_auth_redis_replace_script = ngx_string(
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then return -1 end "
    "if v ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[2], 'EXAT', ARGV[3]) "
    "return 1");


/*
 * Unauthenticated entries (MCPA_PUT_UNAUTHENTICATED: registrations not yet
 * used for a login, fetched client metadata documents) live within a
 * budget shared by every node (unauthenticated=, 64m by default), counted
 * in three index keys under the prefix, which the script alone changes:
 *
 *   P"unauthenticated:order"   sorted set: each such key (prefixed), scored
 *                              by when it was made (Redis's clock, in
 *                              microseconds: one clock for every node)
 *   P"unauthenticated:expiry"  sorted set: the same keys, scored by their
 *                              expiry (EXAT)
 *   P"unauthenticated:sizes"   hash: each such key -> the bytes it counts
 *                              (its name and its sealed value; Redis's own
 *                              overhead per key is not counted), "total"
 *                              (their sum) and "evicted" (a counter); no
 *                              key has a field name without a colon
 *
 * KEYS[1] the entry, KEYS[2..4] the index, KEYS[5...] the entries the
 * caller was told to evict; ARGV[1] the value, ARGV[2] its expiry, ARGV[3]
 * "1" for NX, ARGV[4] the budget.
 *
 * Index entries of keys that have expired are dropped (128 at most a
 * call).  When the entry does not fit, the oldest entries are evicted --
 * but a script may only touch the keys it is given, and the caller cannot
 * know which ones those are: so the script answers with their names, and
 * the caller sends it again with them in KEYS.  The named entries still in
 * the index are evicted, in that order, until the entry fits; the answer
 * names 16 more than needed, so that writers on other nodes evicting the
 * same ones meanwhile rarely leave too few.  When they do, the script
 * answers with the oldest names again (NGX_MCP_AUTH_REDIS_UNAUTH_ROUNDS
 * rounds at most, then "full").  An index entry whose key is gone
 * (deleted, promoted to a normal entry) is harmless: evicting it only
 * frees its count.  A total that the whole index does not add up to (an
 * index key lost: Redis told to evict keys, or someone deleting one) is
 * corrected.  The index keys expire with the last entry they count, so
 * every key in Redis still carries an expiry.
 *
 * 1 stored, 0 exists (NX), -1 larger than the budget (or needing more than
 * 512 evictions), or an array: the keys to name (at most 528).
 */
static ngx_str_t  ngx_mcp_auth_redis_unauth_script = ngx_string(
    "local key, order, expiry, sizes = KEYS[1], KEYS[2], KEYS[3], KEYS[4] "
    "local value, exat, budget = ARGV[1], tonumber(ARGV[2]), "
    "tonumber(ARGV[4]) "
    "if ARGV[3] == '1' and redis.call('EXISTS', key) == 1 then "
    "return 0 end "
    "local size = #key + #value "
    "if size > budget then return -1 end "
    "local t = redis.call('TIME') "
    "local total = tonumber(redis.call('HGET', sizes, 'total') or '0') "
    "local function forget(m) "
    "local s = redis.call('HGET', sizes, m) "
    "if s then total = total - tonumber(s) "
    "redis.call('HDEL', sizes, m) end "
    "redis.call('ZREM', order, m) "
    "redis.call('ZREM', expiry, m) end "
    "for _, m in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', "
    "'(' .. t[1], 'LIMIT', 0, 128)) do forget(m) end "
    "local used = total - tonumber(redis.call('HGET', sizes, key) or '0') "
    "if used + size > budget then "
    "local victims, chosen = {}, {} "
    "for i = 5, #KEYS do "
    "local s = redis.call('HGET', sizes, KEYS[i]) "
    "if used + size <= budget then break end "
    "if s and KEYS[i] ~= key and not chosen[KEYS[i]] then "
    "chosen[KEYS[i]] = true victims[#victims + 1] = KEYS[i] "
    "used = used - tonumber(s) end end "
    "if used + size > budget then "
    "local oldest, spare = redis.call('ZRANGE', order, 0, 527), 0 "
    "for _, m in ipairs(oldest) do "
    "if used + size <= budget then "
    "if spare == 16 then break end "
    "spare = spare + 1 "
    "if m ~= key and not chosen[m] then "
    "chosen[m] = true victims[#victims + 1] = m end "
    "elseif m ~= key and not chosen[m] then "
    "chosen[m] = true victims[#victims + 1] = m "
    "used = used - tonumber(redis.call('HGET', sizes, m) or '0') end end "
    "if used + size > budget and #oldest < 528 then "
    "total = total - used used = 0 end "
    "if redis.call('EXISTS', sizes) == 1 then "
    "redis.call('HSET', sizes, 'total', total) end "
    "if used + size > budget then return -1 end "
    "return victims end "
    "for _, m in ipairs(victims) do "
    "if redis.call('DEL', m) == 1 then "
    "redis.call('HINCRBY', sizes, 'evicted', 1) end "
    "forget(m) end end "
    "forget(key) "
    "redis.call('SET', key, value, 'EXAT', exat) "
    "redis.call('ZADD', order, t[1] .. '.' .. string.format('%06d', "
    "tonumber(t[2])), key) "
    "redis.call('ZADD', expiry, exat, key) "
    "redis.call('HSET', sizes, key, size, 'total', total + size) "
    "for i = 2, 4 do "
    "if redis.call('EXPIRETIME', KEYS[i]) < exat then "
    "redis.call('EXPIREAT', KEYS[i], exat) end end "
    "return 1");


/* The parameters that are plain words (NAME=VALUE). */
typedef struct {
    ngx_str_t                       name;
    size_t                          offset;
} ngx_mcp_auth_redis_word_t;

static ngx_mcp_auth_redis_word_t  ngx_mcp_auth_redis_words[] = {
    { ngx_string("prefix="), offsetof(ngx_mcp_auth_redis_t, prefix) },
    { ngx_string("user="), offsetof(ngx_mcp_auth_redis_t, user) },
    { ngx_string("sentinel_user="),
      offsetof(ngx_mcp_auth_redis_t, sentinel_user) },
#if (NGX_SSL)
    { ngx_string("tls_name="), offsetof(ngx_mcp_auth_redis_t, tls_name) },
    { ngx_string("tls_ca="), offsetof(ngx_mcp_auth_redis_t, tls_ca) },
    { ngx_string("tls_certificate="),
      offsetof(ngx_mcp_auth_redis_t, tls_certificate) },
    { ngx_string("tls_certificate_key="),
      offsetof(ngx_mcp_auth_redis_t, tls_certificate_key) },
#endif
    { ngx_null_string, 0 }
};


static char *ngx_mcp_auth_redis_password(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *password);
static ngx_int_t ngx_mcp_auth_redis_connect(ngx_mcp_auth_redis_t *rd,
    ngx_log_t *log);
static ngx_int_t ngx_mcp_auth_redis_own_command(ngx_mcp_auth_redis_t *rd,
    ngx_uint_t kind, ngx_uint_t nargs, ngx_str_t *args);
static void ngx_mcp_auth_redis_connected_now(ngx_mcp_auth_redis_t *rd);
#if (NGX_SSL)
static char *ngx_mcp_auth_redis_tls_conf(ngx_conf_t *cf,
    ngx_mcp_auth_redis_t *rd);
static void ngx_mcp_auth_redis_tls_handshake(ngx_mcp_auth_redis_t *rd);
static void ngx_mcp_auth_redis_tls_done(ngx_connection_t *c);
static ngx_int_t ngx_mcp_auth_redis_tls_name_ok(ngx_connection_t *c,
    ngx_str_t *name);
#endif
static void ngx_mcp_auth_redis_write_handler(ngx_event_t *wev);
static void ngx_mcp_auth_redis_read_handler(ngx_event_t *rev);
static void ngx_mcp_auth_redis_send(ngx_mcp_auth_redis_t *rd);
static ngx_int_t ngx_mcp_auth_redis_reply(ngx_mcp_auth_redis_t *rd,
    ngx_mcp_auth_redis_cmd_t *cmd, redisReply *reply);
static void ngx_mcp_auth_redis_arm(ngx_mcp_auth_redis_t *rd,
    ngx_uint_t progress);
static ngx_mcp_auth_redis_cmd_t *ngx_mcp_auth_redis_push(
    ngx_mcp_auth_redis_t *rd, ngx_uint_t kind,
    ngx_mcp_auth_redis_handler_pt handler, void *data);
static void ngx_mcp_auth_redis_free(ngx_mcp_auth_redis_cmd_t *cmd);
static ngx_mcp_auth_redis_put_t *ngx_mcp_auth_redis_put(mcpa_store_op_t *op,
    ngx_str_t *expires);
static ngx_int_t ngx_mcp_auth_redis_unauth(ngx_mcp_auth_redis_t *rd,
    ngx_mcp_auth_redis_put_t *put, redisReply *victims);
static ngx_int_t ngx_mcp_auth_redis_reserve(ngx_mcp_auth_redis_t *rd,
    size_t len);


char *
ngx_mcp_auth_redis_parse(ngx_conf_t *cf, ngx_mcp_auth_redis_t **rdp)
{
    u_char                     *p;
    ssize_t                     n;
    ngx_str_t                  *value, v, file, *field;
    ngx_url_t                   u;
    ngx_uint_t                  i;
    ngx_mcp_auth_redis_t       *rd;
    ngx_mcp_auth_redis_word_t  *w;

    value = cf->args->elts;

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_mcp_auth_redis_t));
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

#if (NGX_SSL)
    ngx_str_set(&rd->tls_ca, "/etc/ssl/certs/ca-certificates.crt");
#endif
    ngx_str_set(&rd->prefix, "mcp_auth:");
    rd->timeout = 1000;
    rd->connect_timeout = 1000;
    rd->cache = 5;
    rd->unauth_budget = 64 * 1024 * 1024;
    rd->wait_timeout = 500;
    ngx_queue_init(&rd->waiting);

    /* with Sentinels there is no address: they are asked for it */
    i = 1;

    if (ngx_strchr(value[1].data, '=') == NULL) {
        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            if (u.err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "%s in mcp_auth_redis \"%V\"",
                                   u.err, &u.url);
            }

            return NGX_CONF_ERROR;
        }

        if (u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcp_auth_redis \"%V\" has no address",
                               &u.url);
            return NGX_CONF_ERROR;
        }

        rd->addr = u.addrs[0];
#if (NGX_SSL)
        rd->tls_name = u.host;
#endif
        i = 2;
    }

    for ( /* void */ ; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            if (ngx_mcp_auth_redis_sentinel(cf, rd, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0
            && value[i].len > 7)
        {
            rd->master.data = value[i].data + 7;
            rd->master.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "wait_replicas=", 14) == 0) {
            n = ngx_atoi(value[i].data + 14, value[i].len - 14);
            if (n == NGX_ERROR || n > 64) {
                goto invalid;
            }

            rd->wait_replicas = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "wait_timeout=", 13) == 0) {
            v.data = value[i].data + 13;
            v.len = value[i].len - 13;

            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            rd->wait_timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password_file=", 23) == 0) {
            file.data = value[i].data + 23;
            file.len = value[i].len - 23;

            if (ngx_mcp_auth_redis_password(cf, &file, &rd->sentinel_password)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rd->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (rd->db == NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        for (w = ngx_mcp_auth_redis_words; w->name.len; w++) {
            if (value[i].len > w->name.len
                && ngx_strncmp(value[i].data, w->name.data, w->name.len) == 0)
            {
                break;
            }
        }

        if (w->name.len) {
            field = (ngx_str_t *) ((u_char *) rd + w->offset);
            field->data = value[i].data + w->name.len;
            field->len = value[i].len - w->name.len;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0
            || ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0)
        {
            p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
            v.data = p + 1;
            v.len = value[i].data + value[i].len - v.data;

            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            if (value[i].data[0] == 't') {
                rd->timeout = (ngx_msec_t) n;

            } else {
                rd->connect_timeout = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cache=", 6) == 0) {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            if (v.len == 1 && v.data[0] == '0') {
                rd->cache = 0;
                continue;
            }

            n = ngx_parse_time(&v, 1);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            rd->cache = (time_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "unauthenticated=", 16) == 0) {
            v.data = value[i].data + 16;
            v.len = value[i].len - 16;

            n = ngx_parse_size(&v);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            rd->unauth_budget = (size_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            file.data = value[i].data + 14;
            file.len = value[i].len - 14;

            if (ngx_mcp_auth_redis_password(cf, &file, &rd->password)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

#if (NGX_SSL)
        if (value[i].len == 3 && ngx_strncmp(value[i].data, "tls", 3) == 0) {
            rd->ssl = NGX_CONF_UNSET_PTR;    /* made below */
            continue;
        }

#endif

        goto invalid;
    }

    if (ngx_mcp_auth_redis_sentinel_conf(cf, rd) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

#if (NGX_SSL)
    if (rd->ssl == NGX_CONF_UNSET_PTR) {
        if (ngx_mcp_auth_redis_tls_conf(cf, rd) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

    } else if (rd->tls_certificate.len || rd->tls_certificate_key.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"tls_certificate=\" needs \"tls\"");
        return NGX_CONF_ERROR;
    }
#endif

    if (rd->user.len && rd->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"user=\" needs "
                           "\"password_file=\"");
        return NGX_CONF_ERROR;
    }

    /* the budget's index keys, and the budget as the script's argument */
    rd->unauth_order.len = rd->prefix.len
                           + sizeof("unauthenticated:order") - 1;
    rd->unauth_expiry.len = rd->prefix.len
                            + sizeof("unauthenticated:expiry") - 1;
    rd->unauth_sizes.len = rd->prefix.len
                           + sizeof("unauthenticated:sizes") - 1;

    rd->unauth_order.data = ngx_pnalloc(cf->pool, rd->unauth_order.len);
    rd->unauth_expiry.data = ngx_pnalloc(cf->pool, rd->unauth_expiry.len);
    rd->unauth_sizes.data = ngx_pnalloc(cf->pool, rd->unauth_sizes.len);
    rd->unauth_budget_arg.data = ngx_pnalloc(cf->pool, NGX_SIZE_T_LEN);

    if (rd->unauth_order.data == NULL || rd->unauth_expiry.data == NULL
        || rd->unauth_sizes.data == NULL || rd->unauth_budget_arg.data == NULL)
    {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(rd->unauth_order.data, "%Vunauthenticated:order",
                &rd->prefix);
    ngx_sprintf(rd->unauth_expiry.data, "%Vunauthenticated:expiry",
                &rd->prefix);
    ngx_sprintf(rd->unauth_sizes.data, "%Vunauthenticated:sizes",
                &rd->prefix);
    rd->unauth_budget_arg.len = ngx_sprintf(rd->unauth_budget_arg.data, "%uz",
                                            rd->unauth_budget)
                                - rd->unauth_budget_arg.data;

    *rdp = rd;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid mcp_auth_redis parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* The first line of a password file, without its line end. */
static char *
ngx_mcp_auth_redis_password(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *password)
{
    u_char           *p, *last;
    ssize_t           n;
    ngx_str_t         file;
    ngx_file_t        f;
    ngx_file_info_t   fi;

    file = *name;

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.name = file;
    f.log = cf->log;
    f.fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (f.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &file);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(f.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_close_file(f.fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"%V\" is not a password file",
                           &file);
        return NGX_CONF_ERROR;
    }

    password->data = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (password->data == NULL) {
        ngx_close_file(f.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&f, password->data, (size_t) ngx_file_size(&fi), 0);
    ngx_close_file(f.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    last = password->data + n;
    for (p = password->data; p < last; p++) {
        if (*p == '\r' || *p == '\n') {
            break;
        }
    }

    password->len = p - password->data;

    if (password->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"%V\" is empty", &file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


#if (NGX_SSL)

/*
 * TLS to Redis: the server's certificate is always verified, against
 * tls_ca= (the system's CAs by default) and for tls_name= (the address's
 * host by default); a client certificate when Redis asks for one
 * (tls-auth-clients).
 */
static char *
ngx_mcp_auth_redis_tls_conf(ngx_conf_t *cf, ngx_mcp_auth_redis_t *rd)
{
    u_char              *p;
    ngx_pool_cleanup_t  *cln;

    if (rd->tls_name.len == 0 && rd->nsentinels == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"tls\" needs \"tls_name=\" "
                           "for this address");
        return NGX_CONF_ERROR;
    }

    if ((rd->tls_certificate.len == 0) != (rd->tls_certificate_key.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"tls_certificate=\" and "
                           "\"tls_certificate_key=\" go together");
        return NGX_CONF_ERROR;
    }

    rd->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (rd->ssl == NULL) {
        return NGX_CONF_ERROR;
    }

    rd->ssl->log = cf->log;

    if (ngx_ssl_create(rd->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(rd->ssl);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = rd->ssl;

    if (rd->tls_certificate.len
        && ngx_ssl_certificate(cf, rd->ssl, &rd->tls_certificate,
                               &rd->tls_certificate_key, NULL)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_ssl_trusted_certificate(cf, rd->ssl, &rd->tls_ca, 4) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (rd->tls_name.len == 0) {
        /* with Sentinels: each peer's own host, or the address it was given */
        return NGX_CONF_OK;
    }

    /* NUL-terminated for SNI */
    p = ngx_pnalloc(cf->pool, rd->tls_name.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, rd->tls_name.data, rd->tls_name.len);
    p[rd->tls_name.len] = '\0';
    rd->tls_name.data = p;

    return NGX_CONF_OK;
}

#endif


time_t
ngx_mcp_auth_redis_cache(ngx_mcp_auth_redis_t *rd)
{
    return rd->cache;
}


ngx_uint_t
ngx_mcp_auth_redis_connected(ngx_mcp_auth_redis_t *rd)
{
    return rd->state == NGX_MCP_AUTH_REDIS_READY && !rd->hello;
}


ngx_uint_t
ngx_mcp_auth_redis_in_flight(ngx_mcp_auth_redis_t *rd)
{
    return rd->in_flight;
}


ngx_str_t *
ngx_mcp_auth_redis_address(ngx_mcp_auth_redis_t *rd)
{
    if (rd->nsentinels) {
        /* the primary last found, else the name the Sentinels know it by */
        return rd->primary_name.len ? &rd->primary_name : &rd->master;
    }

    return &rd->addr.name;
}


ngx_uint_t
ngx_mcp_auth_redis_confirms(ngx_mcp_auth_redis_t *rd)
{
    return rd->wait_replicas > 0;
}


size_t
ngx_mcp_auth_redis_unauth_budget(ngx_mcp_auth_redis_t *rd)
{
    return rd->unauth_budget;
}


ngx_mcp_auth_redis_cmd_t *
ngx_mcp_auth_redis_run(ngx_mcp_auth_redis_t *rd, mcpa_store_op_t *op,
    ngx_uint_t *epoch, ngx_mcp_auth_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    int                        mode;
    u_char                     expires[NGX_INT64_LEN];
    u_char                     count[NGX_INT_T_LEN];
    int64_t                    at;
    ngx_str_t                  args[7];
    ngx_uint_t                 nargs, kind, want;
    ngx_mcp_auth_redis_cmd_t  *cmd;
    ngx_mcp_auth_redis_put_t  *put;

    if (rd->nsentinels && !rd->watch.started) {
        ngx_mcp_auth_redis_watch_start(rd);
    }

    if (op->op == MCPA_OP_SYNC
        && (epoch == NULL || *epoch != rd->epoch
            || rd->state == NGX_MCP_AUTH_REDIS_IDLE || rd->wait_replicas == 0))
    {
        /* WAIT on another connection would confirm nothing of these */
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "mcp_auth: changes not confirmed: the connection to "
                      "redis they went on is gone");
        return NULL;
    }

    if (rd->state == NGX_MCP_AUTH_REDIS_IDLE) {
        if ((ngx_msec_int_t) (rd->retry_at - ngx_current_msec) > 0) {
            return NULL;
        }

        if (ngx_mcp_auth_redis_connect(rd, log) != NGX_OK) {
            rd->retry_at = ngx_current_msec + NGX_MCP_AUTH_REDIS_RETRY;
            return NULL;
        }
    }

    if (epoch && op->op != MCPA_OP_GET && op->op != MCPA_OP_SYNC) {
        /* the connection a request's changes go on; ~0: more than one */
        *epoch = (*epoch == 0 || *epoch == rd->epoch) ? rd->epoch
                                                      : (ngx_uint_t) -1;
    }

    /* an expiry is an absolute time; one already past expires at once */
    at = op->expires > 0 ? op->expires : 1;
    args[3].data = expires;
    args[3].len = ngx_sprintf(expires, "%L", at) - expires;

    switch (op->op) {

    case MCPA_OP_SYNC:
        /*
         * WAIT for wait_replicas, or for as many as are connected when
         * fewer are (ROLE, asked again at most once a second): with none
         * connected none can be promoted, and the primary has the change
         * on its disk.
         */
        if ((ngx_msec_int_t) (ngx_current_msec - rd->replicas_at)
            >= NGX_MCP_AUTH_REDIS_REPLICAS_TTL
            && !rd->replicas_asked)
        {
            ngx_str_set(&args[0], "ROLE");

            if (ngx_mcp_auth_redis_own_command(rd, NGX_MCP_AUTH_REDIS_REPLICAS,
                                               1, args)
                != NGX_OK)
            {
                return NULL;
            }

            rd->replicas_asked = 1;
        }

        want = ngx_min(rd->wait_replicas, rd->replicas);

        ngx_str_set(&args[0], "WAIT");
        args[1].data = count;
        args[1].len = ngx_sprintf(count, "%ui", want) - count;
        args[2] = rd->wait_timeout_arg;

        if (ngx_mcp_auth_redis_command(rd, 3, args,
                                       NGX_MCP_AUTH_REDIS_NO_KEY)
            != NGX_OK
            || (cmd = ngx_mcp_auth_redis_push(rd, NGX_MCP_AUTH_REDIS_WAIT,
                                              handler, data))
               == NULL)
        {
            ngx_mcp_auth_redis_close(rd, 1);
            return NULL;
        }

        cmd->want = want;
        *epoch = 0;     /* what changes next is confirmed afresh */
        goto sent;

    case MCPA_OP_GET:
    case MCPA_OP_TAKE:
        if (op->op == MCPA_OP_GET) {
            ngx_str_set(&args[0], "GET");

        } else {
            ngx_str_set(&args[0], "GETDEL");
        }

        nargs = 2;
        kind = NGX_MCP_AUTH_REDIS_GET;
        break;

    case MCPA_OP_DEL:
        ngx_str_set(&args[0], "DEL");
        nargs = 2;
        kind = NGX_MCP_AUTH_REDIS_DEL;
        break;

    case MCPA_OP_PUT:

        mode = op->mode & MCPA_PUT_MODE_MASK;

        if ((op->mode & MCPA_PUT_UNAUTHENTICATED)
            && mode != MCPA_PUT_REPLACE_IF)
        {
            /* within the budget of unauthenticated entries (the script) */
            put = ngx_mcp_auth_redis_put(op, &args[3]);
            if (put == NULL) {
                return NULL;
            }

            if (ngx_mcp_auth_redis_unauth(rd, put, NULL) != NGX_OK) {
                ngx_free(put);
                ngx_mcp_auth_redis_close(rd, 1);
                return NULL;
            }

            cmd = ngx_mcp_auth_redis_push(rd, NGX_MCP_AUTH_REDIS_UNAUTH,
                                          handler, data);
            if (cmd == NULL) {
                ngx_free(put);
                ngx_mcp_auth_redis_close(rd, 1);
                return NULL;
            }

            cmd->put = put;
            goto sent;
        }

        if (mode == MCPA_PUT_REPLACE_IF) {
            /* EVAL script 1 key expected value expires */
            args[6] = args[3];
            ngx_str_set(&args[0], "EVAL");
            args[1] = ngx_mcp_auth_redis_replace_script;
            ngx_str_set(&args[2], "1");
            args[3].data = (u_char *) op->key.data;
            args[3].len = op->key.len;
            args[4].data = (u_char *) op->expect.data;
            args[4].len = op->expect.len;
            args[5].data = (u_char *) op->value.data;
            args[5].len = op->value.len;

            if (ngx_mcp_auth_redis_command(rd, 7, args, 3) != NGX_OK
                || ngx_mcp_auth_redis_push(rd, NGX_MCP_AUTH_REDIS_REPLACE,
                                           handler, data)
                   == NULL)
            {
                ngx_mcp_auth_redis_close(rd, 1);
                return NULL;
            }

            goto sent;
        }

        /* SET key value EXAT expires [NX] */
        args[4] = args[3];
        ngx_str_set(&args[0], "SET");
        args[2].data = (u_char *) op->value.data;
        args[2].len = op->value.len;
        ngx_str_set(&args[3], "EXAT");
        nargs = 5;
        kind = NGX_MCP_AUTH_REDIS_SET;

        if (mode == MCPA_PUT_NEW) {
            ngx_str_set(&args[5], "NX");
            nargs = 6;
            kind = NGX_MCP_AUTH_REDIS_SET_NX;
        }

        break;

    default:
        return NULL;
    }

    args[1].data = (u_char *) op->key.data;
    args[1].len = op->key.len;

    if (ngx_mcp_auth_redis_command(rd, nargs, args, 1) != NGX_OK
        || ngx_mcp_auth_redis_push(rd, kind, handler, data) == NULL)
    {
        ngx_mcp_auth_redis_close(rd, 1);
        return NULL;
    }

sent:

    if (rd->state == NGX_MCP_AUTH_REDIS_READY) {
        /* written from the event loop, so that no handler runs in here */
        ngx_post_event(rd->peer.connection->write, &ngx_posted_events);
        ngx_mcp_auth_redis_arm(rd, 0);
    }

    return ngx_queue_data(ngx_queue_last(&rd->waiting),
                          ngx_mcp_auth_redis_cmd_t, queue);
}


void
ngx_mcp_auth_redis_cancel(ngx_mcp_auth_redis_cmd_t *cmd)
{
    /* the reply still comes, in order, and is dropped */
    cmd->handler = NULL;
    cmd->data = NULL;
}


/*
 * A new connection: the handshake is queued ahead of every command, then the
 * address is opened, or, with Sentinels, asked for first.
 */
static ngx_int_t
ngx_mcp_auth_redis_connect(ngx_mcp_auth_redis_t *rd, ngx_log_t *log)
{
    u_char     db[NGX_INT_T_LEN];
    ngx_int_t  rc;
    ngx_str_t  args[3];

    rd->epoch++;

    /* until ROLE says how many are connected, wait for them all */
    rd->replicas = rd->wait_replicas;
    rd->replicas_at = ngx_current_msec - NGX_MCP_AUTH_REDIS_REPLICAS_TTL;
    rd->replicas_asked = 0;

    if (rd->password.len) {
        ngx_str_set(&args[0], "AUTH");

        if (rd->user.len) {
            args[1] = rd->user;
            args[2] = rd->password;

        } else {
            args[1] = rd->password;
        }

        if (ngx_mcp_auth_redis_own_command(rd, NGX_MCP_AUTH_REDIS_HANDSHAKE,
                                           rd->user.len ? 3 : 2, args)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (rd->db) {
        ngx_str_set(&args[0], "SELECT");
        args[1].data = db;
        args[1].len = ngx_sprintf(db, "%i", rd->db) - db;

        if (ngx_mcp_auth_redis_own_command(rd, NGX_MCP_AUTH_REDIS_HANDSHAKE,
                                           2, args)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (rd->nsentinels == 0) {
        rc = ngx_mcp_auth_redis_open(rd, rd->addr.sockaddr, rd->addr.socklen,
                                     &rd->addr.name,
#if (NGX_SSL)
                                     &rd->tls_name
#else
                                     NULL
#endif
                                     );

    } else {
        /*
         * What a Sentinel names may be a replica still (it names the old
         * primary until the failover is done): commands wait for ROLE.
         */
        ngx_str_set(&args[0], "ROLE");

        if (ngx_mcp_auth_redis_own_command(rd, NGX_MCP_AUTH_REDIS_ROLE, 1, args)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        rd->hello = 1;
        rd->hello_len = rd->out_len;
        rd->asked = 0;

        rc = ngx_mcp_auth_redis_ask(rd);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "mcp_auth: cannot reach redis");
        ngx_mcp_auth_redis_close(rd, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Opens a connection to a Redis node or a Sentinel (rd->asking); the rest
 * happens in the write handler, from the event loop: nothing in here
 * answers anybody.
 */
ngx_int_t
ngx_mcp_auth_redis_open(ngx_mcp_auth_redis_t *rd, struct sockaddr *sockaddr,
    socklen_t socklen, ngx_str_t *name, ngx_str_t *tls_name)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_memzero(&rd->peer, sizeof(ngx_peer_connection_t));

    rd->peer.sockaddr = sockaddr;
    rd->peer.socklen = socklen;
    rd->peer.name = name;
    rd->peer.get = ngx_event_get_peer;
    rd->peer.log = ngx_cycle->log;
    rd->peer.log_error = NGX_ERROR_ERR;

#if (NGX_SSL)
    rd->tls_peer = tls_name;
#endif

    rc = ngx_event_connect_peer(&rd->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "mcp_auth: cannot connect to %s at %V",
                      rd->asking ? "redis sentinel" : "redis", name);

        if (rd->peer.connection) {
            ngx_close_connection(rd->peer.connection);
            rd->peer.connection = NULL;
        }

        return NGX_ERROR;
    }

    c = rd->peer.connection;
    c->data = rd;
    c->read->handler = ngx_mcp_auth_redis_read_handler;
    c->write->handler = ngx_mcp_auth_redis_write_handler;
    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;

    rd->reader = redisReaderCreate();
    if (rd->reader == NULL) {
        ngx_mcp_auth_redis_drop(rd);
        return NGX_ERROR;
    }

#if (NGX_SSL)
    if (rd->ssl) {
        /* what the TLS connection is allocated from */
        c->pool = ngx_create_pool(512, c->log);
        if (c->pool == NULL) {
            ngx_mcp_auth_redis_drop(rd);
            return NGX_ERROR;
        }
    }
#endif

    rd->state = NGX_MCP_AUTH_REDIS_CONNECTING;

    if (rc != NGX_AGAIN) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_add_timer(c->write, rd->connect_timeout);

    return NGX_OK;
}


/*
 * A command of the store's own (AUTH, SELECT, ROLE), no request waits for;
 * its answer is read by its kind.  Failing, it closes the connection.
 */
static ngx_int_t
ngx_mcp_auth_redis_own_command(ngx_mcp_auth_redis_t *rd, ngx_uint_t kind,
    ngx_uint_t nargs, ngx_str_t *args)
{
    if (ngx_mcp_auth_redis_command(rd, nargs, args, NGX_MCP_AUTH_REDIS_NO_KEY)
        != NGX_OK
        || ngx_mcp_auth_redis_push(rd, kind, NULL, NULL) == NULL)
    {
        ngx_mcp_auth_redis_close(rd, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The TCP connection is up: TLS first when configured, then commands. */
static void
ngx_mcp_auth_redis_connected_now(ngx_mcp_auth_redis_t *rd)
{
    ngx_connection_t  *c;

    c = rd->peer.connection;

#if (NGX_SSL)
    if (rd->ssl && c->ssl == NULL) {
        ngx_mcp_auth_redis_tls_handshake(rd);
        return;
    }
#endif

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (rd->asking) {
        rd->state = NGX_MCP_AUTH_REDIS_ASKING;
        rd->ask_sent = 0;
        rd->ask_pending = rd->ask_replies;
        ngx_add_timer(c->read, rd->timeout);
        ngx_mcp_auth_redis_ask_send(rd);
        return;
    }

    rd->state = NGX_MCP_AUTH_REDIS_READY;

    if (!rd->hello) {
        ngx_http_mcp_auth_count_redis(1);
    }

    ngx_mcp_auth_redis_arm(rd, 1);
    ngx_mcp_auth_redis_send(rd);
}


#if (NGX_SSL)

/*
 * Starts TLS on c for name; done(c) is called when the handshake ends, at
 * once or from the event loop.  NGX_ERROR: it could not start.
 */
ngx_int_t
ngx_mcp_auth_redis_tls_start(ngx_ssl_t *ssl, ngx_connection_t *c,
    ngx_str_t *name, ngx_connection_handler_pt done)
{
    if (ngx_ssl_create_connection(ssl, c, NGX_SSL_CLIENT) != NGX_OK) {
        return NGX_ERROR;
    }

    if (SSL_set_tlsext_host_name(c->ssl->connection, (char *) name->data)
        == 0)
    {
        return NGX_ERROR;
    }

    if (ngx_ssl_handshake(c) == NGX_AGAIN) {
        c->ssl->handler = done;
        return NGX_OK;
    }

    done(c);

    return NGX_OK;
}


/* The handshake ended well, and the certificate verifies and names name. */
ngx_int_t
ngx_mcp_auth_redis_tls_check(ngx_connection_t *c, ngx_str_t *name,
    ngx_str_t *peer)
{
    long  verify;

    if (!c->ssl->handshaked) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "mcp_auth: TLS handshake with redis at %V %s", peer,
                      c->write->timedout || c->read->timedout
                      ? "timed out" : "failed");
        return NGX_ERROR;
    }

    verify = SSL_get_verify_result(c->ssl->connection);

    if (verify != X509_V_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "mcp_auth: redis at %V: certificate verify failed "
                      "(%l: %s)", peer, verify,
                      X509_verify_cert_error_string(verify));
        return NGX_ERROR;
    }

    if (ngx_mcp_auth_redis_tls_name_ok(c, name) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "mcp_auth: redis at %V: certificate is not for \"%V\"",
                      peer, name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_mcp_auth_redis_tls_handshake(ngx_mcp_auth_redis_t *rd)
{
    rd->state = NGX_MCP_AUTH_REDIS_HANDSHAKE_TLS;

    if (ngx_mcp_auth_redis_tls_start(rd->ssl, rd->peer.connection,
                                     rd->tls_peer, ngx_mcp_auth_redis_tls_done)
        != NGX_OK)
    {
        ngx_mcp_auth_redis_close(rd, 1);
    }
}


/* The certificate names tls_name: an IP address SAN, or a host name. */
static ngx_int_t
ngx_mcp_auth_redis_tls_name_ok(ngx_connection_t *c, ngx_str_t *name)
{
    int    rc;
    X509  *cert;

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    /* name is NUL-terminated (tls_conf); -2: not an IP address */
    rc = X509_check_ip_asc(cert, (const char *) name->data, 0);
    X509_free(cert);

    if (rc == 1) {
        return NGX_OK;
    }

    if (rc != -2) {
        return NGX_ERROR;
    }

    return ngx_ssl_check_host(c, name);
}


static void
ngx_mcp_auth_redis_tls_done(ngx_connection_t *c)
{
    ngx_mcp_auth_redis_t  *rd;

    rd = c->data;

    if (ngx_mcp_auth_redis_tls_check(c, rd->tls_peer, rd->peer.name)
        != NGX_OK)
    {
        ngx_mcp_auth_redis_close(rd, 1);
        return;
    }

    c->read->handler = ngx_mcp_auth_redis_read_handler;
    c->write->handler = ngx_mcp_auth_redis_write_handler;

    ngx_mcp_auth_redis_connected_now(rd);
}

#endif


static void
ngx_mcp_auth_redis_write_handler(ngx_event_t *wev)
{
    int                    err;
    socklen_t              len;
    ngx_connection_t      *c;
    ngx_mcp_auth_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    if (rd->state == NGX_MCP_AUTH_REDIS_CONNECTING) {

        if (wev->timedout) {
            ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                          "mcp_auth: connecting to redis at %V timed out",
                          rd->peer.name);
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_log_error(NGX_LOG_ERR, c->log, err,
                          "mcp_auth: cannot connect to redis at %V",
                          rd->peer.name);
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        ngx_mcp_auth_redis_connected_now(rd);
        return;
    }

    if (rd->state == NGX_MCP_AUTH_REDIS_ASKING) {
        ngx_mcp_auth_redis_ask_send(rd);
        return;
    }

    if (rd->state == NGX_MCP_AUTH_REDIS_READY) {
        ngx_mcp_auth_redis_send(rd);
    }
}


static void
ngx_mcp_auth_redis_send(ngx_mcp_auth_redis_t *rd)
{
    size_t             limit;
    ssize_t            n;
    ngx_connection_t  *c;

    c = rd->peer.connection;

    /* until ROLE answers, only the handshake goes out */
    limit = rd->hello ? rd->hello_len : rd->out_len;

    while (rd->out_sent < limit) {
        n = c->send(c, rd->out + rd->out_sent, limit - rd->out_sent);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "mcp_auth: lost the connection to redis at %V",
                          rd->peer.name);
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        rd->out_sent += n;
    }

    if (rd->out_sent == rd->out_len) {
        rd->out_sent = 0;
        rd->out_len = 0;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_mcp_auth_redis_close(rd, 1);
    }
}


static void
ngx_mcp_auth_redis_read_handler(ngx_event_t *rev)
{
    u_char                     buf[16384];
    ssize_t                    n;
    ngx_int_t                  rc;
    redisReply                *reply;
    ngx_queue_t               *q;
    ngx_connection_t          *c;
    ngx_mcp_auth_redis_t      *rd;
    ngx_mcp_auth_redis_cmd_t  *cmd;

    c = rev->data;
    rd = c->data;

    if (c->close) {
        /* a graceful shutdown closing idle connections */
        ngx_mcp_auth_redis_close(rd, 0);
        return;
    }

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                      "mcp_auth: redis at %V did not answer in time",
                      rd->peer.name);
        ngx_mcp_auth_redis_close(rd, 1);
        return;
    }

    if (rd->asking) {
        ngx_mcp_auth_redis_ask_read(rd);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            if (rd->in_flight) {
                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "mcp_auth: redis at %V closed the connection",
                              rd->peer.name);
            }

            ngx_mcp_auth_redis_close(rd, rd->in_flight ? 1 : 0);
            return;
        }

        if (redisReaderFeed(rd->reader, (const char *) buf, (size_t) n)
            != REDIS_OK)
        {
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(rd->reader, (void **) &reply) != REDIS_OK)
            {
                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "mcp_auth: redis protocol error: %s",
                              rd->reader->errstr);
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (ngx_queue_empty(&rd->waiting)) {
                freeReplyObject(reply);
                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "mcp_auth: redis sent an unasked reply");
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            q = ngx_queue_head(&rd->waiting);
            ngx_queue_remove(q);
            rd->in_flight--;
            cmd = ngx_queue_data(q, ngx_mcp_auth_redis_cmd_t, queue);

            rc = ngx_mcp_auth_redis_reply(rd, cmd, reply);

            freeReplyObject(reply);

            if (rc == NGX_AGAIN) {
                /* sent again, and waiting at the tail */
                continue;
            }

            if (rc == NGX_DECLINED) {
                /* back at the head: answered with the rest, as a failure */
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            ngx_mcp_auth_redis_free(cmd);

            if (rc != NGX_OK) {
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            if (rd->peer.connection != c) {
                return;     /* closed by what the answer set off */
            }
        }
    }

    if (ngx_exiting && rd->in_flight == 0) {
        /*
         * A graceful shutdown closes idle connections once, when it starts;
         * one busy then is closed when its last answer is in, or the worker
         * would exit with it open.
         */
        ngx_mcp_auth_redis_close(rd, 0);
        return;
    }

    ngx_mcp_auth_redis_arm(rd, 1);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_mcp_auth_redis_close(rd, 1);
    }
}


/* Answers one command from its reply; NGX_ERROR closes the connection. */
static ngx_int_t
ngx_mcp_auth_redis_reply(ngx_mcp_auth_redis_t *rd,
    ngx_mcp_auth_redis_cmd_t *cmd, redisReply *reply)
{
    int         status;
    size_t      n;
    ngx_str_t   value, *v;

    v = NULL;
    status = MCPA_UNAVAILABLE;

    if (reply->type == REDIS_REPLY_ERROR) {

        if (cmd->kind == NGX_MCP_AUTH_REDIS_HANDSHAKE
            || cmd->kind == NGX_MCP_AUTH_REDIS_ROLE)
        {
            n = ngx_mcp_auth_redis_error_code(reply);

            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "mcp_auth: redis at %V refused the handshake "
                          "(AUTH, SELECT or ROLE): %*s", rd->peer.name, n,
                          reply->str);
            return NGX_ERROR;
        }

        if (reply->len >= 8 && ngx_strncmp(reply->str, "READONLY", 8) == 0)
        {
            /*
             * A replica now (a failover demoted it): this and every other
             * waiting command fail, and the next connection finds the
             * primary.
             */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "mcp_auth: redis at %V is no longer the primary",
                          rd->peer.name);

            ngx_queue_insert_head(&rd->waiting, &cmd->queue);
            rd->in_flight++;

            return NGX_DECLINED;
        }

        if (reply->len >= 3 && ngx_strncmp(reply->str, "OOM", 3) == 0) {
            status = MCPA_FULL;

        } else {
            n = ngx_mcp_auth_redis_error_code(reply);

            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "mcp_auth: redis at %V answered an error: %*s",
                          rd->peer.name, n, reply->str);
        }

        goto answer;
    }

    switch (cmd->kind) {

    case NGX_MCP_AUTH_REDIS_HANDSHAKE:
        return NGX_OK;

    case NGX_MCP_AUTH_REDIS_ROLE:
    case NGX_MCP_AUTH_REDIS_REPLICAS:
        /* ["master", offset, [[ip, port, offset], ...]] */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[0]->len != 6
            || ngx_strncmp(reply->element[0]->str, "master", 6) != 0
            || reply->element[2]->type != REDIS_REPLY_ARRAY)
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "mcp_auth: redis at %V is not the primary%s",
                          rd->peer.name,
                          cmd->kind == NGX_MCP_AUTH_REDIS_ROLE
                          ? " yet" : " any more");
            return NGX_ERROR;
        }

        rd->replicas = reply->element[2]->elements;
        rd->replicas_at = ngx_current_msec;
        rd->replicas_asked = 0;

        if (cmd->kind == NGX_MCP_AUTH_REDIS_ROLE) {
            /* the primary: the commands held back go out */
            rd->hello = 0;
            ngx_http_mcp_auth_count_redis(1);
            ngx_post_event(rd->peer.connection->write, &ngx_posted_events);
        }

        return NGX_OK;

    case NGX_MCP_AUTH_REDIS_WAIT:
        if (reply->type != REDIS_REPLY_INTEGER) {
            break;
        }

        if (reply->integer >= (long long) cmd->want) {
            status = MCPA_OK;
            break;
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "mcp_auth: changes not confirmed: %L of %ui replicas "
                      "of redis at %V had them within %M ms",
                      (int64_t) reply->integer, cmd->want,
                      rd->peer.name, rd->wait_timeout);
        break;

    case NGX_MCP_AUTH_REDIS_GET:
        if (reply->type == REDIS_REPLY_NIL) {
            status = MCPA_NOT_FOUND;

        } else if (reply->type == REDIS_REPLY_STRING) {
            status = MCPA_OK;
            value.data = (u_char *) reply->str;
            value.len = reply->len;
            v = &value;
        }

        break;

    case NGX_MCP_AUTH_REDIS_SET:
        if (reply->type == REDIS_REPLY_STATUS) {
            status = MCPA_OK;
        }

        break;

    case NGX_MCP_AUTH_REDIS_SET_NX:
        if (reply->type == REDIS_REPLY_NIL) {
            status = MCPA_EXISTS;

        } else if (reply->type == REDIS_REPLY_STATUS) {
            status = MCPA_OK;
        }

        break;

    case NGX_MCP_AUTH_REDIS_REPLACE:
        if (reply->type == REDIS_REPLY_INTEGER) {
            status = reply->integer == 1 ? MCPA_OK
                     : reply->integer == 0 ? MCPA_CONFLICT : MCPA_NOT_FOUND;
        }

        break;

    case NGX_MCP_AUTH_REDIS_DEL:
        if (reply->type == REDIS_REPLY_INTEGER) {
            status = reply->integer > 0 ? MCPA_OK : MCPA_NOT_FOUND;
        }

        break;

    case NGX_MCP_AUTH_REDIS_UNAUTH:
        if (reply->type == REDIS_REPLY_INTEGER) {
            status = reply->integer == 1 ? MCPA_OK
                     : reply->integer == 0 ? MCPA_EXISTS : MCPA_FULL;
            break;
        }

        if (reply->type != REDIS_REPLY_ARRAY) {
            break;
        }

        /* the entries to evict first: name them to the script */

        for (n = 0; n < reply->elements; n++) {
            if (reply->element[n]->type != REDIS_REPLY_STRING) {
                goto answer;
            }
        }

        status = MCPA_FULL;     /* the oldest kept changing: no room now */

        if (cmd->handler == NULL
            || ++cmd->put->rounds >= NGX_MCP_AUTH_REDIS_UNAUTH_ROUNDS)
        {
            break;
        }

        if (ngx_mcp_auth_redis_unauth(rd, cmd->put, reply) != NGX_OK) {
            status = MCPA_UNAVAILABLE;
            break;
        }

        ngx_queue_insert_tail(&rd->waiting, &cmd->queue);
        rd->in_flight++;
        ngx_post_event(rd->peer.connection->write, &ngx_posted_events);

        return NGX_AGAIN;
    }

answer:

    if (cmd->handler) {
        cmd->handler(cmd->data, status, v);
    }

    return NGX_OK;
}


/*
 * Drops the connection.  With failed set, every waiting operation is
 * answered MCPA_UNAVAILABLE and no new connection is tried for a moment.
 */
void
ngx_mcp_auth_redis_close(ngx_mcp_auth_redis_t *rd, ngx_uint_t failed)
{
    ngx_queue_t                queue, *q;
    ngx_mcp_auth_redis_cmd_t  *cmd;

    ngx_mcp_auth_redis_drop(rd);

    if (rd->asking) {
        /* a Sentinel failed: the next one is asked, the commands wait */
        if (failed && ngx_mcp_auth_redis_ask(rd) == NGX_OK) {
            return;
        }

        rd->asking = 0;
    }

    rd->state = NGX_MCP_AUTH_REDIS_IDLE;
    rd->out_len = 0;
    rd->out_sent = 0;
    rd->hello = 0;

    if (failed) {
        ngx_http_mcp_auth_count_redis(0);
        rd->retry_at = ngx_current_msec + NGX_MCP_AUTH_REDIS_RETRY;
    }

    /* the handlers may send again: they find a closed store, not this list */
    ngx_queue_init(&queue);

    if (!ngx_queue_empty(&rd->waiting)) {
        queue = rd->waiting;
        queue.next->prev = &queue;
        queue.prev->next = &queue;
    }

    ngx_queue_init(&rd->waiting);
    rd->in_flight = 0;

    while (!ngx_queue_empty(&queue)) {
        q = ngx_queue_head(&queue);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_mcp_auth_redis_cmd_t, queue);

        if (cmd->handler) {
            cmd->handler(cmd->data, MCPA_UNAVAILABLE, NULL);
        }

        ngx_mcp_auth_redis_free(cmd);
    }
}


/* Closes the socket only: the commands stay queued. */
void
ngx_mcp_auth_redis_drop(ngx_mcp_auth_redis_t *rd)
{
    ngx_mcp_auth_redis_disconnect(&rd->peer, &rd->reader);
}


/* Closes a connection (TLS, its pool) and frees its protocol reader. */
void
ngx_mcp_auth_redis_disconnect(ngx_peer_connection_t *peer,
    redisReader **reader)
{
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = peer->connection;

    if (c) {
        pool = c->pool;

#if (NGX_SSL)
        if (c->ssl) {
            c->ssl->no_wait_shutdown = 1;
            (void) ngx_ssl_shutdown(c);
        }
#endif

        ngx_close_connection(c);
        peer->connection = NULL;

        if (pool) {
            ngx_destroy_pool(pool);
        }
    }

    if (*reader) {
        redisReaderFree(*reader);
        *reader = NULL;
    }
}


/*
 * The length of an error reply's code (WRONGPASS, NOAUTH, ...): only that
 * is logged, since the rest of an error text may quote the command, and
 * with it a key, a value or a password.
 */
size_t
ngx_mcp_auth_redis_error_code(redisReply *reply)
{
    size_t  n;

    for (n = 0; n < reply->len && reply->str[n] != ' '; n++) {
        /* void */
    }

    return n;
}


/*
 * A deadline for the next reply while any is awaited.  Only Redis making
 * progress (progress: something was read) moves it; new commands do not,
 * or a stalled Redis under steady load would never time out.
 */
static void
ngx_mcp_auth_redis_arm(ngx_mcp_auth_redis_t *rd, ngx_uint_t progress)
{
    ngx_connection_t  *c;

    c = rd->peer.connection;

    if (c == NULL || rd->state != NGX_MCP_AUTH_REDIS_READY) {
        return;
    }

    if (rd->in_flight) {
        c->idle = 0;

        if (progress || !c->read->timer_set) {
            ngx_add_timer(c->read, rd->timeout);
        }

    } else {
        c->idle = 1;

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }
    }
}


static ngx_mcp_auth_redis_cmd_t *
ngx_mcp_auth_redis_push(ngx_mcp_auth_redis_t *rd, ngx_uint_t kind,
    ngx_mcp_auth_redis_handler_pt handler, void *data)
{
    ngx_mcp_auth_redis_cmd_t  *cmd;

    cmd = ngx_alloc(sizeof(ngx_mcp_auth_redis_cmd_t), ngx_cycle->log);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->kind = kind;
    cmd->handler = handler;
    cmd->data = data;
    cmd->put = NULL;
    cmd->want = 0;

    ngx_queue_insert_tail(&rd->waiting, &cmd->queue);
    rd->in_flight++;

    return cmd;
}


static void
ngx_mcp_auth_redis_free(ngx_mcp_auth_redis_cmd_t *cmd)
{
    if (cmd->put) {
        ngx_explicit_memzero(cmd->put->value.data, cmd->put->value.len);
        ngx_free(cmd->put);
    }

    ngx_free(cmd);
}


/* A copy of an unauthenticated put, for the script's next round. */
static ngx_mcp_auth_redis_put_t *
ngx_mcp_auth_redis_put(mcpa_store_op_t *op, ngx_str_t *expires)
{
    u_char                    *p;
    ngx_mcp_auth_redis_put_t  *put;

    put = ngx_alloc(sizeof(ngx_mcp_auth_redis_put_t) + op->key.len
                    + op->value.len, ngx_cycle->log);
    if (put == NULL) {
        return NULL;
    }

    p = (u_char *) (put + 1);

    put->key.data = p;
    put->key.len = op->key.len;
    p = ngx_cpymem(p, op->key.data, op->key.len);

    put->value.data = p;
    put->value.len = op->value.len;
    ngx_memcpy(p, op->value.data, op->value.len);

    put->expires.data = put->at;
    put->expires.len = ngx_cpymem(put->at, expires->data, expires->len)
                       - put->at;

    put->nx = (op->mode & MCPA_PUT_MODE_MASK) == MCPA_PUT_NEW;
    put->rounds = 0;

    return put;
}


/*
 * EVAL the budget script for put; victims (an array of key names from the
 * script's last answer, or NULL) go into KEYS after the entry and the three
 * index keys.
 */
static ngx_int_t
ngx_mcp_auth_redis_unauth(ngx_mcp_auth_redis_t *rd,
    ngx_mcp_auth_redis_put_t *put, redisReply *victims)
{
    u_char      numkeys[NGX_INT_T_LEN];
    ngx_int_t   rc;
    ngx_str_t  *args;
    ngx_uint_t  i, n, nargs;

    n = victims ? victims->elements : 0;
    nargs = 3 + 4 + n + 4;

    args = ngx_alloc(nargs * sizeof(ngx_str_t), ngx_cycle->log);
    if (args == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&args[0], "EVAL");
    args[1] = ngx_mcp_auth_redis_unauth_script;
    args[2].data = numkeys;
    args[2].len = ngx_sprintf(numkeys, "%ui", 4 + n) - numkeys;
    args[3] = put->key;                 /* prefixed by the command */
    args[4] = rd->unauth_order;
    args[5] = rd->unauth_expiry;
    args[6] = rd->unauth_sizes;

    for (i = 0; i < n; i++) {
        args[7 + i].data = (u_char *) victims->element[i]->str;
        args[7 + i].len = victims->element[i]->len;
    }

    args[7 + n] = put->value;
    args[8 + n] = put->expires;

    if (put->nx) {
        ngx_str_set(&args[9 + n], "1");

    } else {
        ngx_str_set(&args[9 + n], "0");
    }

    args[10 + n] = rd->unauth_budget_arg;

    rc = ngx_mcp_auth_redis_command(rd, nargs, args, 3);

    ngx_free(args);

    return rc;
}


/*
 * Appends one command in RESP: an array of bulk strings.  The argument at
 * index `prefixed` is a key and gets the configured prefix.
 */
ngx_int_t
ngx_mcp_auth_redis_command(ngx_mcp_auth_redis_t *rd, ngx_uint_t nargs,
    ngx_str_t *args, ngx_uint_t prefixed)
{
    u_char      *p;
    size_t       len, arg;
    ngx_uint_t   i;

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

    for (i = 0; i < nargs; i++) {
        arg = args[i].len + (i == prefixed ? rd->prefix.len : 0);
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + arg;
    }

    if (ngx_mcp_auth_redis_reserve(rd, len) != NGX_OK) {
        return NGX_ERROR;
    }

    p = rd->out + rd->out_len;
    p = ngx_sprintf(p, "*%ui\r\n", nargs);

    for (i = 0; i < nargs; i++) {
        arg = args[i].len + (i == prefixed ? rd->prefix.len : 0);
        p = ngx_sprintf(p, "$%uz\r\n", arg);

        if (i == prefixed) {
            p = ngx_cpymem(p, rd->prefix.data, rd->prefix.len);
        }

        p = ngx_cpymem(p, args[i].data, args[i].len);
        *p++ = '\r';
        *p++ = '\n';
    }

    rd->out_len = p - rd->out;

    return NGX_OK;
}


static ngx_int_t
ngx_mcp_auth_redis_reserve(ngx_mcp_auth_redis_t *rd, size_t len)
{
    u_char  *out;
    size_t   size;

    if (rd->out_size - rd->out_len >= len) {
        return NGX_OK;
    }

    size = rd->out_size ? rd->out_size : 4096;

    while (size - rd->out_len < len) {
        size *= 2;
    }

    out = ngx_alloc(size, ngx_cycle->log);
    if (out == NULL) {
        return NGX_ERROR;
    }

    if (rd->out) {
        ngx_memcpy(out, rd->out, rd->out_len);
        ngx_free(rd->out);
    }

    rd->out = out;
    rd->out_size = size;

    return NGX_OK;
}
