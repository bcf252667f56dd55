/*
 * ngx_http_mcp_auth_audit.c -- the audit log (mcp_auth_audit_log): one JSON
 * line per security event the core reports, written through nginx's own
 * log machinery (a file nginx opens and reopens on USR1, or syslog:); and
 * the W3C trace context ($mcp_auth_traceparent) whose trace id the lines
 * carry.  Never a token, code, secret or cookie: the core's events hold
 * none.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


/* Strings from clients are cut to this many bytes before escaping. */
#define NGX_HTTP_MCP_AUTH_AUDIT_FIELD  256


static u_char *ngx_http_mcp_auth_audit_time(u_char *p);
static u_char *ngx_http_mcp_auth_audit_field(u_char *p, const char *name,
    size_t name_len, const u_char *v, size_t len);
static ngx_uint_t ngx_http_mcp_auth_hex(const u_char *p, size_t n);


/* mcp_auth_audit_log off | FILE | syslog:server=...; */
char *
ngx_http_mcp_auth_audit_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mcp_auth_main_conf_t *amcf = conf;

    ngx_str_t  *value, name;

    if (amcf->audit.set) {
        return "is duplicate";
    }

    amcf->audit.set = 1;
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {
        amcf->audit.syslog = ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t));
        if (amcf->audit.syslog == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_syslog_process_conf(cf, amcf->audit.syslog) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    name = value[1];

    amcf->audit.file = ngx_conf_open_file(cf->cycle, &name);
    if (amcf->audit.file == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * {"time":"2026-12-06T17:20:01.123Z","event":"tool.call","outcome":"allowed",
 *  "reason":"","subject":"...","client_id":"...","session":"...",
 *  "tool":"...","grant_type":"","remote_addr":"127.0.0.1",
 *  "request_id":"...","trace_id":"..."}
 */
void
ngx_http_mcp_auth_audit(ngx_http_request_t *r, const mcpa_event_t *ev)
{
    u_char                         *line, *p;
    size_t                          len;
    ngx_str_t                      *trace;
    ngx_uint_t                      i;
    ngx_http_variable_value_t      *rid;
    ngx_http_mcp_auth_main_conf_t  *amcf;

    struct {
        const char  *name;
        size_t       name_len;
        const u_char *data;
        size_t       len;
    } f[11];

    if (!ev->audit) {
        return;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_mcp_auth_module);

    if (amcf->audit.file == NULL && amcf->audit.syslog == NULL) {
        return;
    }

    rid = ngx_http_get_indexed_variable(r->main, amcf->request_id);
    trace = ngx_http_mcp_auth_trace_id(r);

#define ngx_http_mcp_auth_f(i, n, d, l)                                      \
    f[i].name = n; f[i].name_len = sizeof(n) - 1;                            \
    f[i].data = (const u_char *) (d); f[i].len = l

    ngx_http_mcp_auth_f(0, "event", ev->name.data, ev->name.len);
    ngx_http_mcp_auth_f(1, "outcome", ev->outcome.data, ev->outcome.len);
    ngx_http_mcp_auth_f(2, "reason", ev->reason.data, ev->reason.len);
    ngx_http_mcp_auth_f(3, "subject", ev->subject.data, ev->subject.len);
    ngx_http_mcp_auth_f(4, "client_id", ev->client_id.data,
                        ev->client_id.len);
    ngx_http_mcp_auth_f(5, "session", ev->session_tag.data,
                        ev->session_tag.len);
    ngx_http_mcp_auth_f(6, "tool", ev->tool.data, ev->tool.len);
    ngx_http_mcp_auth_f(7, "grant_type", ev->grant_type.data,
                        ev->grant_type.len);
    ngx_http_mcp_auth_f(8, "remote_addr", r->connection->addr_text.data,
                        r->connection->addr_text.len);
    ngx_http_mcp_auth_f(9, "request_id",
                        (rid && !rid->not_found) ? rid->data : NULL,
                        (rid && !rid->not_found) ? rid->len : 0);
    ngx_http_mcp_auth_f(10, "trace_id", trace ? trace->data : NULL,
                        trace ? trace->len : 0);

#undef ngx_http_mcp_auth_f

    len = sizeof("{\"time\":\"1970-01-01T00:00:00.000Z\"}\n") - 1;

    if (amcf->audit.syslog) {
        /* the header ngx_syslog_add_header() writes, as access_log counts it */
        len += sizeof("<255>Jan 01 00:00:00 ") - 1 + ngx_cycle->hostname.len
               + 1 + amcf->audit.syslog->tag.len + 2;
    }

    for (i = 0; i < 11; i++) {
        if (f[i].len > NGX_HTTP_MCP_AUTH_AUDIT_FIELD) {
            f[i].len = NGX_HTTP_MCP_AUTH_AUDIT_FIELD;
        }

        len += sizeof(",\"\":\"\"") - 1 + f[i].name_len + f[i].len
               + ngx_escape_json(NULL, (u_char *) f[i].data, f[i].len);
    }

    line = ngx_pnalloc(r->pool, len);
    if (line == NULL) {
        return;
    }

    p = line;

    if (amcf->audit.syslog) {
        p = ngx_syslog_add_header(amcf->audit.syslog, p);
    }

    p = ngx_cpymem(p, "{\"time\":\"", sizeof("{\"time\":\"") - 1);
    p = ngx_http_mcp_auth_audit_time(p);
    *p++ = '"';

    for (i = 0; i < 11; i++) {
        p = ngx_http_mcp_auth_audit_field(p, f[i].name, f[i].name_len,
                                          f[i].data, f[i].len);
    }

    *p++ = '}';

    if (amcf->audit.syslog) {
        (void) ngx_syslog_send(amcf->audit.syslog, line, p - line);
        return;
    }

    *p++ = '\n';

    if (ngx_write_fd(amcf->audit.file->fd, line, p - line) != p - line) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_write_fd_n " to the audit log \"%s\" failed",
                      amcf->audit.file->name.data);
    }
}


