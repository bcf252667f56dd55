/*
 * ngx_http_mcp_auth_filter.c -- mcp_auth_filter_tools: the upstream's
 * answer to a tools/list the guard allowed is gathered (up to
 * mcp_auth_filter_tools_max_size) and sent on without the tools the user
 * may not call (mcpa_filter_tools_list).  An answer that is larger, or
 * compressed, or that the core cannot read exactly goes on as it came,
 * whole: the guard still decides every tools/call.
 *
 * A module of its own, so that it sits among the filters where the copy
 * filter has already read file buffers into memory (config orders it
 * before ngx_http_copy_filter_module).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


typedef struct {
    ngx_pool_t               *pool;
    ngx_str_t                 body;
} ngx_http_mcp_auth_filter_out_t;


static ngx_int_t ngx_http_mcp_auth_filter_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_mcp_auth_filter_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_mcp_auth_filter_body(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_uint_t ngx_http_mcp_auth_filter_type(ngx_http_request_t *r,
    ngx_str_t *type);
static ngx_int_t ngx_http_mcp_auth_filter_gather(ngx_http_request_t *r,
    ngx_http_mcp_auth_filter_ctx_t *fc, ngx_buf_t *b, size_t max);
static ngx_int_t ngx_http_mcp_auth_filter_pass(ngx_http_request_t *r,
    ngx_http_mcp_auth_filter_ctx_t *fc, ngx_chain_t *rest, int outcome);
static ngx_int_t ngx_http_mcp_auth_filter_send(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, size_t end, ngx_uint_t last);
static void ngx_http_mcp_auth_filter_sink(void *data, const char *p,
    size_t len);


static ngx_http_module_t  ngx_http_mcp_auth_filter_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_mcp_auth_filter_init,         /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_mcp_auth_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_mcp_auth_filter_module_ctx,  /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_mcp_auth_filter_header(ngx_http_request_t *r)
{
    ngx_uint_t                     event_stream;
    ngx_table_elt_t               *ce;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    static ngx_str_t  json = ngx_string("application/json");
    static ngx_str_t  sse = ngx_string("text/event-stream");

    if (r != r->main || r->header_only
        || r->headers_out.status != NGX_HTTP_OK)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    if (ctx == NULL || !ctx->filter.lists_tools) {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_mcp_auth_filter_type(r, &json)) {
        event_stream = 0;

    } else if (ngx_http_mcp_auth_filter_type(r, &sse)) {
        event_stream = 1;

    } else {
        return ngx_http_next_header_filter(r);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /* the core reads JSON, not what a compressor made of it */
    ce = r->headers_out.content_encoding;

    if (ce && ce->value.len
        && !(ce->value.len == sizeof("identity") - 1
             && ngx_strncasecmp(ce->value.data, (u_char *) "identity",
                                ce->value.len) == 0))
    {
        ngx_http_mcp_auth_observe(MCPA_M_TOOLS_LIST_FILTER,
                                  MCPA_FILTER_NOT_FILTERABLE, 0);
        return ngx_http_next_header_filter(r);
    }

    if (r->headers_out.content_length_n
        > (off_t) alcf->filter_tools_max_size)
    {
        ngx_http_mcp_auth_observe(MCPA_M_TOOLS_LIST_FILTER,
                                  MCPA_FILTER_TOO_LARGE, 0);
        return ngx_http_next_header_filter(r);
    }

    /* a known length is gathered in one buffer */
    if (r->headers_out.content_length_n > 0) {
        ctx->filter.size = (size_t) r->headers_out.content_length_n;
        ctx->filter.buf = ngx_pnalloc(r->pool, ctx->filter.size);
        if (ctx->filter.buf == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->filter.gathering = 1;
    ctx->filter.event_stream = event_stream;

    /* the length changes, and the answer differs per user */
    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_etag(r);

    r->filter_need_in_memory = 1;

    return ngx_http_next_header_filter(r);
}


/* The media type is `type`, with parameters or not. */
static ngx_uint_t
ngx_http_mcp_auth_filter_type(ngx_http_request_t *r, ngx_str_t *type)
{
    ngx_str_t  *ct;

    ct = &r->headers_out.content_type;

    if (ct->len < type->len
        || ngx_strncasecmp(ct->data, type->data, type->len) != 0)
    {
        return 0;
    }

    return ct->len == type->len || ct->data[type->len] == ';'
           || ct->data[type->len] == ' ' || ct->data[type->len] == '\t';
}


static ngx_int_t
ngx_http_mcp_auth_filter_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                         end;
    ngx_int_t                      rc;
    ngx_uint_t                     last;
    mcpa_str_t                     stream;
    ngx_chain_t                   *cl;
    ngx_http_mcp_auth_ctx_t       *ctx;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);

    if (ctx == NULL || !ctx->filter.gathering || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    /*
     * The upstream's buffers are copied and marked sent, so that it can
     * reuse them while the answer is gathered.
     */
    last = 0;

    for (cl = in; cl; cl = cl->next) {
        rc = ngx_http_mcp_auth_filter_gather(r, &ctx->filter, cl->buf,
                                             alcf->filter_tools_max_size);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            /* a streamed answer that grew too large goes on whole */
            return ngx_http_mcp_auth_filter_pass(r, &ctx->filter, cl,
                                                 MCPA_FILTER_TOO_LARGE);
        }

        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    if (last) {
        return ngx_http_mcp_auth_filter_send(r, ctx, ctx->filter.len, 1);
    }

    /*
     * An event stream's answer goes on once its response has arrived: a
     * server may keep the stream open after it.
     */
    if (ctx->filter.event_stream) {
        stream.data = (const char *) ctx->filter.buf;
        stream.len = ctx->filter.len;

        end = mcpa_sse_response_end(stream, &ctx->filter.scanned);

        if (end) {
            return ngx_http_mcp_auth_filter_send(r, ctx, end, 0);
        }
    }

    return NGX_OK;
}


