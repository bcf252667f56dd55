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

#include <openssl/rand.h>

#include "ngx_http_mcp_auth.h"


/* Every value is cut to this many bytes (before escaping). */
#define NGX_HTTP_MCP_AUTH_AUDIT_FIELD  256

/* What ngx_syslog_add_header() writes at most: "<PRI>Mmm dd hh:mm:ss HOST
 * TAG: " (nginx allows a tag of 32 characters). */
#define NGX_HTTP_MCP_AUTH_SYSLOG_HEADER                                      \
    (sizeof("<255>Jan 01 00:00:00 ") - 1 + NGX_MAXHOSTNAMELEN + 32 + 2)

/* The longest line: the syslog header, the time, the 13 fields with their
 * names and escaped values (6 bytes for one), the braces, the newline. */
#define NGX_HTTP_MCP_AUTH_AUDIT_LINE                                         \
    (NGX_HTTP_MCP_AUTH_SYSLOG_HEADER + 64                                    \
     + 13 * (6 * NGX_HTTP_MCP_AUTH_AUDIT_FIELD + 32))


static u_char *ngx_http_mcp_auth_audit_time(u_char *p);
static void ngx_http_mcp_auth_audit_buffer(ngx_http_mcp_auth_audit_t *audit,
    u_char *line, size_t len);
static void ngx_http_mcp_auth_audit_flush(void);
static void ngx_http_mcp_auth_audit_flush_timer(ngx_event_t *ev);
static void ngx_http_mcp_auth_audit_flush_file(ngx_open_file_t *file,
    ngx_log_t *log);
static void ngx_http_mcp_auth_audit_write(ngx_open_file_t *file, u_char *data,
    size_t len);
static u_char *ngx_http_mcp_auth_audit_value(u_char *p, const u_char *v,
    size_t len, ngx_uint_t escape);
static ngx_uint_t ngx_http_mcp_auth_needs_escape(const u_char *p, size_t n);


/* 1 for the bytes JSON takes as they are in a string: not a control
 * character, '"' or '\\' */
static const u_char  ngx_http_mcp_auth_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* ' ' '!' '"' ... */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
};
static ngx_uint_t ngx_http_mcp_auth_hex(const u_char *p, size_t n);
static uint64_t ngx_http_mcp_auth_random(void);
static void ngx_http_mcp_auth_random_hex(u_char *p, size_t n);


