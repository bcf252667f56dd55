/*
 * ngx_http_mcp_auth_sentinel.c -- Redis Sentinel for the Redis store
 * (mcp_auth_redis sentinel=... master=...): which primary to connect to,
 * asked of the Sentinels in turn on the store's own connection before it
 * opens the primary, and each worker's subscription to +switch-master on a
 * connection of its own, which drops the store's connection when the
 * Sentinels replace the primary.  Like every Redis connection of the
 * module, driven by nginx's event loop: never a blocking call.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <hiredis/hiredis.h>

#include "ngx_http_mcp_auth_redis_conn.h"


static char *ngx_mcp_auth_redis_sentinel_words(ngx_conf_t *cf,
    ngx_mcp_auth_redis_t *rd, ngx_uint_t nargs, ngx_str_t *args,
    ngx_str_t *out);
static ngx_int_t ngx_mcp_auth_redis_primary(ngx_mcp_auth_redis_t *rd,
    redisReply *reply);
static void ngx_mcp_auth_redis_watch_connect(ngx_event_t *ev);
static void ngx_mcp_auth_redis_watch_write(ngx_event_t *wev);
#if (NGX_SSL)
static void ngx_mcp_auth_redis_watch_tls_done(ngx_connection_t *c);
#endif
static void ngx_mcp_auth_redis_watch_send(ngx_mcp_auth_redis_watch_t *w);
static void ngx_mcp_auth_redis_watch_read(ngx_event_t *rev);
static void ngx_mcp_auth_redis_watch_beat(ngx_event_t *ev);
static void ngx_mcp_auth_redis_watch_message(ngx_mcp_auth_redis_watch_t *w,
    redisReply *reply);
static void ngx_mcp_auth_redis_watch_fail(ngx_mcp_auth_redis_watch_t *w);
static void ngx_mcp_auth_redis_watch_close(ngx_mcp_auth_redis_watch_t *w);


/* "sentinel=HOST:PORT": resolved when the configuration is read. */
char *
ngx_mcp_auth_redis_sentinel(ngx_conf_t *cf, ngx_mcp_auth_redis_t *rd,
    ngx_str_t *value)
{
    ngx_url_t                       u;
    ngx_mcp_auth_redis_sentinel_t  *s;

    if (rd->nsentinels == NGX_MCP_AUTH_REDIS_SENTINELS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: at most %d \"sentinel=\"",
                           NGX_MCP_AUTH_REDIS_SENTINELS);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url.data = value->data + 9;
    u.url.len = value->len - 9;
    u.default_port = 26379;

    if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK
        || u.naddrs == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: %s in \"%V\"",
                           u.err ? u.err : "no address", value);
        return NGX_CONF_ERROR;
    }

    s = &rd->sentinels[rd->nsentinels++];
    s->addr = u.addrs[0];

    /* NUL-terminated: the name its TLS certificate must carry */
    s->host.data = ngx_pnalloc(cf->pool, u.host.len + 1);
    if (s->host.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(s->host.data, u.host.data, u.host.len);
    s->host.data[u.host.len] = '\0';
    s->host.len = u.host.len;

    return NGX_CONF_OK;
}


/*
 * Checks the Sentinel and WAIT parameters, and writes what every new
 * connection asks a Sentinel, and WAIT's arguments, once.
 */
char *
ngx_mcp_auth_redis_sentinel_conf(ngx_conf_t *cf, ngx_mcp_auth_redis_t *rd)
{
    u_char     *p;
    ngx_str_t   args[3];

    if (rd->wait_replicas) {
        if (rd->wait_timeout >= rd->timeout) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcp_auth_redis: \"wait_timeout=\" must be "
                               "shorter than \"timeout=\"");
            return NGX_CONF_ERROR;
        }

        p = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        rd->wait_timeout_arg.data = p;
        rd->wait_timeout_arg.len = ngx_sprintf(p, "%M", rd->wait_timeout) - p;
    }

    if (rd->nsentinels == 0) {
        if (rd->master.len || rd->sentinel_user.len
            || rd->sentinel_password.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcp_auth_redis: \"master=\" and the "
                               "sentinel_ parameters need \"sentinel=\"");
            return NGX_CONF_ERROR;
        }

        if (rd->addr.sockaddr == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "mcp_auth_redis needs an address, or "
                               "\"sentinel=\" and \"master=\"");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (rd->addr.sockaddr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: an address or \"sentinel=\", "
                           "not both (the Sentinels name the primary)");
        return NGX_CONF_ERROR;
    }

    if (rd->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"sentinel=\" needs \"master=\"");
        return NGX_CONF_ERROR;
    }

    if (rd->sentinel_user.len && rd->sentinel_password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "mcp_auth_redis: \"sentinel_user=\" needs "
                           "\"sentinel_password_file=\"");
        return NGX_CONF_ERROR;
    }

    /*
     * What a Sentinel is asked: [AUTH [user] password] then SENTINEL
     * get-master-addr-by-name NAME, or SUBSCRIBE +switch-master.
     */
    ngx_str_set(&args[0], "SENTINEL");
    ngx_str_set(&args[1], "get-master-addr-by-name");
    args[2] = rd->master;

    if (ngx_mcp_auth_redis_sentinel_words(cf, rd, 3, args, &rd->ask)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    rd->ask_replies = rd->sentinel_password.len ? 2 : 1;

    ngx_str_set(&args[0], "SUBSCRIBE");
    ngx_str_set(&args[1], "+switch-master");

    return ngx_mcp_auth_redis_sentinel_words(cf, rd, 2, args, &rd->subscribe);
}


