/*
 * ngx_http_mcp_auth_state.c -- the state file of a zone (mcp_auth_zone ...
 * state=): its entries, sealed with the key file's keys, loaded when the
 * zone is made and saved on a timer by the first worker, and at exit; the
 * module's process hooks, which do just that.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


/* A growable buffer the core's sinks append to (process memory). */
typedef struct {
    u_char                     *data;
    size_t                      len;
    ngx_uint_t                  failed;
} ngx_http_mcp_auth_buf_t;


/*
 * The state file's plaintext: a magic line, then entries.  Version 1:
 * key length (2 bytes), value length (4), expiry (8), key, value.
 * Version 2 adds a class byte (1: unauthenticated) after the expiry and
 * writes the unauthenticated entries last, oldest first, so that they load
 * in the order they were made.
 */
#define NGX_HTTP_MCP_AUTH_STATE_MAGIC_V1  "MCPAST1\n"
#define NGX_HTTP_MCP_AUTH_STATE_MAGIC     "MCPAST2\n"
#define NGX_HTTP_MCP_AUTH_STATE_HEAD_V1   14
#define NGX_HTTP_MCP_AUTH_STATE_HEAD      15


static void ngx_http_mcp_auth_buf_sink(void *ctx, const char *data,
    size_t len);
static u_char *ngx_http_mcp_auth_state_entry(u_char *p,
    ngx_http_mcp_auth_node_t *an);
static void ngx_http_mcp_auth_save_state(ngx_http_mcp_auth_zone_t *zone,
    ngx_log_t *log);
static void ngx_http_mcp_auth_save_handler(ngx_event_t *ev);
static void ngx_http_mcp_auth_save_all(ngx_cycle_t *cycle);
static ngx_http_mcp_auth_zone_t *ngx_http_mcp_auth_next_state_zone(
    ngx_cycle_t *cycle, ngx_list_part_t **part, ngx_uint_t *i);


static void
ngx_http_mcp_auth_buf_sink(void *ctx, const char *data, size_t len)
{
    ngx_http_mcp_auth_buf_t *buf = ctx;

    u_char  *p;

    p = realloc(buf->data, buf->len + len + 1);
    if (p == NULL) {
        buf->failed = 1;
        return;
    }

    ngx_memcpy(p + buf->len, data, len);
    buf->data = p;
    buf->len += len;
}


/*
 * Never fatal: a missing file is a first start; an unreadable, corrupt or
 * foreign one is reported and nginx starts with an empty zone.
 */