static u_char *
ngx_http_mcp_auth_audit_field(u_char *p, const char *name, size_t name_len,
    const u_char *v, size_t len)
{
    *p++ = ',';
    *p++ = '"';
    p = ngx_cpymem(p, name, name_len);
    *p++ = '"';
    *p++ = ':';
    *p++ = '"';

    if (len) {
        p = (u_char *) ngx_escape_json(p, (u_char *) v, len);
    }

    *p++ = '"';

    return p;
}


/* RFC 3339 in UTC with milliseconds; the seconds are formatted once each. */
static u_char *
ngx_http_mcp_auth_audit_time(u_char *p)
{
    ngx_tm_t         tm;
    ngx_time_t      *tp;
    static time_t    sec = -1;
    static u_char    cached[sizeof("1970-01-01T00:00:00") - 1];

    tp = ngx_timeofday();

    if (tp->sec != sec) {
        ngx_gmtime(tp->sec, &tm);
        (void) ngx_sprintf(cached, "%4d-%02d-%02dT%02d:%02d:%02d",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                           tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        sec = tp->sec;
    }

    p = ngx_cpymem(p, cached, sizeof(cached));
    *p++ = '.';
    *p++ = (u_char) ('0' + tp->msec / 100);
    *p++ = (u_char) ('0' + tp->msec / 10 % 10);
    *p++ = (u_char) ('0' + tp->msec % 10);
    *p++ = 'Z';

    return p;
}


/*
 * The request's trace context (W3C Trace Context, version 00): the trace id
 * of a valid traceparent the client sent, or a new one (nginx's request id,
 * 16 random bytes), and this hop's own parent id, so the tool server and the
 * provider see the gateway as the caller.  Worked out once per request.
 */
ngx_str_t *
ngx_http_mcp_auth_traceparent(ngx_http_request_t *r)
{
    u_char                         *p;
    uint32_t                        span[2];
    ngx_uint_t                      i;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_http_mcp_auth_ctx_t        *ctx;
    ngx_http_variable_value_t      *rid;
    ngx_http_mcp_auth_main_conf_t  *amcf;

    static u_char  hex[] = "0123456789abcdef";

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_mcp_auth_module);
    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_mcp_auth_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_mcp_auth_module);
    }

    if (ctx->trace.traceparent.len) {
        return &ctx->trace.traceparent;
    }

    p = ctx->trace.buf;      /* 00-TRACE_ID-PARENT_ID-FLAGS */
    p[0] = '0';
    p[1] = '0';
    p[2] = '-';
    p[35] = '-';
    p[52] = '-';
    p[53] = '0';
    p[54] = '0';

    part = NULL;

    while ((h = ngx_http_mcp_auth_next_header(&r->headers_in.headers, &part,
                                              &i)))
    {
        if (h->key.len != sizeof("traceparent") - 1
            || ngx_strncasecmp(h->key.data, (u_char *) "traceparent",
                               h->key.len) != 0)
        {
            continue;
        }

        /* version 00 exactly; a trace id and parent id not all zeros */
        if (h->value.len == 55
            && h->value.data[0] == '0' && h->value.data[1] == '0'
            && h->value.data[2] == '-' && h->value.data[35] == '-'
            && h->value.data[52] == '-'
            && ngx_http_mcp_auth_hex(h->value.data + 3, 32) == 1
            && ngx_http_mcp_auth_hex(h->value.data + 36, 16) == 1
            && ngx_http_mcp_auth_hex(h->value.data + 53, 2) != 0)
        {
            ngx_memcpy(p + 3, h->value.data + 3, 32);
            p[53] = h->value.data[53];
            p[54] = h->value.data[54];
            ctx->trace.from_client = 1;
        }

        break;
    }

    if (!ctx->trace.from_client) {
        amcf = ngx_http_get_module_main_conf(r, ngx_http_mcp_auth_module);
        rid = NULL;

        if (amcf->request_id != NGX_ERROR) {
            rid = ngx_http_get_indexed_variable(r, amcf->request_id);
        }

        if (rid == NULL || rid->not_found || rid->len != 32) {
            return NULL;
        }

        ngx_memcpy(p + 3, rid->data, 32);
    }

    /* this hop's parent id: random, never all zeros */
    do {
        span[0] = (uint32_t) ngx_random();
        span[1] = (uint32_t) ngx_random();
    } while (span[0] == 0 && span[1] == 0);

    for (i = 0; i < 8; i++) {
        p[36 + 2 * i] = hex[(span[i / 4] >> (8 * (i % 4) + 4)) & 0xf];
        p[37 + 2 * i] = hex[(span[i / 4] >> (8 * (i % 4))) & 0xf];
    }

    ctx->trace.traceparent.data = p;
    ctx->trace.traceparent.len = 55;
    ctx->trace.trace_id.data = p + 3;
    ctx->trace.trace_id.len = 32;

    return &ctx->trace.traceparent;
}


ngx_str_t *
ngx_http_mcp_auth_trace_id(ngx_http_request_t *r)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    if (ngx_http_mcp_auth_traceparent(r) == NULL) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_mcp_auth_module);

    return &ctx->trace.trace_id;
}


/* 0: not lowercase hex; 1: hex, not all zeros; 2: all zeros. */
static ngx_uint_t
ngx_http_mcp_auth_hex(const u_char *p, size_t n)
{
    size_t      i;
    ngx_uint_t  zero;

    zero = 1;

    for (i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }

        if (p[i] != '0') {
            zero = 0;
        }
    }

    return zero ? 2 : 1;
}