/* [AUTH ...] and one command, in RESP, into configuration memory. */
static char *
ngx_mcp_auth_redis_sentinel_words(ngx_conf_t *cf, ngx_mcp_auth_redis_t *rd,
    ngx_uint_t nargs, ngx_str_t *args, ngx_str_t *out)
{
    ngx_str_t  auth[3];

    if (rd->sentinel_password.len) {
        ngx_str_set(&auth[0], "AUTH");

        if (rd->sentinel_user.len) {
            auth[1] = rd->sentinel_user;
            auth[2] = rd->sentinel_password;

        } else {
            auth[1] = rd->sentinel_password;
        }

        if (ngx_mcp_auth_redis_command(rd, rd->sentinel_user.len ? 3 : 2,
                                       auth, NGX_MCP_AUTH_REDIS_NO_KEY)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_mcp_auth_redis_command(rd, nargs, args, NGX_MCP_AUTH_REDIS_NO_KEY)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    out->data = ngx_pnalloc(cf->pool, rd->out_len);
    if (out->data == NULL) {
        return NGX_CONF_ERROR;
    }

    out->len = rd->out_len;
    ngx_memcpy(out->data, rd->out, rd->out_len);

    /* the password was in there */
    ngx_explicit_memzero(rd->out, rd->out_size);
    ngx_free(rd->out);
    rd->out = NULL;
    rd->out_len = 0;
    rd->out_size = 0;

    return NGX_CONF_OK;
}


/*
 * Opens a connection to the next Sentinel not yet asked in this round.
 * NGX_ERROR: every Sentinel was tried.
 */
ngx_int_t
ngx_mcp_auth_redis_ask(ngx_mcp_auth_redis_t *rd)
{
    ngx_mcp_auth_redis_sentinel_t  *s;

    while (rd->asked < rd->nsentinels) {
        s = &rd->sentinels[rd->next_sentinel];
        rd->next_sentinel = (rd->next_sentinel + 1) % rd->nsentinels;
        rd->asked++;
        rd->asking = 1;

        if (ngx_mcp_auth_redis_open(rd, s->addr.sockaddr, s->addr.socklen,
                                    &s->addr.name,
#if (NGX_SSL)
                                    rd->tls_name.len ? &rd->tls_name : &s->host
#else
                                    NULL
#endif
                                    )
            == NGX_OK)
        {
            return NGX_OK;
        }
    }

    rd->asking = 0;

    return NGX_ERROR;
}


/* Connected to a Sentinel: the question goes out (and on, when it must). */
void
ngx_mcp_auth_redis_ask_send(ngx_mcp_auth_redis_t *rd)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = rd->peer.connection;

    while (rd->ask_sent < rd->ask.len) {
        n = c->send(c, rd->ask.data + rd->ask_sent,
                    rd->ask.len - rd->ask_sent);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        rd->ask_sent += n;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_mcp_auth_redis_close(rd, 1);
    }
}


/*
 * A Sentinel's answers: OK to AUTH, then the master's address.  Found, the
 * Sentinel is left and the primary opened; anything else, the next
 * Sentinel is asked (ngx_mcp_auth_redis_close).
 */
void
ngx_mcp_auth_redis_ask_read(ngx_mcp_auth_redis_t *rd)
{
    u_char             buf[1024];
    size_t             len;
    ssize_t            n;
    ngx_int_t          rc;
    redisReply        *reply;
    ngx_connection_t  *c;

    c = rd->peer.connection;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR
            || redisReaderFeed(rd->reader, (const char *) buf, (size_t) n)
               != REDIS_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "mcp_auth: redis sentinel at %V closed the "
                          "connection", rd->peer.name);
            ngx_mcp_auth_redis_close(rd, 1);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(rd->reader, (void **) &reply) != REDIS_OK)
            {
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (reply->type == REDIS_REPLY_ERROR) {
                len = ngx_mcp_auth_redis_error_code(reply);

                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "mcp_auth: redis sentinel at %V answered %*s",
                              rd->peer.name, len, reply->str);
                freeReplyObject(reply);
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            if (--rd->ask_pending > 0) {
                freeReplyObject(reply);     /* AUTH's OK */
                continue;
            }

            rc = ngx_mcp_auth_redis_primary(rd, reply);
            freeReplyObject(reply);

            if (rc != NGX_OK) {
                ngx_mcp_auth_redis_close(rd, 1);
                return;
            }

            /* leave the Sentinel for the primary it named */
            ngx_mcp_auth_redis_drop(rd);
            rd->asking = 0;

            if (ngx_mcp_auth_redis_open(rd,
                                        &rd->primary_sockaddr.sockaddr,
                                        rd->primary_socklen,
                                        &rd->primary_name,
#if (NGX_SSL)
                                        rd->tls_name.len ? &rd->tls_name
                                                         : &rd->primary_host
#else
                                        NULL
#endif
                                        )
                != NGX_OK)
            {
                ngx_mcp_auth_redis_close(rd, 1);
            }

            return;
        }
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_mcp_auth_redis_close(rd, 1);
    }
}