void
ngx_http_mcp_auth_load_state(ngx_http_mcp_auth_zone_t *zone, ngx_log_t *log)
{
    u_char                   *p, *end;
    size_t                    size;
    ssize_t                   n;
    int                       rc, mode;
    int64_t                   expires, now;
    uint16_t                  klen;
    uint32_t                  vlen;
    ngx_fd_t                  fd;
    ngx_uint_t                loaded, unauth, dropped, evicted, head;
    mcpa_str_t                key, value, sealed, none;
    ngx_file_info_t           fi;
    ngx_http_mcp_auth_buf_t   file, plain;

    if (zone->keys == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mcp_auth: state file \"%V\" needs a location with "
                      "\"mcp_auth_key_file\" using this zone; not loaded",
                      &zone->state_file);
        return;
    }

    fd = ngx_open_file(zone->state_file.data, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "mcp_auth: cannot open state file \"%V\"; "
                          "starting empty", &zone->state_file);
        }
        return;
    }

    ngx_memzero(&file, sizeof(file));
    ngx_memzero(&plain, sizeof(plain));

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        goto unreadable;
    }

    size = (size_t) ngx_file_size(&fi);

    file.data = malloc(size + 1);
    if (file.data == NULL) {
        goto unreadable;
    }

    n = read(fd, file.data, size);
    if (n != (ssize_t) size) {
        goto unreadable;
    }

    file.len = size;

    sealed.data = (const char *) file.data;
    sealed.len = file.len;

    /* tolerate the trailing newline of a hand-copied file */
    while (sealed.len && (sealed.data[sealed.len - 1] == '\n'
                          || sealed.data[sealed.len - 1] == '\r'))
    {
        sealed.len--;
    }

    if (mcpa_state_open(zone->keys, sealed, ngx_http_mcp_auth_buf_sink,
                        &plain)
        != MCPA_OK || plain.failed)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mcp_auth: state file \"%V\" is corrupt, truncated or "
                      "sealed with an unknown key; starting empty",
                      &zone->state_file);
        goto done;
    }

    p = plain.data;
    end = plain.data + plain.len;

    /* this version, or the one before (entries without their class) */
    if (plain.len >= sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC) - 1
        && ngx_memcmp(p, NGX_HTTP_MCP_AUTH_STATE_MAGIC,
                      sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC) - 1) == 0)
    {
        head = NGX_HTTP_MCP_AUTH_STATE_HEAD;

    } else if (plain.len >= sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC_V1) - 1
               && ngx_memcmp(p, NGX_HTTP_MCP_AUTH_STATE_MAGIC_V1,
                             sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC_V1) - 1)
                  == 0)
    {
        head = NGX_HTTP_MCP_AUTH_STATE_HEAD_V1;

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mcp_auth: state file \"%V\" has an unknown format; "
                      "starting empty", &zone->state_file);
        goto done;
    }

    p += sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC) - 1;      /* both 8 bytes */

    now = (int64_t) ngx_time();
    loaded = 0;
    unauth = 0;
    dropped = 0;
    evicted = zone->sh->evicted;
    none.data = NULL;
    none.len = 0;

    while (p < end) {
        if ((size_t) (end - p) < head) {
            goto corrupt;
        }

        ngx_memcpy(&klen, p, 2);
        ngx_memcpy(&vlen, p + 2, 4);
        ngx_memcpy(&expires, p + 6, 8);

        if (head == NGX_HTTP_MCP_AUTH_STATE_HEAD) {
            if (p[14] > 1) {
                goto corrupt;
            }

            mode = p[14] ? MCPA_PUT_UNAUTHENTICATED : 0;

        } else {
            mode = 0;
        }

        p += head;

        if ((size_t) (end - p) < (size_t) klen + vlen) {
            goto corrupt;
        }

        key.data = (const char *) p;
        key.len = klen;
        value.data = (const char *) p + klen;
        value.len = vlen;
        p += klen + vlen;

        if (expires <= now) {
            continue;
        }

        /*
         * A file of version 1 does not say who made an entry: all are
         * normal but the two kinds the core makes unauthenticated (its
         * registrations not yet used for a login, and fetched client
         * metadata documents), which start within their budget now.
         */
        if (head == NGX_HTTP_MCP_AUTH_STATE_HEAD_V1
            && ((klen >= 10 && ngx_strncmp(key.data, "newclient:", 10) == 0)
                || (klen >= 5 && ngx_strncmp(key.data, "cimd:", 5) == 0)))
        {
            mode = MCPA_PUT_UNAUTHENTICATED;
        }

        rc = ngx_http_mcp_auth_store_put(zone, key, value, expires,
                                         MCPA_PUT_SET | mode, none);

        if (rc != MCPA_OK) {
            if (mode) {
                /* larger than their whole budget: not kept, like an
                 * eviction */
                dropped++;
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "mcp_auth: zone too small for state file \"%V\"; "
                          "loaded %ui entries", &zone->state_file, loaded);
            goto done;
        }

        loaded++;

        if (mode) {
            unauth++;
        }
    }

    zone->sh->changes = 0;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "mcp_auth: loaded %ui entries from state file \"%V\" "
                  "(%ui unauthenticated; %ui evicted or dropped to keep "
                  "within their budget)",
                  loaded, &zone->state_file, unauth,
                  zone->sh->evicted - evicted + dropped);
    goto done;

