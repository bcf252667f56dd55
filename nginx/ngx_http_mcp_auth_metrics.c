/*
 * ngx_http_mcp_auth_metrics.c -- the counters behind "mcp_auth_endpoint
 * metrics": one flat array of 64-bit slots in a shared-memory zone of their
 * own, which every worker adds to atomically, so the counts are exact across
 * workers; nginx keeps a zone of the same name and size across a reload, so
 * they survive it.  The core says which slots an event adds to and names
 * them when the endpoint renders them (Prometheus text format 0.0.4).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


#define NGX_HTTP_MCP_AUTH_METRICS_SIZE   (64 * 1024)
#define NGX_HTTP_MCP_AUTH_TOOL_LEN       64

#define NGX_HTTP_MCP_AUTH_REDIS_UP       1
#define NGX_HTTP_MCP_AUTH_REDIS_DOWN     2


typedef struct {
    ngx_uint_t                nslots;          /* as the core counted them */
    ngx_uint_t                ntools;
    u_char                    tool_len[MCPA_METRICS_TOOLS];
    u_char                    tools[MCPA_METRICS_TOOLS]
                                   [NGX_HTTP_MCP_AUTH_TOOL_LEN];
    ngx_atomic_t              streams;         /* guarded requests open */
    ngx_atomic_t              redis;           /* as a worker saw it last */
    ngx_atomic_t              slots[1];
} ngx_http_mcp_auth_metrics_sh_t;


/* The zone's data: the cycle's configurations, whose tools get slots. */
struct ngx_http_mcp_auth_metrics_zone_s {
    ngx_array_t                     *cores;    /* of mcpa_config_t * */
    ngx_http_mcp_auth_metrics_sh_t  *sh;
};


static ngx_int_t ngx_http_mcp_auth_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_mcp_auth_metrics_name_tools(
    ngx_http_mcp_auth_metrics_zone_t *mz);
static void ngx_http_mcp_auth_metrics_gauges(ngx_http_request_t *r,
    mcpa_gauges_t *g);
static void ngx_http_mcp_auth_metrics_sink(void *data, const char *text,
    size_t len);


/* The zone's tag: the store's zones carry the module's own. */
static ngx_uint_t  ngx_http_mcp_auth_metrics_tag;


/*
 * This process's counters: its cycle's, set when the process starts (a
 * worker belongs to one cycle); NULL when no location uses the module.
 */
static ngx_http_mcp_auth_metrics_sh_t  *ngx_http_mcp_auth_metrics;


void
ngx_http_mcp_auth_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_http_mcp_auth_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_mcp_auth_module);

    ngx_http_mcp_auth_metrics = (amcf && amcf->metrics) ? amcf->metrics->sh
                                                        : NULL;
}


ngx_http_mcp_auth_metrics_zone_t *
ngx_http_mcp_auth_metrics_add_zone(ngx_conf_t *cf, ngx_array_t *cores)
{
    ngx_str_t                          name = ngx_string("mcp_auth_metrics");
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_mcp_auth_metrics_zone_t  *mz;

    mz = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcp_auth_metrics_zone_t));
    if (mz == NULL) {
        return NULL;
    }

    mz->cores = cores;

    shm_zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_MCP_AUTH_METRICS_SIZE,
                                     &ngx_http_mcp_auth_metrics_tag);
    if (shm_zone == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_mcp_auth_metrics_init_zone;
    shm_zone->data = mz;

    return mz;
}


static ngx_int_t
ngx_http_mcp_auth_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_mcp_auth_metrics_zone_t  *omz = data;

    size_t                             size, nslots;
    ngx_slab_pool_t                   *shpool;
    ngx_http_mcp_auth_metrics_zone_t  *mz;

    mz = shm_zone->data;
    nslots = mcpa_metrics_slots();

    /* a reload: the same counters go on (unless this build counts others) */
    if (omz && omz->sh && omz->sh->nslots == nslots) {
        mz->sh = omz->sh;
        goto done;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    size = sizeof(ngx_http_mcp_auth_metrics_sh_t)
           + (nslots - 1) * sizeof(ngx_atomic_t);

    mz->sh = ngx_slab_calloc(shpool, size);
    if (mz->sh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "mcp_auth: %uz counters do not fit the metrics zone",
                      nslots);
        return NGX_ERROR;
    }

    mz->sh->nslots = nslots;

done:

    ngx_http_mcp_auth_metrics_name_tools(mz);

    return NGX_OK;
}


/*
 * Each configuration's tool names get a place in the zone's table, where a
 * name keeps its place across reloads; past MCPA_METRICS_TOOLS names (or a
 * name too long for the table) a tool counts as "other".
 */