/*
 * SENTINEL get-master-addr-by-name's answer: [ip, port].  An IP address
 * only: a name would have to be resolved, and resolving blocks.
 */
static ngx_int_t
ngx_mcp_auth_redis_primary(ngx_mcp_auth_redis_t *rd, redisReply *reply)
{
    u_char               *host;
    size_t                len;
    ngx_int_t             port;
    in_addr_t             in;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct in6_addr       in6;
    struct sockaddr_in6  *sin6;
#endif

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "mcp_auth: redis sentinel at %V knows no master "
                      "\"%V\"", rd->peer.name, &rd->master);
        return NGX_ERROR;
    }

    host = (u_char *) reply->element[0]->str;
    len = reply->element[0]->len;
    port = ngx_atoi((u_char *) reply->element[1]->str,
                    reply->element[1]->len);

    if (port < 1 || port > 65535 || len > NGX_INET6_ADDRSTRLEN) {
        goto invalid;
    }

    ngx_memzero(&rd->primary_sockaddr, sizeof(ngx_sockaddr_t));

    in = ngx_inet_addr(host, len);

    if (in != INADDR_NONE) {
        sin = &rd->primary_sockaddr.sockaddr_in;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = in;
        rd->primary_socklen = sizeof(struct sockaddr_in);

#if (NGX_HAVE_INET6)
    } else if (ngx_inet6_addr(host, len, in6.s6_addr) == NGX_OK) {
        sin6 = &rd->primary_sockaddr.sockaddr_in6;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6;
        rd->primary_socklen = sizeof(struct sockaddr_in6);
#endif

    } else {
        goto invalid;
    }

    ngx_inet_set_port(&rd->primary_sockaddr.sockaddr, (in_port_t) port);

    rd->primary_name.data = rd->primary_text;
    rd->primary_name.len = ngx_sock_ntop(&rd->primary_sockaddr.sockaddr,
                                         rd->primary_socklen,
                                         rd->primary_text,
                                         NGX_SOCKADDR_STRLEN, 1);

    /* NUL-terminated: the name its TLS certificate must carry */
    ngx_memcpy(rd->primary_host_text, host, len);
    rd->primary_host_text[len] = '\0';
    rd->primary_host.data = rd->primary_host_text;
    rd->primary_host.len = len;

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "mcp_auth: redis sentinel at %V named \"%*s\" for \"%V\", "
                  "not an IP address and port (resolve-hostnames no)",
                  rd->peer.name, len > 64 ? (size_t) 64 : len, host,
                  &rd->master);

    return NGX_ERROR;
}


/* --- the +switch-master subscription --------------------------------------- */

void
ngx_mcp_auth_redis_watch_start(ngx_mcp_auth_redis_t *rd)
{
    ngx_mcp_auth_redis_watch_t  *w;

    w = &rd->watch;
    w->started = 1;
    w->rd = rd;

    w->retry.handler = ngx_mcp_auth_redis_watch_connect;
    w->retry.data = w;
    w->retry.log = ngx_cycle->log;
    w->retry.cancelable = 1;        /* no reason to keep a worker alive */

    w->beat.handler = ngx_mcp_auth_redis_watch_beat;
    w->beat.data = w;
    w->beat.log = ngx_cycle->log;
    w->beat.cancelable = 1;

    ngx_mcp_auth_redis_watch_connect(&w->retry);
}


