/*
 * ngx_http_mcp_auth_guard.c -- the guard (mcp_auth_protect): the preaccess
 * phase's check of every MCP request, with the body read for it; what an
 * allowed request carries upstream (our identity, never the client's
 * token); and the stream check, which closes a stream once its session has
 * ended (in the zone, or looked up in Redis).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


static ngx_int_t ngx_http_mcp_auth_guard_read_body(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
static void ngx_http_mcp_auth_guard_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcp_auth_allow(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_guard_result_t *res);
static ngx_int_t ngx_http_mcp_auth_rewrite_headers(ngx_http_request_t *r,
    ngx_str_t *identity, ngx_str_t *provider_token);
static void ngx_http_mcp_auth_guard_headers(ngx_http_request_t *r,
    mcpa_guard_request_t *req);
static void ngx_http_mcp_auth_stream_check_handler(ngx_event_t *ev);
static void ngx_http_mcp_auth_stream_probe(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
static void ngx_http_mcp_auth_probe_done(void *data, int status,
    ngx_str_t *value);
static int ngx_http_mcp_auth_probe_alive(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
static int ngx_http_mcp_auth_probe_get(void *data, mcpa_str_t key, int take,
    mcpa_sink_pt sink, void *sink_ctx);
static void ngx_http_mcp_auth_stream_end(ngx_http_request_t *r);
static void ngx_http_mcp_auth_stream_cleanup(void *data);
static void ngx_http_mcp_auth_stream_ended(ngx_http_request_t *r);


/*
 * A preaccess handler (before limit_req, whose keys may use what the guard
 * found): NGX_DECLINED lets the phase go on, where NGX_OK would skip the
 * rest of it; NGX_DONE and NGX_AGAIN wait, and the phases run this handler
 * again when the body, the provider or the store has answered.
 */