corrupt:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "mcp_auth: state file \"%V\" ends in the middle of an "
                  "entry; kept %ui entries before it",
                  &zone->state_file, loaded);
    goto done;

unreadable:

    ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                  "mcp_auth: cannot read state file \"%V\"; starting empty",
                  &zone->state_file);

done:

    if (plain.data) {
        ngx_explicit_memzero(plain.data, plain.len);
        free(plain.data);
    }

    free(file.data);
    ngx_close_file(fd);
}


/* One entry of the state file (version 2), at p; returns its end. */
static u_char *
ngx_http_mcp_auth_state_entry(u_char *p, ngx_http_mcp_auth_node_t *an)
{
    uint16_t  klen;

    klen = an->key_len;
    p = ngx_cpymem(p, &klen, 2);
    p = ngx_cpymem(p, &an->value_len, 4);
    p = ngx_cpymem(p, &an->expires, 8);
    *p++ = (an->flags & NGX_HTTP_MCP_AUTH_UNAUTH) ? 1 : 0;

    return ngx_cpymem(p, an->data, an->key_len + an->value_len);
}


/*
 * Writes the live entries, sealed, to "<file>.<pid>.tmp", then renames it
 * over the file: a crash or a full disk leaves the previous file intact.
 */
static void
ngx_http_mcp_auth_save_state(ngx_http_mcp_auth_zone_t *zone, ngx_log_t *log)
{
    u_char                    *p, tmp[NGX_MAX_PATH];
    size_t                     size;
    int64_t                    now;
    ssize_t                    n;
    ngx_fd_t                   fd;
    ngx_uint_t                 changes;
    mcpa_str_t                 plain;
    ngx_queue_t               *q;
    ngx_http_mcp_auth_buf_t    sealed, snapshot;
    ngx_http_mcp_auth_node_t  *an;

    if (zone->keys == NULL || zone->sh == NULL) {
        return;
    }

    ngx_memzero(&sealed, sizeof(sealed));
    ngx_memzero(&snapshot, sizeof(snapshot));

    now = (int64_t) ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    changes = zone->sh->changes;

    if (changes == zone->saved) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    size = sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC) - 1;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        an = ngx_queue_data(q, ngx_http_mcp_auth_node_t, queue);
        size += NGX_HTTP_MCP_AUTH_STATE_HEAD + an->key_len + an->value_len;
    }

    snapshot.data = malloc(size);
    if (snapshot.data == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    p = ngx_cpymem(snapshot.data, NGX_HTTP_MCP_AUTH_STATE_MAGIC,
                   sizeof(NGX_HTTP_MCP_AUTH_STATE_MAGIC) - 1);

    /* the normal entries, then the unauthenticated ones oldest first: they
     * are loaded back in the order they were made */

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        an = ngx_queue_data(q, ngx_http_mcp_auth_node_t, queue);

        if (an->expires > now && !(an->flags & NGX_HTTP_MCP_AUTH_UNAUTH)) {
            p = ngx_http_mcp_auth_state_entry(p, an);
        }
    }

    for (q = ngx_queue_last(&zone->sh->unauth);
         q != ngx_queue_sentinel(&zone->sh->unauth);
         q = ngx_queue_prev(q))
    {
        an = ngx_http_mcp_auth_node_of(
                 ngx_queue_data(q, ngx_http_mcp_auth_unauth_t, queue));

        if (an->expires > now) {
            p = ngx_http_mcp_auth_state_entry(p, an);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    snapshot.len = p - snapshot.data;

    plain.data = (const char *) snapshot.data;
    plain.len = snapshot.len;

    if (mcpa_state_seal(zone->keys, plain, ngx_http_mcp_auth_buf_sink,
                        &sealed)
        != MCPA_OK || sealed.failed)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "mcp_auth: cannot seal state for \"%V\"",
                      &zone->state_file);
        goto done;
    }

    if (zone->state_file.len + NGX_INT_T_LEN + sizeof("..tmp")
        > NGX_MAX_PATH)
    {
        goto done;
    }

    ngx_sprintf(tmp, "%V.%P.tmp%Z", &zone->state_file, ngx_pid);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "mcp_auth: cannot write state file \"%s\"", tmp);
        goto done;
    }

    n = write(fd, sealed.data, sealed.len);

    if (n != (ssize_t) sealed.len || fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "mcp_auth: cannot write state file \"%s\" "
                      "(disk full?); the previous one is kept", tmp);
        ngx_close_file(fd);
        ngx_delete_file(tmp);
        goto done;
    }

    ngx_close_file(fd);

    if (ngx_rename_file(tmp, zone->state_file.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "mcp_auth: cannot rename \"%s\" to \"%V\"",
                      tmp, &zone->state_file);
        ngx_delete_file(tmp);
        goto done;
    }

    zone->saved = changes;