/* mcp_auth_audit_log off | FILE [buffer=SIZE [flush=TIME]] | syslog:...; */
char *
ngx_http_mcp_auth_audit_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mcp_auth_main_conf_t *amcf = conf;

    ssize_t      size;
    ngx_int_t    flush;
    ngx_str_t   *value, name, s;
    ngx_uint_t   i;

    if (amcf->audit.set) {
        return "is duplicate";
    }

    amcf->audit.set = 1;
    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters with \"off\"";
        }

        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "buffer=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;
            size = ngx_parse_size(&s);

            /* a buffer holds at least one line of the longest kind */
            if (size == NGX_ERROR
                || size < (ssize_t) NGX_HTTP_MCP_AUTH_AUDIT_LINE)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid buffer size \"%V\": at least %uz",
                                   &s, (size_t) NGX_HTTP_MCP_AUTH_AUDIT_LINE);
                return NGX_CONF_ERROR;
            }

            amcf->audit.buffer_size = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            flush = ngx_parse_time(&s, 0);

            if (flush == (ngx_int_t) NGX_ERROR || flush == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid flush time \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            amcf->audit.flush = flush;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (amcf->audit.flush && amcf->audit.buffer_size == 0) {
        return "has flush= without buffer=";
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {
        if (amcf->audit.buffer_size) {
            return "buffers only a file, not syslog";
        }

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

    if (amcf->audit.buffer_size) {
        if (amcf->audit.flush == 0) {
            amcf->audit.flush = 1000;
        }

        /* nginx calls it before it reopens the file (USR1) */
        amcf->audit.file->flush = ngx_http_mcp_auth_audit_flush_file;
    }

    return NGX_CONF_OK;
}


/*
 * {"time":"2026-12-06T17:20:01.123Z","event":"tool.call","outcome":"allowed",
 *  "reason":"","subject":"...","client_id":"...","session":"...",
 *  "tool":"...","grant_type":"","audience":"...","scope":"...",
 *  "remote_addr":"127.0.0.1",
 *  "request_id":"...","trace_id":"..."}
 *
 * Written in one pass into a buffer on the stack that holds the longest
 * line: every value is cut to NGX_HTTP_MCP_AUTH_AUDIT_FIELD bytes, and
 * escaping makes a byte at most 6 ("\u001f").
 */
void
ngx_http_mcp_auth_audit(ngx_http_request_t *r, const mcpa_event_t *ev)
{
    u_char                         *p;
    ngx_str_t                      *trace, *rid;
    ngx_http_mcp_auth_main_conf_t  *amcf;
    u_char                          line[NGX_HTTP_MCP_AUTH_AUDIT_LINE];

    if (!ev->audit) {
        return;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_mcp_auth_module);

    if (amcf->audit.file == NULL && amcf->audit.syslog == NULL) {
        return;
    }

    rid = ngx_http_mcp_auth_request_id(r);
    trace = ngx_http_mcp_auth_trace_id(r);

    p = line;

    if (amcf->audit.syslog) {
        p = ngx_syslog_add_header(amcf->audit.syslog, p);
    }

    /* a field that does not apply is left out; the names' lengths are
     * constants, so their copies are a few moves */
#define ngx_http_mcp_auth_put(name, v, len, escape)                          \
    if ((v) && (len)) {                                                      \
        p = ngx_cpymem(p, ",\"" name "\":\"", sizeof(name) + 4);             \
        p = ngx_http_mcp_auth_audit_value(p, (const u_char *) (v), len,      \
                                          escape);                           \
    }

    p = ngx_cpymem(p, "{\"time\":\"", sizeof("{\"time\":\"") - 1);
    p = ngx_http_mcp_auth_audit_time(p);
    *p++ = '"';

    /* the core's words and ids need no escaping; what clients chose does */
    ngx_http_mcp_auth_put("event", ev->name.data, ev->name.len, 0);
    ngx_http_mcp_auth_put("outcome", ev->outcome.data, ev->outcome.len, 0);
    ngx_http_mcp_auth_put("reason", ev->reason.data, ev->reason.len, 1);
    ngx_http_mcp_auth_put("subject", ev->subject.data, ev->subject.len, 1);
    ngx_http_mcp_auth_put("client_id", ev->client_id.data, ev->client_id.len,
                          1);
    ngx_http_mcp_auth_put("session", ev->session_tag.data,
                          ev->session_tag.len, 0);
    ngx_http_mcp_auth_put("tool", ev->tool.data, ev->tool.len, 1);
    ngx_http_mcp_auth_put("grant_type", ev->grant_type.data,
                          ev->grant_type.len, 1);
    ngx_http_mcp_auth_put("audience", ev->audience.data, ev->audience.len, 1);
    ngx_http_mcp_auth_put("scope", ev->scope.data, ev->scope.len, 1);
    ngx_http_mcp_auth_put("remote_addr", r->connection->addr_text.data,
                          r->connection->addr_text.len, 0);

    /* both ids are 32 hex digits: copies of a constant size, inlined */
    if (rid) {
        p = ngx_cpymem(p, ",\"request_id\":\"", sizeof(",\"request_id\":\"") - 1);
        p = ngx_cpymem(p, rid->data, 32);
        *p++ = '"';
    }

    if (trace) {
        p = ngx_cpymem(p, ",\"trace_id\":\"", sizeof(",\"trace_id\":\"") - 1);
        p = ngx_cpymem(p, trace->data, 32);
        *p++ = '"';
    }

#undef ngx_http_mcp_auth_put

    *p++ = '}';

    if (amcf->audit.syslog) {
        (void) ngx_syslog_send(amcf->audit.syslog, line, p - line);
        return;
    }

    *p++ = '\n';

    if (amcf->audit.buffer_size) {
        ngx_http_mcp_auth_audit_buffer(&amcf->audit, line, p - line);
        return;
    }

    ngx_http_mcp_auth_audit_write(amcf->audit.file, line, p - line);
}


/*
 * This worker's buffer of lines (buffer=): one per process, for the cycle
 * the process serves; written when full, by the flush= timer, before the
 * file is reopened, and at exit.
 */
static u_char          *ngx_http_mcp_auth_audit_buf;
static size_t           ngx_http_mcp_auth_audit_len;
static ngx_open_file_t *ngx_http_mcp_auth_audit_file;
static ngx_event_t      ngx_http_mcp_auth_audit_timer;


static void
ngx_http_mcp_auth_audit_buffer(ngx_http_mcp_auth_audit_t *audit, u_char *line,
    size_t len)
{
    ngx_event_t  *ev;

    if (ngx_http_mcp_auth_audit_buf == NULL) {
        ngx_http_mcp_auth_audit_buf = ngx_alloc(audit->buffer_size,
                                                ngx_cycle->log);
        if (ngx_http_mcp_auth_audit_buf == NULL) {
            ngx_http_mcp_auth_audit_write(audit->file, line, len);
            return;
        }

        ngx_http_mcp_auth_audit_file = audit->file;

        ev = &ngx_http_mcp_auth_audit_timer;
        ev->handler = ngx_http_mcp_auth_audit_flush_timer;
        ev->log = ngx_cycle->log;
        ev->data = audit;
        ev->cancelable = 1;
    }

    if (ngx_http_mcp_auth_audit_len + len > audit->buffer_size) {
        ngx_http_mcp_auth_audit_flush();
    }

    ngx_memcpy(ngx_http_mcp_auth_audit_buf + ngx_http_mcp_auth_audit_len,
               line, len);
    ngx_http_mcp_auth_audit_len += len;

    if (!ngx_http_mcp_auth_audit_timer.timer_set) {
        ngx_add_timer(&ngx_http_mcp_auth_audit_timer, audit->flush);
    }
}


static void
ngx_http_mcp_auth_audit_flush(void)
{
    if (ngx_http_mcp_auth_audit_len) {
        ngx_http_mcp_auth_audit_write(ngx_http_mcp_auth_audit_file,
                                      ngx_http_mcp_auth_audit_buf,
                                      ngx_http_mcp_auth_audit_len);
        ngx_http_mcp_auth_audit_len = 0;
    }

    if (ngx_http_mcp_auth_audit_timer.timer_set) {
        ngx_del_timer(&ngx_http_mcp_auth_audit_timer);
    }
}


static void
ngx_http_mcp_auth_audit_flush_timer(ngx_event_t *ev)
{
    ngx_http_mcp_auth_audit_flush();
}


static void
ngx_http_mcp_auth_audit_flush_file(ngx_open_file_t *file, ngx_log_t *log)
{
    if (file == ngx_http_mcp_auth_audit_file) {
        ngx_http_mcp_auth_audit_flush();
    }
}


void
ngx_http_mcp_auth_audit_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mcp_auth_audit_flush();
}


static void
ngx_http_mcp_auth_audit_write(ngx_open_file_t *file, u_char *data, size_t len)
{
    ssize_t  n;

    n = ngx_write_fd(file->fd, data, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      ngx_write_fd_n " to the audit log \"%s\" failed "
                      "(%z of %uz)", file->name.data, n, len);
    }
}


