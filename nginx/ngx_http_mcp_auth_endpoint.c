/*
 * ngx_http_mcp_auth_endpoint.c -- the endpoints (mcp_auth_endpoint): the
 * content handler, the request handed to the core, the loop that runs it
 * until there is an answer to send or a call to make, and, with a deferred
 * store (Redis), the store operations a run asks for.  Also the helpers the
 * guard shares: the response sent, the body flattened, strings copied.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


static void ngx_http_mcp_auth_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcp_auth_serve(ngx_http_request_t *r);
static void ngx_http_mcp_auth_store_done(void *data, int status,
    ngx_str_t *value);
static void ngx_http_mcp_auth_store_cleanup(void *data);
static ngx_int_t ngx_http_mcp_auth_respond(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp);
static ngx_int_t ngx_http_mcp_auth_wait(ngx_http_request_t *r,
    ngx_msec_t ms);
static void ngx_http_mcp_auth_wait_done(ngx_http_request_t *r);


ngx_int_t
ngx_http_mcp_auth_endpoint_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->endpoint == NGX_HTTP_MCP_AUTH_EP_METRICS) {
        return ngx_http_mcp_auth_metrics_handler(r);
    }

    if (alcf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS) {
        return ngx_http_mcp_auth_status_handler(r);
    }

    if (r->method & (NGX_HTTP_POST)) {
        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_mcp_auth_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_mcp_auth_serve(r);
}


static void
ngx_http_mcp_auth_body_handler(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_mcp_auth_serve(r));
}


static ngx_int_t
ngx_http_mcp_auth_serve(ngx_http_request_t *r)
{
    ngx_str_t                      body;
    mcpa_request_t                 req;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (r->headers_in.content_length_n > (off_t) alcf->max_body) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    if (ngx_http_mcp_auth_flatten_body(r, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body.len > alcf->max_body) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ngx_memzero(&req, sizeof(mcpa_request_t));

    req.endpoint = (mcpa_endpoint_e) alcf->endpoint;
    req.method.data = (const char *) r->method_name.data;
    req.method.len = r->method_name.len;
    req.uri.data = (const char *) r->uri.data;
    req.uri.len = r->uri.len;
    req.args.data = (const char *) r->args.data;
    req.args.len = r->args.len;
    req.body.data = (const char *) body.data;
    req.body.len = body.len;
    req.now = (int64_t) ngx_time();

    ngx_http_mcp_auth_header_str(r->headers_in.content_type, &req.content_type);
    ngx_http_mcp_auth_header_str(r->headers_in.authorization,
                                 &req.authorization);

    /* nginx 1.23+ links repeated Cookie headers; 1.22 keeps an array */
#if (nginx_version >= 1023000)
    ngx_http_mcp_auth_header_str(r->headers_in.cookie, &req.cookie);
#else
    if (r->headers_in.cookies.nelts) {
        ngx_table_elt_t **c = r->headers_in.cookies.elts;
        ngx_http_mcp_auth_header_str(c[0], &req.cookie);
    }
#endif

    {
        ngx_uint_t        i;
        ngx_list_part_t  *part;
        ngx_table_elt_t  *h;

        part = NULL;

        while ((h = ngx_http_mcp_auth_next_header(&r->headers_in.headers,
                                                  &part, &i)))
        {
            if (h->key.len == sizeof("Sec-Fetch-Site") - 1
                && ngx_strncasecmp(h->key.data, (u_char *) "Sec-Fetch-Site",
                                   h->key.len) == 0)
            {
                ngx_http_mcp_auth_header_str(h, &req.sec_fetch_site);

            } else if (req.origin.data == NULL
                       && h->key.len == sizeof("Origin") - 1
                       && ngx_strncasecmp(h->key.data, (u_char *) "Origin",
                                          h->key.len) == 0)
            {
                ngx_http_mcp_auth_header_str(h, &req.origin);
            }
        }
    }

    /* $mcp_auth_traceparent may have made it already */
    ctx = ngx_http_mcp_auth_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    {
        ngx_str_t  *rid = ngx_http_mcp_auth_request_id(r);

        if (rid) {
            req.request_id.data = (const char *) rid->data;
            req.request_id.len = rid->len;
        }
    }

    ctx->fetch.req = req;

    return ngx_http_mcp_auth_run(r, ctx);
}


/*
 * Runs the core for an endpoint request: mcpa_handle(), or mcpa_resume()
 * once a fetch has answered; with a deferred store, again after each store
 * operation, until there is something to send or to fetch.
 */