static void
ngx_http_mcp_auth_metrics_name_tools(ngx_http_mcp_auth_metrics_zone_t *mz)
{
    size_t                           i, n, t;
    mcpa_str_t                       names[MCPA_METRICS_TOOLS];
    mcpa_config_t                  **cores;
    ngx_uint_t                       c;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    sh = mz->sh;
    cores = mz->cores->elts;

    for (c = 0; c < mz->cores->nelts; c++) {
        n = mcpa_config_tools(cores[c], names, MCPA_METRICS_TOOLS);

        for (i = 0; i < n && i < MCPA_METRICS_TOOLS; i++) {
            for (t = 0; t < sh->ntools; t++) {
                if (sh->tool_len[t] == names[i].len
                    && ngx_memcmp(sh->tools[t], names[i].data, names[i].len)
                       == 0)
                {
                    break;
                }
            }

            if (t == sh->ntools) {
                if (t == MCPA_METRICS_TOOLS
                    || names[i].len > NGX_HTTP_MCP_AUTH_TOOL_LEN)
                {
                    mcpa_config_set_tool_slot(cores[c], i, -1);
                    continue;
                }

                ngx_memcpy(sh->tools[t], names[i].data, names[i].len);
                sh->tool_len[t] = (u_char) names[i].len;
                sh->ntools++;
            }

            mcpa_config_set_tool_slot(cores[c], i, (int) t);
        }
    }
}


/* Adds one to each slot an event names (MCPA_EVENT_METRICS, -1 ends). */
void
ngx_http_mcp_auth_count(const int *metric)
{
    ngx_uint_t                       i;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    sh = ngx_http_mcp_auth_metrics;

    if (sh == NULL) {
        return;
    }

    for (i = 0; i < MCPA_EVENT_METRICS && metric[i] >= 0; i++) {
        if ((ngx_uint_t) metric[i] < sh->nslots) {
            (void) ngx_atomic_fetch_add(&sh->slots[metric[i]], 1);
        }
    }
}


/* What the glue saw itself: a provider call, a response, a stream closed. */
void
ngx_http_mcp_auth_observe(mcpa_metric_e m, int a, int64_t b)
{
    int                              slots[MCPA_EVENT_METRICS];
    int64_t                          amounts[MCPA_EVENT_METRICS];
    ngx_uint_t                       i;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    sh = ngx_http_mcp_auth_metrics;

    if (sh == NULL) {
        return;
    }

    mcpa_metrics_observe(m, a, b, slots, amounts);

    for (i = 0; i < MCPA_EVENT_METRICS && slots[i] >= 0; i++) {
        if ((ngx_uint_t) slots[i] < sh->nslots) {
            (void) ngx_atomic_fetch_add(&sh->slots[slots[i]],
                                        (ngx_atomic_int_t) amounts[i]);
        }
    }
}


void
ngx_http_mcp_auth_count_stream(ngx_int_t delta)
{
    if (ngx_http_mcp_auth_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_mcp_auth_metrics->streams,
                                    (ngx_atomic_int_t) delta);
    }
}


/*
 * A worker's Redis connection came up (1) or failed (0).  The gauge is what
 * a worker saw last: a worker reconnects only when it next needs Redis, so
 * an idle one's old failure must not keep the node "down".
 */
void
ngx_http_mcp_auth_count_redis(ngx_uint_t up)
{
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    sh = ngx_http_mcp_auth_metrics;

    if (sh) {
        sh->redis = up ? NGX_HTTP_MCP_AUTH_REDIS_UP
                       : NGX_HTTP_MCP_AUTH_REDIS_DOWN;
    }
}


/*
 * Where a location's responses are counted (mcp_auth_responses_total): the
 * slot of its 2xx, the other classes after it (and in unavailable503, the
 * slot of its 503s); -1 when the module does not serve the location.
 */
ngx_int_t
ngx_http_mcp_auth_response_slot(ngx_http_mcp_auth_loc_conf_t *alcf,
    ngx_int_t *unavailable503)
{
    int      ep, slots[MCPA_EVENT_METRICS];
    int64_t  amounts[MCPA_EVENT_METRICS];

    *unavailable503 = -1;

    if (alcf->protect) {
        ep = MCPA_M_EP_GUARDED;

    } else if (alcf->endpoint == MCPA_EP_NONE) {
        return -1;

    } else if (alcf->endpoint == NGX_HTTP_MCP_AUTH_EP_STATUS) {
        ep = MCPA_M_EP_STATUS;

    } else if (alcf->endpoint == NGX_HTTP_MCP_AUTH_EP_METRICS) {
        ep = MCPA_M_EP_METRICS;

    } else {
        ep = (int) alcf->endpoint;
    }

    mcpa_metrics_observe(MCPA_M_RESPONSE, ep, 503, slots, amounts);
    *unavailable503 = slots[1];

    mcpa_metrics_observe(MCPA_M_RESPONSE, ep, 200, slots, amounts);

    return slots[0];
}