static void
ngx_mcp_auth_redis_watch_connect(ngx_event_t *ev)
{
    ngx_int_t                       rc;
    ngx_connection_t               *c;
    ngx_mcp_auth_redis_t           *rd;
    ngx_mcp_auth_redis_watch_t     *w;
    ngx_mcp_auth_redis_sentinel_t  *s;

    w = ev->data;
    rd = w->rd;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    s = &rd->sentinels[w->next];
    w->next = (w->next + 1) % rd->nsentinels;

    ngx_memzero(&w->peer, sizeof(ngx_peer_connection_t));
    w->peer.sockaddr = s->addr.sockaddr;
    w->peer.socklen = s->addr.socklen;
    w->peer.name = &s->addr.name;
    w->peer.get = ngx_event_get_peer;
    w->peer.log = ngx_cycle->log;
    w->peer.log_error = NGX_ERROR_ERR;

#if (NGX_SSL)
    w->tls_name = rd->tls_name.len ? &rd->tls_name : &s->host;
#endif

    rc = ngx_event_connect_peer(&w->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

    c = w->peer.connection;
    c->data = w;
    c->read->handler = ngx_mcp_auth_redis_watch_read;
    c->write->handler = ngx_mcp_auth_redis_watch_write;
    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;

    w->reader = redisReaderCreate();
    if (w->reader == NULL) {
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

#if (NGX_SSL)
    if (rd->ssl) {
        c->pool = ngx_create_pool(512, c->log);
        if (c->pool == NULL) {
            ngx_mcp_auth_redis_watch_fail(w);
            return;
        }
    }
#endif

    w->connecting = 1;
    w->sent = 0;
    w->unanswered = 0;

    if (rc != NGX_AGAIN) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_add_timer(c->write, rd->connect_timeout);
}


static void
ngx_mcp_auth_redis_watch_write(ngx_event_t *wev)
{
    int                          err;
    socklen_t                    len;
    ngx_connection_t            *c;
    ngx_mcp_auth_redis_watch_t  *w;

    c = wev->data;
    w = c->data;

    if (ngx_exiting) {
        /* connecting when a graceful shutdown began: not idle, not closed */
        ngx_mcp_auth_redis_watch_close(w);
        return;
    }

    if (!w->connecting) {
        ngx_mcp_auth_redis_watch_send(w);
        return;
    }

    err = 0;
    len = sizeof(int);

    if (wev->timedout
        || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1
        || err)
    {
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

    w->connecting = 0;

#if (NGX_SSL)
    if (w->rd->ssl) {
        if (ngx_mcp_auth_redis_tls_start(w->rd->ssl, c, w->tls_name,
                                         ngx_mcp_auth_redis_watch_tls_done)
            != NGX_OK)
        {
            ngx_mcp_auth_redis_watch_fail(w);
        }

        return;
    }
#endif

    ngx_mcp_auth_redis_watch_send(w);
}


#if (NGX_SSL)

static void
ngx_mcp_auth_redis_watch_tls_done(ngx_connection_t *c)
{
    ngx_mcp_auth_redis_watch_t  *w;

    w = c->data;

    if (ngx_exiting) {
        ngx_mcp_auth_redis_watch_close(w);
        return;
    }

    if (ngx_mcp_auth_redis_tls_check(c, w->tls_name, w->peer.name) != NGX_OK)
    {
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

    c->read->handler = ngx_mcp_auth_redis_watch_read;
    c->write->handler = ngx_mcp_auth_redis_watch_write;

    ngx_mcp_auth_redis_watch_send(w);
}

#endif


static void
ngx_mcp_auth_redis_watch_send(ngx_mcp_auth_redis_watch_t *w)
{
    ssize_t                n;
    ngx_str_t             *cmd;
    ngx_connection_t      *c;

    c = w->peer.connection;
    cmd = &w->rd->subscribe;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    while (w->sent < cmd->len) {
        n = c->send(c, cmd->data + w->sent, cmd->len - w->sent);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_mcp_auth_redis_watch_fail(w);
            return;
        }

        w->sent += n;
    }

    if (w->sent == cmd->len && !w->beat.timer_set) {
        ngx_add_timer(&w->beat, NGX_MCP_AUTH_REDIS_WATCH_BEAT);
    }

    /* a subscription is quiet: a graceful shutdown may close it */
    c->idle = 1;

    if (ngx_handle_write_event(c->write, 0) != NGX_OK
        || ngx_handle_read_event(c->read, 0) != NGX_OK)
    {
        ngx_mcp_auth_redis_watch_fail(w);
    }
}


static void
ngx_mcp_auth_redis_watch_read(ngx_event_t *rev)
{
    u_char                       buf[1024];
    size_t                       len;
    ssize_t                      n;
    redisReply                  *reply;
    ngx_connection_t            *c;
    ngx_mcp_auth_redis_watch_t  *w;

    c = rev->data;
    w = c->data;

    if (c->close) {
        ngx_mcp_auth_redis_watch_close(w);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR
            || redisReaderFeed(w->reader, (const char *) buf, (size_t) n)
               != REDIS_OK)
        {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "mcp_auth: redis sentinel at %V closed the "
                          "+switch-master subscription", w->peer.name);
            ngx_mcp_auth_redis_watch_fail(w);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(w->reader, (void **) &reply) != REDIS_OK)
            {
                ngx_mcp_auth_redis_watch_fail(w);
                return;
            }

            if (reply == NULL) {
                break;
            }

            w->unanswered = 0;

            if (reply->type == REDIS_REPLY_ERROR) {
                len = ngx_mcp_auth_redis_error_code(reply);

                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "mcp_auth: redis sentinel at %V refused the "
                              "+switch-master subscription: %*s",
                              w->peer.name, len, reply->str);
                freeReplyObject(reply);
                ngx_mcp_auth_redis_watch_fail(w);
                return;
            }

            ngx_mcp_auth_redis_watch_message(w, reply);
            freeReplyObject(reply);
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_mcp_auth_redis_watch_fail(w);
    }
}