ngx_int_t
ngx_http_mcp_auth_run(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx)
{
    int                            rc;
    ngx_int_t                      n;
    mcpa_str_t                     cont, answer;
    mcpa_response_t                resp;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    for ( ;; ) {
        ngx_http_mcp_auth_replay(ctx, &ctx->fetch.req.replay);

        if (ctx->store.resuming) {
            cont.data = (const char *) ctx->fetch.continuation.data;
            cont.len = ctx->fetch.continuation.len;
            answer.data = (const char *) ctx->fetch.answer.data;
            answer.len = ctx->fetch.answer.len;

            rc = mcpa_resume(alcf->core, &alcf->store, &ctx->fetch.req, cont,
                             (int) ctx->fetch.answer_status, answer, &resp);

        } else {
            rc = mcpa_handle(alcf->core, &alcf->store, &ctx->fetch.req, &resp);
        }

        if (rc != MCPA_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mcp_auth: internal error in the core");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (resp.store_op.op == MCPA_OP_NONE) {
            /* done with this run's replay: a later resume starts afresh */
            ctx->store.replay.len = 0;
            return ngx_http_mcp_auth_respond(r, ctx, &resp);
        }

        n = ngx_http_mcp_auth_store(r, ctx, &resp, 0);
        mcpa_response_free(&resp);

        if (n != NGX_DECLINED) {
            return n;
        }

        /* Redis cannot be asked now: the core answers so at once */
    }
}


/*
 * Sends the operation a deferred store's response asks for.  NGX_DONE: the
 * request waits for Redis (ngx_http_mcp_auth_store_done); NGX_DECLINED:
 * Redis cannot be asked now, and that answer (MCPA_UNAVAILABLE) is in ctx.
 */
/* The request's context, made on first use. */
ngx_http_mcp_auth_ctx_t *
ngx_http_mcp_auth_ctx(ngx_http_request_t *r)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mcp_auth_ctx_t));
    if (ctx) {
        ngx_http_set_ctx(r, ctx, ngx_http_mcp_auth_module);
    }

    return ctx;
}


