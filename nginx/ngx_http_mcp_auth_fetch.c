/*
 * ngx_http_mcp_auth_fetch.c -- the calls out: a subrequest to the provider
 * (its token or JWKS location) or for a client's metadata document, built
 * without any of the client's headers; the document's host resolved here
 * and only approved addresses contacted, by address; and the answer kept
 * for the core, which the request resumes with (endpoint) or the guard
 * picks up (its phase handler).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


/* where a subrequest to the provider is started from */
#define NGX_HTTP_MCP_AUTH_FROM_CONTENT  0
#define NGX_HTTP_MCP_AUTH_FROM_GUARD   1
#define NGX_HTTP_MCP_AUTH_FROM_EVENT    2   /* a resolver handler */


static ngx_str_t  ngx_http_mcp_auth_post_method = ngx_string("POST ");


static ngx_int_t ngx_http_mcp_auth_fetch_document(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp);
static void ngx_http_mcp_auth_resolved(ngx_resolver_ctx_t *rctx);
static ngx_int_t ngx_http_mcp_auth_document_url(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, ngx_str_t *addr);
static ngx_int_t ngx_http_mcp_auth_fetch_failed(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx);
static ngx_int_t ngx_http_mcp_auth_subrequest(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, ngx_str_t *uri, mcpa_fetch_e target,
    ngx_uint_t mode);
static void ngx_http_mcp_auth_fetch_observe(ngx_http_mcp_auth_ctx_t *ctx);
static ngx_int_t ngx_http_mcp_auth_fetch_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static void ngx_http_mcp_auth_resume_handler(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_http_mcp_auth_find_out_header(
    ngx_http_request_t *r, const char *name);


/*
 * Calls the provider (or fetches a client's metadata document) through a
 * subrequest.  From a content handler the request then continues in
 * ngx_http_mcp_auth_resume_handler(); from the guard (guard != 0)
 * nginx runs the phases again once the subrequest is done, as
 * auth_request does, and the guard picks up the answer.
 */
ngx_int_t
ngx_http_mcp_auth_fetch(ngx_http_request_t *r, ngx_http_mcp_auth_ctx_t *ctx,
    mcpa_response_t *resp, ngx_uint_t guard)
{
    ngx_str_t                     *uri;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* a login needs at most a few calls; never loop */
    if (++ctx->fetch.count > 4) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcp_auth: too many provider calls for one request");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_mcp_auth_copy_str(r->pool, &ctx->fetch.continuation,
                                   &resp->continuation) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->fetch.body,
                                      &resp->fetch_body) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->fetch.authorization,
                                      &resp->fetch_authorization) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->fetch.target = resp->fetch;
    ctx->fetch.started = ngx_current_msec;
    ctx->fetch.observed = 0;

    if (resp->fetch == MCPA_FETCH_CLIENT_METADATA && !guard) {
        return ngx_http_mcp_auth_fetch_document(r, ctx, resp);
    }

    if (resp->fetch == MCPA_FETCH_ISSUER_JWKS) {
        /* a trusted issuer's or a client's internal location, named by the
         * configuration */
        uri = ngx_palloc(r->pool, sizeof(ngx_str_t));
        if (uri == NULL
            || resp->fetch_path.len == 0 || resp->fetch_path.data[0] != '/'
            || ngx_http_mcp_auth_copy_str(r->pool, uri, &resp->fetch_path)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        uri = (resp->fetch == MCPA_FETCH_PROVIDER_JWKS)
              ? &alcf->provider_jwks_location : &alcf->provider_token_location;

        if (uri->len == 0 || resp->fetch == MCPA_FETCH_CLIENT_METADATA) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "mcp_auth: no mcp_auth_provider_%s_location "
                          "configured",
                          resp->fetch == MCPA_FETCH_PROVIDER_JWKS
                          ? "jwks" : "token");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_mcp_auth_subrequest(r, ctx, uri, resp->fetch,
                                        guard ? NGX_HTTP_MCP_AUTH_FROM_GUARD
                                               : NGX_HTTP_MCP_AUTH_FROM_CONTENT);
}