/*
 * Every NGX_MCP_AUTH_REDIS_WATCH_BEAT: SUBSCRIBE again, unless the last one
 * is still unconfirmed, when the Sentinel is left: a +switch-master it
 * would not pass on must not keep this worker on a primary the others
 * replaced.
 */
static void
ngx_mcp_auth_redis_watch_beat(ngx_event_t *ev)
{
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_mcp_auth_redis_watch_t  *w;

    static u_char  again[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n";

    w = ev->data;
    c = w->peer.connection;

    if (c == NULL || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (w->unanswered) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "mcp_auth: redis sentinel at %V did not confirm the "
                      "+switch-master subscription within %M ms; moving it "
                      "to the next one", w->peer.name,
                      (ngx_msec_t) NGX_MCP_AUTH_REDIS_WATCH_BEAT);
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

    /* a few bytes that do not fit: the Sentinel has read nothing for long */
    n = c->send(c, again, sizeof(again) - 1);

    if (n != (ssize_t) (sizeof(again) - 1)) {
        ngx_mcp_auth_redis_watch_fail(w);
        return;
    }

    w->unanswered = 1;
    ngx_add_timer(&w->beat, NGX_MCP_AUTH_REDIS_WATCH_BEAT);
}


/*
 * ["message", "+switch-master", "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT"]:
 * for our master, the connection to the old primary goes, and the next
 * request asks the Sentinels at once.
 */
static void
ngx_mcp_auth_redis_watch_message(ngx_mcp_auth_redis_watch_t *w,
    redisReply *reply)
{
    u_char                *p, *last;
    redisReply            *text;
    ngx_mcp_auth_redis_t  *rd;

    rd = w->rd;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != 7
        || ngx_strncmp(reply->element[0]->str, "message", 7) != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;     /* AUTH's OK, SUBSCRIBE's confirmation */
    }

    text = reply->element[2];
    p = (u_char *) text->str;
    last = p + text->len;

    if ((size_t) (last - p) <= rd->master.len
        || ngx_strncmp(p, rd->master.data, rd->master.len) != 0
        || p[rd->master.len] != ' ')
    {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "mcp_auth: the redis sentinels switched master \"%V\": "
                  "%*s", &rd->master, (size_t) ngx_min(last - p, 256), p);

    if (rd->state != NGX_MCP_AUTH_REDIS_IDLE && !rd->asking) {
        ngx_mcp_auth_redis_close(rd, 1);
    }

    /* no hold-off: the Sentinels know the new primary already */
    rd->retry_at = ngx_current_msec;
}


static void
ngx_mcp_auth_redis_watch_fail(ngx_mcp_auth_redis_watch_t *w)
{
    ngx_mcp_auth_redis_watch_close(w);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&w->retry, NGX_MCP_AUTH_REDIS_RETRY);
    }
}


static void
ngx_mcp_auth_redis_watch_close(ngx_mcp_auth_redis_watch_t *w)
{
    if (w->beat.timer_set) {
        ngx_del_timer(&w->beat);
    }

    ngx_mcp_auth_redis_disconnect(&w->peer, &w->reader);
}
