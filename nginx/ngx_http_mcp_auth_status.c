/*
 * ngx_http_mcp_auth_status.c -- "mcp_auth_endpoint status": the store's
 * figures for operators (the zone's counts, or this worker's Redis
 * connection), served by the glue alone, without the core; and how the
 * operators' documents are sent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


static ngx_int_t ngx_http_mcp_auth_redis_status(ngx_http_request_t *r,
    ngx_mcp_auth_redis_t *rd);
static ngx_int_t ngx_http_mcp_auth_send_json(ngx_http_request_t *r,
    ngx_buf_t *b);
static ngx_int_t ngx_http_mcp_auth_no_store(ngx_http_request_t *r);


/*
 * GET -> {"zone":"NAME","entries":N,"expired":N,"bytes_used":N,
 *         "bytes_total":N,"unauthenticated_entries":N,
 *         "unauthenticated_bytes":N,"unauthenticated_budget":N,
 *         "unauthenticated_evicted":N}: entries are the live ones, expired
 * those the sweep has not dropped yet; bytes are the zone's slab pages in
 * use and its size.  The unauthenticated entries (expired ones not yet
 * dropped included), the bytes their allocations take, their budget, and
 * how many live ones were evicted to make room since the zone was made.
 * Read under the zone's lock, which is held for one walk of the entry list;
 * nothing is changed.  Counts only, never a key or a value.
 */
ngx_int_t
ngx_http_mcp_auth_status_handler(ngx_http_request_t *r)
{
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_shm_zone_t                *shm_zone;
    ngx_http_mcp_auth_zone_t      *zone;
    ngx_http_mcp_auth_census_t     c;
    ngx_http_mcp_auth_loc_conf_t  *alcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->redis) {
        return ngx_http_mcp_auth_redis_status(r, alcf->redis);
    }

    shm_zone = alcf->shm_zone;
    zone = shm_zone->data;

    ngx_http_mcp_auth_zone_census(zone, &c);

    len = sizeof("{\"zone\":\"\",\"entries\":,\"expired\":,"
                 "\"bytes_used\":,\"bytes_total\":,"
                 "\"unauthenticated_entries\":,"
                 "\"unauthenticated_bytes\":,"
                 "\"unauthenticated_budget\":,"
                 "\"unauthenticated_evicted\":}\n") - 1
          + shm_zone->shm.name.len + 8 * NGX_ATOMIC_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the zone name is a config word of [A-Za-z0-9_-] in practice */
    b->last = ngx_sprintf(b->last,
                          "{\"zone\":\"%V\",\"entries\":%ui,\"expired\":%ui,"
                          "\"bytes_used\":%uz,\"bytes_total\":%uz,"
                          "\"unauthenticated_entries\":%ui,"
                          "\"unauthenticated_bytes\":%uz,"
                          "\"unauthenticated_budget\":%uz,"
                          "\"unauthenticated_evicted\":%ui}\n",
                          &shm_zone->shm.name, c.live, c.expired,
                          shm_zone->shm.size - c.pages_free * ngx_pagesize,
                          shm_zone->shm.size, c.unauth_count, c.unauth_bytes,
                          zone->unauth_budget, c.evicted);
    return ngx_http_mcp_auth_send_json(r, b);
}


/*
 * With Redis: {"store":"redis","address":"...","connected":B,"in_flight":N,
 * "unauthenticated_budget":N} for this worker's connection (each worker has
 * its own); what the budget holds is in Redis (P"unauthenticated:sizes").
 */
static ngx_int_t
ngx_http_mcp_auth_redis_status(ngx_http_request_t *r, ngx_mcp_auth_redis_t *rd)
{
    size_t      len;
    ngx_buf_t  *b;
    ngx_str_t  *addr;

    addr = ngx_mcp_auth_redis_address(rd);

    len = sizeof("{\"store\":\"redis\",\"address\":\"\",\"connected\":false,"
                 "\"in_flight\":,\"unauthenticated_budget\":}\n") - 1
          + addr->len + ngx_escape_json(NULL, addr->data, addr->len)
          + 2 * NGX_ATOMIC_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, "{\"store\":\"redis\",\"address\":\"",
                         sizeof("{\"store\":\"redis\",\"address\":\"") - 1);
    b->last = (u_char *) ngx_escape_json(b->last, addr->data, addr->len);
    b->last = ngx_sprintf(b->last, "\",\"connected\":%s,\"in_flight\":%ui,"
                          "\"unauthenticated_budget\":%uz}\n",
                          ngx_mcp_auth_redis_connected(rd) ? "true" : "false",
                          ngx_mcp_auth_redis_in_flight(rd),
                          ngx_mcp_auth_redis_unauth_budget(rd));
    return ngx_http_mcp_auth_send_json(r, b);
}


static ngx_int_t
ngx_http_mcp_auth_send_json(ngx_http_request_t *r, ngx_buf_t *b)
{
    static ngx_str_t  json = ngx_string("application/json");

    return ngx_http_mcp_auth_send_document(r, b, &json);
}


/* Sends an operator's document (status, metrics), never cached. */
ngx_int_t
ngx_http_mcp_auth_send_document(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_str_t *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;

    if (ngx_http_mcp_auth_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_mcp_auth_no_store(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return NGX_OK;
}