/*
 * Copies a buffer's bytes into the answer gathered so far: NGX_DECLINED
 * when they would take it past max (or are not in memory), the buffer
 * untouched then.
 */
static ngx_int_t
ngx_http_mcp_auth_filter_gather(ngx_http_request_t *r,
    ngx_http_mcp_auth_filter_ctx_t *fc, ngx_buf_t *b, size_t max)
{
    size_t   len, size;
    u_char  *p;

    if (!ngx_buf_in_memory(b)) {
        return ngx_buf_special(b) ? NGX_OK : NGX_DECLINED;
    }

    len = b->last - b->pos;

    if (len > max - fc->len) {
        return NGX_DECLINED;
    }

    if (fc->len + len > fc->size) {
        size = ngx_max(fc->size * 2, fc->len + len);
        size = ngx_min(ngx_max(size, 4096), max);

        p = ngx_pnalloc(r->pool, size);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (fc->len) {
            ngx_memcpy(p, fc->buf, fc->len);
        }

        if (fc->buf) {
            (void) ngx_pfree(r->pool, fc->buf);
        }

        fc->buf = p;
        fc->size = size;
    }

    if (len) {
        ngx_memcpy(fc->buf + fc->len, b->pos, len);
        fc->len += len;
    }

    b->pos = b->last;

    if (b->in_file) {
        b->file_pos = b->file_last;
    }

    return NGX_OK;
}


/* What was gathered, then the rest as it comes: the answer unfiltered. */
static ngx_int_t
ngx_http_mcp_auth_filter_pass(ngx_http_request_t *r,
    ngx_http_mcp_auth_filter_ctx_t *fc, ngx_chain_t *rest, int outcome)
{
    ngx_buf_t    *b;
    ngx_chain_t  *out;

    fc->gathering = 0;

    ngx_http_mcp_auth_observe(MCPA_M_TOOLS_LIST_FILTER, outcome, 0);

    if (fc->len == 0) {
        return ngx_http_next_body_filter(r, rest);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = fc->buf;
    b->last = fc->buf + fc->len;
    b->temporary = 1;

    out = ngx_alloc_chain_link(r->pool);
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->buf = b;
    out->next = rest;

    return ngx_http_next_body_filter(r, out);
}


/*
 * The answer up to end, filtered (or as it came), then what was gathered
 * after it as it came; the answer ends there, or goes on unfiltered.
 */
static ngx_int_t
ngx_http_mcp_auth_filter_send(ngx_http_request_t *r,
    ngx_http_mcp_auth_ctx_t *ctx, size_t end, ngx_uint_t last)
{
    int                             outcome;
    ngx_buf_t                      *b, *rest;
    ngx_chain_t                     out[2];
    mcpa_str_t                      body, scope, claims;
    ngx_http_mcp_auth_loc_conf_t   *alcf;
    ngx_http_mcp_auth_filter_out_t  filtered;

    ctx->filter.gathering = 0;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    body.data = (const char *) ctx->filter.buf;
    body.len = end;
    scope.data = (const char *) ctx->guard.scope.data;
    scope.len = ctx->guard.scope.len;
    claims.data = (const char *) ctx->filter.claims.data;
    claims.len = ctx->filter.claims.len;

    filtered.pool = r->pool;
    filtered.body.data = NULL;
    filtered.body.len = 0;

    outcome = mcpa_filter_tools_list(alcf->core, body,
                                     (int) ctx->filter.event_stream, scope,
                                     claims, ngx_http_mcp_auth_filter_sink,
                                     &filtered);

    if (outcome == MCPA_FILTER_FILTERED && filtered.body.data == NULL) {
        return NGX_ERROR;  /* never the unfiltered answer instead */
    }

    ngx_http_mcp_auth_observe(MCPA_M_TOOLS_LIST_FILTER, outcome, 0);

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (outcome == MCPA_FILTER_FILTERED) {
        b->pos = filtered.body.data;
        b->last = filtered.body.data + filtered.body.len;

    } else {
        b->pos = ctx->filter.buf;
        b->last = ctx->filter.buf + end;
    }

    /* an empty buffer must not look like data to the filters after us */
    b->temporary = (b->last > b->pos);

    out[0].buf = b;
    out[0].next = NULL;

    if (end < ctx->filter.len) {
        rest = ngx_calloc_buf(r->pool);
        if (rest == NULL) {
            return NGX_ERROR;
        }

        rest->pos = ctx->filter.buf + end;
        rest->last = ctx->filter.buf + ctx->filter.len;
        rest->temporary = 1;

        out[0].next = &out[1];
        out[1].buf = rest;
        out[1].next = NULL;
        b = rest;
    }

    if (last) {
        b->last_buf = 1;

    } else {
        b->flush = 1;
    }

    return ngx_http_next_body_filter(r, out);
}


static void
ngx_http_mcp_auth_filter_sink(void *data, const char *p, size_t len)
{
    ngx_http_mcp_auth_filter_out_t  *out = data;

    out->body.data = ngx_pnalloc(out->pool, len);
    if (out->body.data == NULL) {
        return;
    }

    ngx_memcpy(out->body.data, p, len);
    out->body.len = len;
}


static ngx_int_t
ngx_http_mcp_auth_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_mcp_auth_filter_header;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_mcp_auth_filter_body;

    return NGX_OK;
}