ngx_int_t
ngx_http_mcp_auth_guard_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      body;
    ngx_time_t                    *tp;
    mcpa_str_t                     cont, answer;
    mcpa_guard_result_t            res;
    mcpa_guard_request_t           req;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (!alcf->protect || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    if (ctx && ctx->guard.done) {
        return NGX_DECLINED;
    }

    if (ctx
        && (ctx->guard.waiting_body || ctx->fetch.waiting
            || ctx->store.waiting))
    {
        return NGX_AGAIN;
    }

    if (ctx == NULL) {
        ctx = ngx_http_mcp_auth_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * With tool rules, what a POST runs is in its body (the Mcp-Method and
     * Mcp-Name headers only mirror it, and must agree): read it before the
     * first check rather than check twice.  nginx reads a body in any case,
     * to proxy it or to discard it.
     */
    ngx_memzero(&req, sizeof(mcpa_guard_request_t));

    ngx_http_mcp_auth_guard_headers(r, &req);

    if (!ctx->guard.body_read && r->method == NGX_HTTP_POST
        && mcpa_guard_reads_body(alcf->core)
        && r->headers_in.content_length_n <= (off_t) alcf->peek_size)
    {
        return ngx_http_mcp_auth_guard_read_body(r, ctx);
    }

    req.method.data = (const char *) r->method_name.data;
    req.method.len = r->method_name.len;
    req.args.data = (const char *) r->args.data;
    req.args.len = r->args.len;

    /* one clock for every run of this check (a deferred store reruns it) */
    if (ctx->store.now == 0) {
        tp = ngx_timeofday();
        ctx->store.now = (int64_t) tp->sec;
        ctx->store.now_ms = (int64_t) tp->sec * 1000 + (int64_t) tp->msec;
    }

    req.now = ctx->store.now;
    req.now_ms = ctx->store.now_ms;

    ngx_http_mcp_auth_header_str(r->headers_in.authorization,
                                 &req.authorization);

    if (ctx->guard.body_read) {
        if (ngx_http_mcp_auth_flatten_body(r, &body) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        req.body.data = (const char *) body.data;
        req.body.len = body.len;
        req.body_read = 1;
    }

again:

    /* a field a core does not fill reads as empty */
    ngx_memzero(&res, sizeof(mcpa_guard_result_t));

    ngx_http_mcp_auth_replay(ctx, &req.replay);

    if (ctx->fetch.fetched) {
        /* the provider answered the renewal the guard asked for */
        cont.data = (const char *) ctx->fetch.continuation.data;
        cont.len = ctx->fetch.continuation.len;
        answer.data = (const char *) ctx->fetch.answer.data;
        answer.len = ctx->fetch.answer.len;

        rc = mcpa_guard_resume(alcf->core, &alcf->store, &req, cont,
                               (int) ctx->fetch.answer_status, answer, &res);

    } else {
        rc = mcpa_guard(alcf->core, &alcf->store, &req, &res);
    }

    if (rc != MCPA_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcp_auth: internal error in the core");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (res.verdict != MCPA_GUARD_STORE) {
        /* this check is complete: what comes next starts afresh */
        ctx->fetch.fetched = 0;
        ctx->store.replay.len = 0;
    }

    switch (res.verdict) {

    case MCPA_GUARD_STORE:
        rc = ngx_http_mcp_auth_store(r, ctx, &res.response, 1);
        mcpa_guard_result_free(&res);

        if (rc == NGX_DECLINED) {
            goto again;
        }

        return rc;

    case MCPA_GUARD_FETCH:
        rc = ngx_http_mcp_auth_fetch(r, ctx, &res.response, 1);
        mcpa_guard_result_free(&res);
        return rc;

    case MCPA_GUARD_NEED_BODY:
        mcpa_guard_result_free(&res);

        if (ctx->guard.body_read
            || r->headers_in.content_length_n > (off_t) alcf->peek_size)
        {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        return ngx_http_mcp_auth_guard_read_body(r, ctx);

    case MCPA_GUARD_ALLOW:
        ngx_http_mcp_auth_event(r, &res.event);
        rc = ngx_http_mcp_auth_allow(r, ctx, &res);
        mcpa_guard_result_free(&res);

        /* on to the rest of the preaccess phase (limit_req) */
        return rc == NGX_OK ? NGX_DECLINED : rc;

    default: /* MCPA_GUARD_DENY */

        ngx_http_mcp_auth_event(r, &res.event);

        /* an unread body must not be taken for the next request */
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            mcpa_guard_result_free(&res);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_mcp_auth_send(r, &res.response);
        mcpa_guard_result_free(&res);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }
}


static ngx_int_t
ngx_http_mcp_auth_guard_read_body(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    ngx_int_t  rc;

    /* read it here; the proxy module then sends the same body on */
    rc = ngx_http_read_client_request_body(r,
                                          ngx_http_mcp_auth_guard_body_handler);
    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    if (rc == NGX_AGAIN) {
        ctx->guard.waiting_body = 1;
        return NGX_DONE;
    }

    /* the whole body was there already: decide now */
    return ngx_http_mcp_auth_guard_handler(r);
}


static void
ngx_http_mcp_auth_guard_body_handler(ngx_http_request_t *r)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    ctx->guard.body_read = 1;

    /* balances the reference ngx_http_read_client_request_body() took */
    r->main->count--;

    /*
     * Reading the body left the empty write handler in place; the phases
     * must run again when a subrequest (a provider call) wakes us.
     */
    r->write_event_handler = ngx_http_core_run_phases;

    if (ctx->guard.waiting_body) {
        ctx->guard.waiting_body = 0;
        ngx_http_core_run_phases(r);
    }
}


static ngx_int_t
ngx_http_mcp_auth_allow(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_guard_result_t *res)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    if (ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.identity,
                                   &res->identity) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.subject,
                                      &res->subject) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.client_id,
                                      &res->client_id) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.scope, &res->scope)
           != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.session_tag,
                                      &res->session_tag) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.session_key,
                                      &res->session_key) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->guard.provider_token,
                                      &res->provider_token) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mcp_auth_rewrite_headers(r, &ctx->guard.identity,
                                          &ctx->guard.provider_token)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->guard.done = 1;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* the answer is filtered with the scope and claims of this decision */
    if (res->lists_tools && alcf->filter_tools) {
        if (ngx_http_mcp_auth_copy_str(r->pool, &ctx->filter.claims,
                                       &res->claims)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->filter.lists_tools = 1;
    }

    /*
     * A stream outlives the token that opened it: look at its session now
     * and then, and close the stream once the session has ended.
     */
    if (alcf->stream_check && ctx->guard.session_key.len) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->guard.stream_check.handler =
                                        ngx_http_mcp_auth_stream_check_handler;
        ctx->guard.stream_check.data = r;
        ctx->guard.stream_check.log = r->connection->log;
        ctx->guard.stream_check.cancelable = 1;

        cln->handler = ngx_http_mcp_auth_stream_cleanup;
        cln->data = &ctx->guard.stream_check;

        ngx_add_timer(&ctx->guard.stream_check, alcf->stream_check);
        ngx_http_mcp_auth_count_stream(1);
    }

    return NGX_OK;
}


/*
 * What goes upstream: never the client's token (no passthrough), never a
 * client-sent identity (no spoofing); our own signed identity instead.
 */