done:

    if (snapshot.data) {
        ngx_explicit_memzero(snapshot.data, snapshot.len);
        free(snapshot.data);
    }

    free(sealed.data);
}


static void
ngx_http_mcp_auth_save_handler(ngx_event_t *ev)
{
    ngx_http_mcp_auth_zone_t  *zone = ev->data;

    ngx_http_mcp_auth_save_state(zone, ev->log);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, zone->state_interval);
    }
}


/* One worker keeps the state file: the first one. */
ngx_int_t
ngx_http_mcp_auth_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_list_part_t           *part;
    ngx_http_mcp_auth_zone_t  *zone;

    ngx_http_mcp_auth_metrics_init_process(cycle);

    if (ngx_process == NGX_PROCESS_WORKER && ngx_worker != 0) {
        return NGX_OK;
    }

    part = NULL;

    while ((zone = ngx_http_mcp_auth_next_state_zone(cycle, &part, &i))) {
        zone->save_event.handler = ngx_http_mcp_auth_save_handler;
        zone->save_event.data = zone;
        zone->save_event.log = cycle->log;
        zone->save_event.cancelable = 1;

        ngx_add_timer(&zone->save_event, zone->state_interval);
    }

    return NGX_OK;
}


void
ngx_http_mcp_auth_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_mcp_auth_audit_exit_process(cycle);

    if (ngx_process == NGX_PROCESS_WORKER && ngx_worker != 0) {
        return;
    }

    ngx_http_mcp_auth_save_all(cycle);
}


/*
 * On shutdown worker 0 saves as it exits, but the other workers may still
 * be finishing requests (a login waiting on the provider, a refresh) that
 * change the zone: the master, which exits after all of them, saves last.
 */
void
ngx_http_mcp_auth_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_mcp_auth_save_all(cycle);
}


static void
ngx_http_mcp_auth_save_all(ngx_cycle_t *cycle)
{
    ngx_uint_t                 i;
    ngx_list_part_t           *part;
    ngx_http_mcp_auth_zone_t  *zone;

    part = NULL;

    while ((zone = ngx_http_mcp_auth_next_state_zone(cycle, &part, &i))) {
        ngx_http_mcp_auth_save_state(zone, cycle->log);
    }
}


/* Our zones that keep a state file, one per call; start with *part NULL. */
static ngx_http_mcp_auth_zone_t *
ngx_http_mcp_auth_next_state_zone(ngx_cycle_t *cycle, ngx_list_part_t **part,
    ngx_uint_t *i)
{
    ngx_shm_zone_t            *shm_zone;
    ngx_http_mcp_auth_zone_t  *zone;

    if (*part == NULL) {
        *part = &cycle->shared_memory.part;
        *i = 0;
    }

    for ( ;; ) {

        if (*i >= (*part)->nelts) {
            if ((*part)->next == NULL) {
                return NULL;
            }

            *part = (*part)->next;
            *i = 0;
            continue;
        }

        shm_zone = (ngx_shm_zone_t *) (*part)->elts + (*i)++;

        if (shm_zone->tag != &ngx_http_mcp_auth_module) {
            continue;
        }

        zone = shm_zone->data;

        if (zone->state_file.len) {
            return zone;
        }
    }
}