ngx_int_t
ngx_http_mcp_auth_store(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_response_t *resp, ngx_uint_t guard)
{
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* a request makes a bounded number of operations; never loop */
    if (++ctx->store.ops > MCPA_MAX_STORE_OPS || alcf->redis == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcp_auth: too many store operations for one request");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mcp_auth_copy_str(r->pool, &ctx->store.replay, &resp->replay)
        != NGX_OK
        || ngx_http_mcp_auth_store_cleanup_add(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->store.guard = guard ? 1 : 0;
    ctx->store.cmd = ngx_mcp_auth_redis_run(alcf->redis, &resp->store_op,
                                            &ctx->store.epoch,
                                            ngx_http_mcp_auth_store_done, r,
                                            r->connection->log);

    if (ctx->store.cmd == NULL) {
        ngx_http_mcp_auth_observe(MCPA_M_STORE_ERROR, MCPA_UNAVAILABLE, 0);
        ctx->store.replay_status = MCPA_UNAVAILABLE;
        ctx->store.replay_value.len = 0;
        return NGX_DECLINED;
    }

    ctx->store.waiting = 1;
    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_mcp_auth_store_done(void *data, int status, ngx_str_t *value)
{
    ngx_http_request_t  *r = data;

    ngx_connection_t         *c;
    ngx_http_mcp_auth_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    ctx->store.cmd = NULL;
    ctx->store.waiting = 0;
    ctx->store.replay_status = status;
    ctx->store.replay_value.len = 0;

    if (status == MCPA_UNAVAILABLE) {
        ngx_http_mcp_auth_observe(MCPA_M_STORE_ERROR, MCPA_UNAVAILABLE, 0);
    }

    if (value && value->len) {
        ctx->store.replay_value.data = ngx_pnalloc(r->pool, value->len);

        if (ctx->store.replay_value.data == NULL) {
            ctx->store.replay_status = MCPA_UNAVAILABLE;

        } else {
            ngx_memcpy(ctx->store.replay_value.data, value->data, value->len);
            ctx->store.replay_value.len = value->len;
        }
    }

    if (ctx->store.guard) {
        /* balances ngx_http_mcp_auth_store(); the guard runs again */
        r->main->count--;
        ngx_http_core_run_phases(r);

    } else {
        ngx_http_finalize_request(r, ngx_http_mcp_auth_run(r, ctx));
    }

    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_mcp_auth_store_cleanup_add(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    if (ctx->store.cleanup) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_mcp_auth_store_cleanup;
    cln->data = ctx;
    ctx->store.cleanup = 1;

    return NGX_OK;
}


/* The request is gone: Redis's answer, when it comes, goes nowhere. */
static void
ngx_http_mcp_auth_store_cleanup(void *data)
{
    ngx_http_mcp_auth_ctx_t  *ctx = data;

    if (ctx->store.cmd) {
        ngx_mcp_auth_redis_cancel(ctx->store.cmd);
        ctx->store.cmd = NULL;
    }
}


/* What the next core call is told of the previous store operation. */
void
ngx_http_mcp_auth_replay(ngx_http_mcp_auth_ctx_t *ctx, mcpa_replay_t *replay)
{
    replay->log.data = (const char *) ctx->store.replay.data;
    replay->log.len = ctx->store.replay.len;
    replay->status = ctx->store.replay_status;
    replay->value.data = (const char *) ctx->store.replay_value.data;
    replay->value.len = ctx->store.replay_value.len;
}


/*
 * Either sends the core's response, or starts the call to the provider it
 * asks for; in the latter case returns NGX_DONE and the request continues in
 * ngx_http_mcp_auth_resume_handler().
 */
static ngx_int_t
ngx_http_mcp_auth_respond(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_response_t *resp)
{
    size_t     i;
    ngx_int_t  rc;

    if (resp->fetch != MCPA_FETCH_NONE) {
        rc = ngx_http_mcp_auth_fetch(r, ctx, resp, 0);
        mcpa_response_free(resp);
        return rc;
    }

    if (resp->wait_ms > 0) {
        rc = ngx_http_mcp_auth_wait(r, (ngx_msec_t) resp->wait_ms);
        mcpa_response_free(resp);
        return rc;
    }

    for (i = 0; i < resp->nevents; i++) {
        ngx_http_mcp_auth_event(r, &resp->events[i]);
    }

    rc = ngx_http_mcp_auth_send(r, resp);

    mcpa_response_free(resp);

    return rc;
}


/*
 * Another request holds what this one needs (the core's wait_ms): it sleeps
 * on a timer, as limit_req delays a request, and then runs from the start.
 */
static ngx_int_t
ngx_http_mcp_auth_wait(ngx_http_request_t *r, ngx_msec_t ms)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_mcp_auth_wait_done;

    wev->delayed = 1;
    ngx_add_timer(wev, ms);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_mcp_auth_wait_done(ngx_http_request_t *r)
{
    ngx_event_t              *wev;
    ngx_http_mcp_auth_ctx_t  *ctx;

    wev = r->connection->write;

    if (wev->delayed) {
        /* woken before the timer: wait on */
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    /* a new run: from the start, at the new time, with a fresh budget */
    ctx->fetch.req.waits++;
    ctx->fetch.req.now = (int64_t) ngx_time();
    ctx->store.resuming = 0;
    ctx->store.replay.len = 0;
    ctx->store.ops = 0;

    ngx_http_finalize_request(r, ngx_http_mcp_auth_run(r, ctx));
}


ngx_int_t
ngx_http_mcp_auth_copy_str(ngx_pool_t *pool, ngx_str_t *dst, mcpa_str_t *src)
{
    dst->len = src->len;

    if (src->len == 0) {
        dst->data = NULL;
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(pool, src->len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);

    return NGX_OK;
}


/* Copies the core's response into the request pool and sends it. */
ngx_int_t
ngx_http_mcp_auth_send(ngx_http_request_t *r, mcpa_response_t *resp)
{
    size_t            i;
    ngx_buf_t        *b;
    ngx_int_t         rc;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;
    mcpa_header_t    *rh;

    r->headers_out.status = resp->status;
    r->headers_out.content_length_n = resp->body.len;

    for (i = 0; i < resp->nheaders; i++) {
        rh = &resp->headers[i];

        if (rh->name.len == sizeof("Content-Type") - 1
            && ngx_strncasecmp((u_char *) rh->name.data,
                               (u_char *) "Content-Type", rh->name.len) == 0)
        {
            r->headers_out.content_type.data = ngx_pnalloc(r->pool,
                                                           rh->value.len);
            if (r->headers_out.content_type.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(r->headers_out.content_type.data, rh->value.data,
                       rh->value.len);
            r->headers_out.content_type.len = rh->value.len;
            r->headers_out.content_type_len = rh->value.len;
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key.data = ngx_pnalloc(r->pool, rh->name.len + rh->value.len);
        if (h->key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(h->key.data, rh->name.data, rh->name.len);
        h->key.len = rh->name.len;
        h->value.data = h->key.data + rh->name.len;
        ngx_memcpy(h->value.data, rh->value.data, rh->value.len);
        h->value.len = rh->value.len;

        if (h->key.len == sizeof("Location") - 1
            && ngx_strncasecmp(h->key.data, (u_char *) "Location",
                               h->key.len) == 0)
        {
            /* keep nginx from rewriting our absolute Location */
            r->headers_out.location = h;
        }
    }

    if (resp->body.len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, resp->body.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, resp->body.data, resp->body.len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* The request body as one contiguous string (small: bounded by max_body). */
ngx_int_t
ngx_http_mcp_auth_flatten_body(ngx_http_request_t *r, ngx_str_t *body)
{
    size_t        len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->data = NULL;
    body->len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }
            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    return NGX_OK;
}


void
ngx_http_mcp_auth_header_str(ngx_table_elt_t *h, mcpa_str_t *s)
{
    if (h == NULL) {
        return;
    }

    s->data = (const char *) h->value.data;
    s->len = h->value.len;
}