/* The response's status class, in the log phase: every request a location
 * of the module served, the guard's included (upstream answers, denials). */
ngx_int_t
ngx_http_mcp_auth_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       status, slot;
    ngx_http_mcp_auth_loc_conf_t    *alcf;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->response_slot < 0) {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == 0) {
        return NGX_OK;   /* nothing was sent: the connection was lost */
    }

    sh = ngx_http_mcp_auth_metrics;
    if (sh == NULL) {
        return NGX_OK;
    }

    slot = (ngx_uint_t) alcf->response_slot
           + (status < 300 ? 0 : status < 400 ? 1 : status < 500 ? 2 : 3);

    if (slot < sh->nslots) {
        (void) ngx_atomic_fetch_add(&sh->slots[slot], 1);
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        && (ngx_uint_t) alcf->unavailable_slot < sh->nslots)
    {
        (void) ngx_atomic_fetch_add(&sh->slots[alcf->unavailable_slot], 1);
    }

    return NGX_OK;
}


/*
 * GET -> the counters, the tool names of the zone's table, and the gauges
 * in Prometheus's text format.  Nothing is changed; never a key or a value.
 */
ngx_int_t
ngx_http_mcp_auth_metrics_handler(ngx_http_request_t *r)
{
    size_t                           i, n;
    uint64_t                        *copy;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_str_t                        text;
    mcpa_str_t                       tools[MCPA_METRICS_TOOLS];
    mcpa_gauges_t                    g;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    static ngx_str_t  exposition =
                      ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_mcp_auth_metrics;
    if (sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy = ngx_palloc(r->pool, sh->nslots * sizeof(uint64_t));
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < sh->nslots; i++) {
        copy[i] = (uint64_t) sh->slots[i];
    }

    n = sh->ntools;
    for (i = 0; i < n; i++) {
        tools[i].data = (const char *) sh->tools[i];
        tools[i].len = sh->tool_len[i];
    }

    ngx_http_mcp_auth_metrics_gauges(r, &g);

    text.len = 0;
    text.data = (u_char *) r;   /* the sink's pool, until it fills text */

    if (mcpa_metrics_render(copy, sh->nslots, tools, n, &g,
                            ngx_http_mcp_auth_metrics_sink, &text)
        != MCPA_OK
        || text.data == (u_char *) r || text.data == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = text.data;
    b->last = text.data + text.len;
    b->memory = 1;

    return ngx_http_mcp_auth_send_document(r, b, &exposition);
}


/* The rendered text, copied into the request's pool. */
static void
ngx_http_mcp_auth_metrics_sink(void *data, const char *text, size_t len)
{
    ngx_str_t           *s = data;
    ngx_http_request_t  *r = (ngx_http_request_t *) s->data;

    s->data = ngx_pnalloc(r->pool, len ? len : 1);
    if (s->data) {
        ngx_memcpy(s->data, text, len);
        s->len = len;
    }
}


/*
 * The gauges: open guarded requests from the zone's count; with a zone,
 * its live sessions and unredeemed codes (one walk of its entries under its
 * lock, as the status endpoint does) and its bytes; with Redis, whether
 * every worker's connection is up (the entries are Redis's to count).
 */
static void
ngx_http_mcp_auth_metrics_gauges(ngx_http_request_t *r, mcpa_gauges_t *g)
{
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_mcp_auth_zone_t        *zone;
    ngx_http_mcp_auth_census_t       c;
    ngx_http_mcp_auth_loc_conf_t    *alcf;
    ngx_http_mcp_auth_metrics_sh_t  *sh;

    sh = ngx_http_mcp_auth_metrics;

    g->sessions = -1;
    g->pending_logins = -1;
    g->zone_bytes_used = -1;
    g->zone_bytes_total = -1;
    g->redis_up = -1;
    g->guarded_streams = (int64_t) sh->streams;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_mcp_auth_module);

    if (alcf->redis) {
        g->redis_up = (sh->redis == NGX_HTTP_MCP_AUTH_REDIS_DOWN) ? 0 : 1;
        return;
    }

    shm_zone = alcf->shm_zone;
    if (shm_zone == NULL) {
        return;
    }

    zone = shm_zone->data;

    ngx_http_mcp_auth_zone_census(zone, &c);

    g->sessions = (int64_t) c.sessions;
    g->pending_logins = (int64_t) c.codes;
    g->zone_bytes_used = (int64_t) (shm_zone->shm.size
                                    - c.pages_free * ngx_pagesize);
    g->zone_bytes_total = (int64_t) shm_zone->shm.size;
}