static ngx_int_t
ngx_http_mcp_auth_rewrite_headers(ngx_http_request_t *r, ngx_str_t *identity,
    ngx_str_t *provider_token)
{
    ngx_uint_t        i;
    ngx_list_t        headers;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *nh;

    if (ngx_list_init(&headers, r->pool, 20, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = NULL;

    while ((h = ngx_http_mcp_auth_next_header(&r->headers_in.headers,
                                              &part, &i)))
    {
        if ((h->key.len == sizeof("Authorization") - 1
             && ngx_strncasecmp(h->key.data, (u_char *) "Authorization",
                                h->key.len) == 0)
            || (h->key.len == sizeof("X-MCP-Identity") - 1
                && ngx_strncasecmp(h->key.data, (u_char *) "X-MCP-Identity",
                                   h->key.len) == 0)
            || (h->key.len == sizeof("X-MCP-Provider-Token") - 1
                && ngx_strncasecmp(h->key.data,
                                   (u_char *) "X-MCP-Provider-Token",
                                   h->key.len) == 0))
        {
            continue;
        }

        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = *h;
    }

    if (identity->len) {
        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        nh->hash = 1;
        ngx_str_set(&nh->key, "X-MCP-Identity");
        nh->lowcase_key = (u_char *) "x-mcp-identity";
        nh->value = *identity;
#if (nginx_version >= 1023000)
        nh->next = NULL;
#endif
    }

    if (provider_token->len) {
        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        nh->hash = 1;
        ngx_str_set(&nh->key, "X-MCP-Provider-Token");
        nh->lowcase_key = (u_char *) "x-mcp-provider-token";
        nh->value = *provider_token;
#if (nginx_version >= 1023000)
        nh->next = NULL;
#endif
    }

    r->headers_in.headers = headers;
    r->headers_in.authorization = NULL;

    return NGX_OK;
}


/*
 * Origin, Mcp-Method and Mcp-Name in one pass over the request headers (the
 * first of each); which mirror headers were sent, and whether one came
 * twice, go to the core (a repeated one is a mismatch there).
 */
static void
ngx_http_mcp_auth_guard_headers(ngx_http_request_t *r,
    mcpa_guard_request_t *req)
{
    int               flag;
    ngx_uint_t        i;
    mcpa_str_t       *to;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = NULL;

    while ((h = ngx_http_mcp_auth_next_header(&r->headers_in.headers,
                                              &part, &i)))
    {
        flag = 0;

        switch (h->key.len) {
        case sizeof("Origin") - 1:
            to = ngx_strncasecmp(h->key.data, (u_char *) "Origin",
                                 sizeof("Origin") - 1) == 0
                 ? &req->origin : NULL;
            break;
        case sizeof("Mcp-Method") - 1:
            to = ngx_strncasecmp(h->key.data, (u_char *) "Mcp-Method",
                                 sizeof("Mcp-Method") - 1) == 0
                 ? &req->mcp_method : NULL;
            flag = MCPA_MIRROR_METHOD;
            break;
        case sizeof("Mcp-Name") - 1:
            to = ngx_strncasecmp(h->key.data, (u_char *) "Mcp-Name",
                                 sizeof("Mcp-Name") - 1) == 0
                 ? &req->mcp_name : NULL;
            flag = MCPA_MIRROR_NAME;
            break;
        default:
            to = NULL;
        }

        if (to == NULL) {
            continue;
        }

        if (flag) {
            if (req->mirror_headers & flag) {
                req->mirror_headers |= MCPA_MIRROR_REPEATED;
            }

            req->mirror_headers |= flag;
        }

        if (to->data == NULL) {
            ngx_http_mcp_auth_header_str(h, to);
        }
    }
}


static void
ngx_http_mcp_auth_stream_check_handler(ngx_event_t *ev)
{
    mcpa_str_t                     key;
    ngx_http_request_t            *r;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    r = ev->data;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->redis) {
        ngx_http_mcp_auth_stream_probe(r, ctx);
        return;
    }

    key.data = (const char *) ctx->guard.session_key.data;
    key.len = ctx->guard.session_key.len;

    if (mcpa_session_alive(alcf->core, &alcf->store, key, (int64_t) ngx_time())
        != 0)
    {
        ngx_add_timer(ev, alcf->stream_check);
        return;
    }

    ngx_http_mcp_auth_stream_end(r);
}


/*
 * With Redis, a stream's session is looked up there (never in the cache):
 * mcpa_session_alive() names the key it reads through a store whose get
 * answers what Redis said of it.
 */
static void
ngx_http_mcp_auth_stream_probe(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    mcpa_store_op_t                op;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* names the key; counts as live until Redis has answered */
    ctx->probe.answered = 0;
    (void) ngx_http_mcp_auth_probe_alive(r, ctx);

    if (ctx->probe.key.len == 0
        || ngx_http_mcp_auth_store_cleanup_add(r, ctx) != NGX_OK)
    {
        ngx_add_timer(&ctx->guard.stream_check, alcf->stream_check);
        return;
    }

    ngx_memzero(&op, sizeof(mcpa_store_op_t));
    op.op = MCPA_OP_GET;
    op.key.data = (const char *) ctx->probe.key.data;
    op.key.len = ctx->probe.key.len;

    ctx->store.cmd = ngx_mcp_auth_redis_run(alcf->redis, &op, NULL,
                                            ngx_http_mcp_auth_probe_done, r,
                                            r->connection->log);

    if (ctx->store.cmd == NULL) {
        /* Redis being away is no proof that the session ended */
        ngx_add_timer(&ctx->guard.stream_check, alcf->stream_check);
    }
}


static void
ngx_http_mcp_auth_probe_done(void *data, int status, ngx_str_t *value)
{
    ngx_http_request_t  *r = data;

    int                            alive;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    ctx->store.cmd = NULL;

    ctx->probe.answered = 1;
    ctx->probe.status = status;
    ctx->probe.value = value;

    alive = ngx_http_mcp_auth_probe_alive(r, ctx);

    ctx->probe.answered = 0;
    ctx->probe.value = NULL;

    if (alive) {
        ngx_add_timer(&ctx->guard.stream_check, alcf->stream_check);
        return;
    }

    ngx_http_mcp_auth_stream_end(r);
}


/* mcpa_session_alive() through a store that answers what Redis said. */
static int
ngx_http_mcp_auth_probe_alive(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    mcpa_str_t                     key;
    mcpa_store_t                   probe;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    ngx_memzero(&probe, sizeof(mcpa_store_t));
    probe.data = ctx;
    probe.get = ngx_http_mcp_auth_probe_get;
    probe.deferred = 1;            /* values as Redis holds them (sealed) */

    key.data = (const char *) ctx->guard.session_key.data;
    key.len = ctx->guard.session_key.len;

    return mcpa_session_alive(alcf->core, &probe, key, (int64_t) ngx_time());
}


static int
ngx_http_mcp_auth_probe_get(void *data, mcpa_str_t key, int take,
    mcpa_sink_pt sink, void *sink_ctx)
{
    ngx_http_mcp_auth_ctx_t  *ctx = data;

    ngx_http_request_t  *r;

    (void) take;

    if (!ctx->probe.answered) {
        /* the key is the same for the stream's whole life: kept once */
        if (ctx->probe.key.len == 0 && key.len) {
            r = ctx->guard.stream_check.data;
            ctx->probe.key.data = ngx_pnalloc(r->pool, key.len);
            if (ctx->probe.key.data) {
                ngx_memcpy(ctx->probe.key.data, key.data, key.len);
                ctx->probe.key.len = key.len;
            }
        }

        return MCPA_UNAVAILABLE;
    }

    if (ctx->probe.status == MCPA_OK && ctx->probe.value) {
        sink(sink_ctx, (const char *) ctx->probe.value->data,
             ctx->probe.value->len);
    }

    return ctx->probe.status;
}


/* A stream's end for the audit log and the counters. */
static void
ngx_http_mcp_auth_stream_ended(ngx_http_request_t *r)
{
    mcpa_event_t              ev;
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    ngx_memzero(&ev, sizeof(mcpa_event_t));
    ev.kind = MCPA_EV_SESSION_ENDED;
    ev.name.data = "session.ended";
    ev.name.len = sizeof("session.ended") - 1;
    ev.outcome.data = "stream_closed";
    ev.outcome.len = sizeof("stream_closed") - 1;
    ev.reason.data = "session_ended";
    ev.reason.len = sizeof("session_ended") - 1;
    ev.subject.data = (const char *) ctx->guard.subject.data;
    ev.subject.len = ctx->guard.subject.len;
    ev.client_id.data = (const char *) ctx->guard.client_id.data;
    ev.client_id.len = ctx->guard.client_id.len;
    ev.session_tag.data = (const char *) ctx->guard.session_tag.data;
    ev.session_tag.len = ctx->guard.session_tag.len;
    ev.metric[0] = -1;
    ev.audit = 1;

    ngx_http_mcp_auth_observe(MCPA_M_STREAM_CLOSED, 0, 0);
    ngx_http_mcp_auth_audit(r, &ev);
}


/* The session has ended: so does its stream. */
static void
ngx_http_mcp_auth_stream_end(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "mcp_auth: session ended, closing its stream");

    ngx_http_mcp_auth_stream_ended(r);

    /*
     * Terminating runs the upstream's cleanup, which finalizes the request
     * once more; the extra reference keeps that from freeing it (or keeping
     * the connection alive) under ngx_http_terminate_request(), whose posted
     * handler then closes the connection.
     */
    r->main->count++;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_mcp_auth_stream_cleanup(void *data)
{
    ngx_event_t  *ev = data;

    ngx_http_mcp_auth_count_stream(-1);

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}