/*
 * A client's metadata document: the host is resolved here, with nginx's
 * resolver, and only approved addresses are contacted (SSRF), by address,
 * with the host name for Host and SNI -- so a second resolution cannot
 * point the request elsewhere.
 */
static ngx_int_t
ngx_http_mcp_auth_fetch_document(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, mcpa_response_t *resp)
{
    u_char                         inaddr6[16];
    mcpa_str_t                     ip;
    ngx_resolver_ctx_t            *rctx;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->client_metadata_location.len == 0
        || resp->fetch_host.len == 0 || resp->fetch_host.len > 253
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->doc.host,
                                      &resp->fetch_host) != NGX_OK
        || ngx_http_mcp_auth_copy_str(r->pool, &ctx->doc.path,
                                      &resp->fetch_path) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->doc.port = resp->fetch_port;

    /* an address literal needs no resolver */
    if (ngx_inet_addr(ctx->doc.host.data, ctx->doc.host.len) != INADDR_NONE
#if (NGX_HAVE_INET6)
        || ngx_inet6_addr(ctx->doc.host.data, ctx->doc.host.len, inaddr6)
           == NGX_OK
#endif
       )
    {
        ip.data = (const char *) ctx->doc.host.data;
        ip.len = ctx->doc.host.len;

        if (!mcpa_fetch_address_allowed(alcf->core, ip)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "mcp_auth: client metadata document at \"%V\" "
                          "refused: not a public address", &ctx->doc.host);
            return ngx_http_mcp_auth_fetch_failed(r, ctx);
        }

        if (ngx_http_mcp_auth_document_url(r, ctx, &ctx->doc.host) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_mcp_auth_subrequest(r, ctx,
                                            &alcf->client_metadata_location,
                                            MCPA_FETCH_CLIENT_METADATA,
                                            NGX_HTTP_MCP_AUTH_FROM_CONTENT);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rctx = ngx_resolve_start(clcf->resolver, NULL);
    if (rctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "mcp_auth: no resolver to fetch the client metadata "
                      "document at \"%V\" (set \"resolver\")",
                      &ctx->doc.host);
        return ngx_http_mcp_auth_fetch_failed(r, ctx);
    }

    rctx->name = ctx->doc.host;
    rctx->handler = ngx_http_mcp_auth_resolved;
    rctx->data = r;
    rctx->timeout = clcf->resolver_timeout;

    /* held until the subrequest's answer is handled */
    r->main->count++;
    ctx->fetch.waiting = 1;

    if (ngx_resolve_name(rctx) != NGX_OK) {
        ctx->fetch.waiting = 0;
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


static void
ngx_http_mcp_auth_resolved(ngx_resolver_ctx_t *rctx)
{
    u_char                         text[NGX_SOCKADDR_STRLEN];
    ngx_str_t                      addr;
    ngx_uint_t                     i, refused;
    mcpa_str_t                     ip;
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    r = rctx->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    addr.len = 0;
    refused = 0;

    if (rctx->state) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "mcp_auth: \"%V\" could not be resolved (%i: %s)",
                      &rctx->name, rctx->state,
                      ngx_resolver_strerror(rctx->state));

    } else {
        /* every address must be acceptable: no mixing in a private one */
        for (i = 0; i < rctx->naddrs; i++) {
            addr.len = ngx_sock_ntop(rctx->addrs[i].sockaddr,
                                     rctx->addrs[i].socklen, text,
                                     NGX_SOCKADDR_STRLEN, 0);
            ip.data = (const char *) text;
            ip.len = addr.len;

            if (!mcpa_fetch_address_allowed(alcf->core, ip)) {
                refused = 1;
            }
        }

        addr.len = ngx_sock_ntop(rctx->addrs[0].sockaddr,
                                 rctx->addrs[0].socklen, text,
                                 NGX_SOCKADDR_STRLEN, 0);
        addr.data = text;

        if (refused) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "mcp_auth: client metadata document at \"%V\" "
                          "refused: it resolves to a non-public address",
                          &rctx->name);
            addr.len = 0;
        }
    }

    ngx_resolve_name_done(rctx);

    ctx->fetch.waiting = 0;

    if (addr.len == 0
        || ngx_http_mcp_auth_document_url(r, ctx, &addr) != NGX_OK
        || ngx_http_mcp_auth_subrequest(r, ctx,
                                        &alcf->client_metadata_location,
                                        MCPA_FETCH_CLIENT_METADATA,
                                        NGX_HTTP_MCP_AUTH_FROM_EVENT)
           != NGX_OK)
    {
        /* answer now: the document is unavailable */
        ctx->fetch.answer_status = 0;
        ctx->fetch.answer.len = 0;
        ngx_http_mcp_auth_fetch_observe(ctx);
        ngx_http_mcp_auth_resume_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


/* $mcp_auth_fetch_url: https://ADDRESS:PORT/PATH, the address approved */
static ngx_int_t
ngx_http_mcp_auth_document_url(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, ngx_str_t *addr)
{
    u_char     *p;
    ngx_uint_t  v6;

    v6 = (ngx_strlchr(addr->data, addr->data + addr->len, ':') != NULL);

    p = ngx_pnalloc(r->pool, sizeof("https://[]:65535") + addr->len
                             + ctx->doc.path.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->fetch.url.data = p;
    p = ngx_sprintf(p, v6 ? "https://[%V]:%d%V" : "https://%V:%d%V", addr,
                    (int) ctx->doc.port, &ctx->doc.path);
    ctx->fetch.url.len = p - ctx->fetch.url.data;

    return NGX_OK;
}


/* The document cannot be had: let the core answer at once. */
static ngx_int_t
ngx_http_mcp_auth_fetch_failed(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx)
{
    ctx->fetch.answer_status = 0;
    ctx->fetch.answer.len = 0;
    ctx->fetch.answer_cache_control.len = 0;
    ctx->store.resuming = 1;

    ngx_http_mcp_auth_fetch_observe(ctx);

    return ngx_http_mcp_auth_run(r, ctx);
}


static ngx_int_t
ngx_http_mcp_auth_subrequest(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, ngx_str_t *uri, mcpa_fetch_e target,
    ngx_uint_t mode)
{
    ngx_buf_t                     *b;
    ngx_chain_t                   *cl;
    ngx_table_elt_t               *h;
    ngx_http_request_t            *sr;
    ngx_http_request_body_t       *rb;
    ngx_http_post_subrequest_t    *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_mcp_auth_fetch_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The provider must see none of the browser's headers (cookies above
     * all) nor its body: the subrequest gets fresh ones.
     */
    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));
    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (nginx_version < 1023000)
    if (ngx_array_init(&sr->headers_in.cookies, r->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
#endif

    sr->request_body = NULL;
    sr->discard_body = 0;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Accept");
    ngx_str_set(&h->value, "application/json");
    h->lowcase_key = (u_char *) "accept";

    if (target == MCPA_FETCH_PROVIDER_TOKEN) {
        rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (rb == NULL || b == NULL || cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->temporary = 1;
        b->start = ctx->fetch.body.data;
        b->pos = b->start;
        b->last = b->start + ctx->fetch.body.len;
        b->end = b->last;
        b->last_buf = 1;

        cl->buf = b;
        cl->next = NULL;
        rb->bufs = cl;

        sr->request_body = rb;
        sr->headers_in.content_length_n = ctx->fetch.body.len;
        sr->method = NGX_HTTP_POST;
        sr->method_name = ngx_http_mcp_auth_post_method;
        sr->method_name.len--;

        h = ngx_list_push(&sr->headers_in.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Content-Type");
        ngx_str_set(&h->value, "application/x-www-form-urlencoded");
        h->lowcase_key = (u_char *) "content-type";
        sr->headers_in.content_type = h;

        if (ctx->fetch.authorization.len) {
            h = ngx_list_push(&sr->headers_in.headers);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "Authorization");
            h->value = ctx->fetch.authorization;
            h->lowcase_key = (u_char *) "authorization";
        }
    }

    ctx->fetch.waiting = 1;
    ctx->fetch.fetched = 0;
    ctx->fetch.answer.len = 0;
    ctx->fetch.answer_status = 0;
    ctx->fetch.answer_cache_control.len = 0;

    if (mode == NGX_HTTP_MCP_AUTH_FROM_GUARD) {
        return NGX_AGAIN;
    }

    r->write_event_handler = ngx_http_mcp_auth_resume_handler;

    if (mode == NGX_HTTP_MCP_AUTH_FROM_EVENT) {
        /* the reference for the wait was taken before the resolver ran */
        return NGX_OK;
    }

    /*
     * The subrequest's own reference is dropped when it finishes; this one
     * is for us, dropped by the NGX_DONE our caller finalizes with, so the
     * request lives until ngx_http_mcp_auth_resume_handler() answers it.
     */
    r->main->count++;

    return NGX_DONE;
}


/*
 * A call's outcome and how long it took, for the counters: once, although
 * nginx runs a subrequest's post handler again for the error page of a 5xx.
 */
static void
ngx_http_mcp_auth_fetch_observe(ngx_http_mcp_auth_ctx_t *ctx)
{
    if (ctx->fetch.observed) {
        return;
    }

    ctx->fetch.observed = 1;

    ngx_http_mcp_auth_observe(MCPA_M_FETCH, ctx->fetch.target,
                              ctx->fetch.answer_status);
    ngx_http_mcp_auth_observe(MCPA_M_FETCH_SECONDS, ctx->fetch.target,
                              (int64_t) (ngx_current_msec - ctx->fetch.started)
                              * 1000);
}


/* The provider answered (or failed): keep its status and body. */
static ngx_int_t
ngx_http_mcp_auth_fetch_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_mcp_auth_ctx_t  *ctx = data;

    ngx_buf_t        *b;
    ngx_table_elt_t  *h;

    ctx->fetch.waiting = 0;
    ctx->fetch.fetched = 1;

    if (rc == NGX_ERROR || r->upstream == NULL
        || r->upstream->headers_in.status_n == 0)
    {
        /*
         * unreachable, timed out, or a body too big for
         * subrequest_output_buffer_size: nothing usable from the provider.
         * An error of the subrequest is not one of the request: unless the
         * client itself is gone, the core answers it.
         */
        ctx->fetch.answer_status = 0;
        ngx_http_mcp_auth_fetch_observe(ctx);
        return (rc == NGX_ERROR && !r->connection->error) ? NGX_OK : rc;
    }

    ctx->fetch.answer_status = r->headers_out.status;
    ngx_http_mcp_auth_fetch_observe(ctx);

    if (ctx->doc.host.len && ctx->fetch.answer_status != NGX_HTTP_OK) {
        /* for the operator only: the browser is not told the status */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "mcp_auth: client metadata document on \"%V\" "
                      "answered %i", &ctx->doc.host, ctx->fetch.answer_status);
    }

    h = ngx_http_mcp_auth_find_out_header(r, "Cache-Control");
    if (h) {
        ctx->fetch.answer_cache_control = h->value;
    }

    if (r->out && r->out->buf) {
        b = r->out->buf;
        ctx->fetch.answer.data = b->pos;
        ctx->fetch.answer.len = b->last - b->pos;
    }

    return rc;
}


static void
ngx_http_mcp_auth_resume_handler(ngx_http_request_t *r)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    if (ctx == NULL || ctx->fetch.waiting || ctx->store.waiting) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ctx->fetch.req.fetch_cache_control.data =
                           (const char *) ctx->fetch.answer_cache_control.data;
    ctx->fetch.req.fetch_cache_control.len =
                                           ctx->fetch.answer_cache_control.len;
    ctx->store.resuming = 1;

    ngx_http_finalize_request(r, ngx_http_mcp_auth_run(r, ctx));
}


static ngx_table_elt_t *
ngx_http_mcp_auth_find_out_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = NULL;

    while ((h = ngx_http_mcp_auth_next_header(&r->headers_out.headers,
                                              &part, &i)))
    {
        if (h->hash != 0 && h->key.len == len
            && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0)
        {
            return h;
        }
    }

    return NULL;
}