/* A value and its closing quote: cut, and JSON-escaped while copied. */
static u_char *
ngx_http_mcp_auth_audit_value(u_char *p, const u_char *v, size_t len,
    ngx_uint_t escape)
{
    u_char         c;
    const u_char  *end;

    static u_char  hex[] = "0123456789abcdef";

    if (len > NGX_HTTP_MCP_AUTH_AUDIT_FIELD) {
        len = NGX_HTTP_MCP_AUTH_AUDIT_FIELD;
    }

    if (!escape || !ngx_http_mcp_auth_needs_escape(v, len)) {
        p = ngx_cpymem(p, v, len);
        *p++ = '"';
        return p;
    }

    for (end = v + len; v < end; v++) {
        c = *v;

        if (ngx_http_mcp_auth_plain[c]) {
            *p++ = c;
            continue;
        }

        *p++ = '\\';

        switch (c) {
        case '"':
        case '\\':
            *p++ = c;
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
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
 * Ids for requests and traces: 128 bits from a per-worker xoshiro256**
 * generator seeded from RAND_bytes(), not RAND_bytes() itself, which costs
 * some 6,000 instructions a call; they are for correlation, not secrets.
 */
static uint64_t  ngx_http_mcp_auth_rng[4];
static ngx_pid_t  ngx_http_mcp_auth_rng_pid;


static uint64_t
ngx_http_mcp_auth_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


static uint64_t
ngx_http_mcp_auth_random(void)
{
    uint64_t  *s = ngx_http_mcp_auth_rng;
    uint64_t   result, t;

    if (ngx_http_mcp_auth_rng_pid != ngx_pid) {
        /* each process its own sequence: never the master's, copied */
        if (RAND_bytes((u_char *) s, sizeof(ngx_http_mcp_auth_rng)) != 1) {
            s[0] = (uint64_t) ngx_time() ^ ((uint64_t) ngx_pid << 32);
            s[1] = (uint64_t) ngx_random();
            s[2] = (uint64_t) (uintptr_t) s;
            s[3] = ~s[0];
        }

        ngx_http_mcp_auth_rng_pid = ngx_pid;
    }

    result = ngx_http_mcp_auth_rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ngx_http_mcp_auth_rotl(s[3], 45);

    return result;
}


/* 8n random bytes as 16n lowercase hex digits, never all zeros */
static void
ngx_http_mcp_auth_random_hex(u_char *p, size_t n)
{
    size_t     i, j;
    uint64_t   v;

    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < n; i++) {
        do {
            v = ngx_http_mcp_auth_random();
        } while (v == 0);

        for (j = 16; j--; v >>= 4) {
            p[16 * i + j] = hex[v & 0xf];
        }
    }
}


/* $mcp_auth_request_id: 32 hex digits, the request's own id. */
ngx_str_t *
ngx_http_mcp_auth_request_id(ngx_http_request_t *r)
{
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_mcp_auth_ctx(r->main);
    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->trace.request_id.len == 0) {
        ngx_http_mcp_auth_random_hex(ctx->trace.id, 2);
        ctx->trace.request_id.data = ctx->trace.id;
        ctx->trace.request_id.len = 32;
    }

    return &ctx->trace.request_id;
}


/*
 * The request's trace context (W3C Trace Context, version 00): the trace id
 * of a valid traceparent the client sent, or a new one (the request's id),
 * and this hop's own parent id, so the tool server and the provider see the
 * gateway as the caller.  Worked out once per request.
 */
ngx_str_t *
ngx_http_mcp_auth_traceparent(ngx_http_request_t *r)
{
    u_char                   *p;
    ngx_str_t                *rid;
    ngx_uint_t                i;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h, *seen;
    ngx_http_mcp_auth_ctx_t  *ctx;

    ctx = ngx_http_mcp_auth_ctx(r->main);
    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->trace.traceparent.len) {
        return &ctx->trace.traceparent;
    }

    r = r->main;

    p = ctx->trace.buf;      /* 00-TRACE_ID-PARENT_ID-FLAGS */
    p[0] = '0';
    p[1] = '0';
    p[2] = '-';
    p[35] = '-';
    p[52] = '-';
    p[53] = '0';
    p[54] = '0';

    /* one valid header, version 00 exactly, with a trace id and a parent
     * id not all zeros; two headers are no valid one (W3C: as if absent) */
    part = NULL;
    seen = NULL;

    while ((h = ngx_http_mcp_auth_next_header(&r->headers_in.headers, &part,
                                              &i)))
    {
        if (h->key.len == sizeof("traceparent") - 1
            && ngx_strncasecmp(h->key.data, (u_char *) "traceparent",
                               h->key.len) == 0)
        {
            if (seen) {
                seen = NULL;
                break;
            }

            seen = h;
        }
    }

    if (seen
        && seen->value.len == 55
        && seen->value.data[0] == '0' && seen->value.data[1] == '0'
        && seen->value.data[2] == '-' && seen->value.data[35] == '-'
        && seen->value.data[52] == '-'
        && ngx_http_mcp_auth_hex(seen->value.data + 3, 32) == 1
        && ngx_http_mcp_auth_hex(seen->value.data + 36, 16) == 1
        && ngx_http_mcp_auth_hex(seen->value.data + 53, 2) != 0)
    {
        ngx_memcpy(p + 3, seen->value.data + 3, 32);
        p[53] = seen->value.data[53];
        p[54] = seen->value.data[54];
        ctx->trace.from_client = 1;
    }

    if (!ctx->trace.from_client) {
        rid = ngx_http_mcp_auth_request_id(r);
        ngx_memcpy(p + 3, rid->data, 32);
    }

    /* this hop's parent id */
    ngx_http_mcp_auth_random_hex(p + 36, 1);

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


/*
 * Whether any byte needs escaping in JSON (a control character, '"', '\\'),
 * eight bytes at a time: a byte below 0x20, or equal to one of the two,
 * sets its high bit in the masks below (the "has zero byte" trick).
 */
static ngx_uint_t
ngx_http_mcp_auth_needs_escape(const u_char *p, size_t n)
{
    uint64_t  w, q, b;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  high = 0x8080808080808080ULL;

    for ( /* void */ ; n >= 8; p += 8, n -= 8) {
        ngx_memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');

        if ((((w - ones * 0x20) & ~w)
             | ((q - ones) & ~q)
             | ((b - ones) & ~b)) & high)
        {
            return 1;
        }
    }

    for ( /* void */ ; n; p++, n--) {
        if (!ngx_http_mcp_auth_plain[*p]) {
            return 1;
        }
    }

    return 0;
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
