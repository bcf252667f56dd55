/*
 * ngx_http_mcp_auth_zone.c -- the shared-memory store (mcp_auth_zone): the
 * entries of a zone, found through its hash index (src/zone_index.h), with
 * the sweep of expired entries and the budget of unauthenticated ones; the
 * core's get/put/del/prefetch on it; the zone made, and its directive.
 * The state file that keeps a zone across restarts is
 * ngx_http_mcp_auth_state.c; the Redis store, ngx_http_mcp_auth_redis.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_mcp_auth.h"


/* the default budget of unauthenticated entries: a quarter of the zone */
#define NGX_HTTP_MCP_AUTH_UNAUTH_PERCENT  25


/*
 * The work a write that finds no room may do under the lock, so that a
 * full zone (which a flood makes of every write) costs each write a few
 * microseconds, never a walk of all the entries: up to SWEEP_MAX entries
 * of the main queue looked at (the expired among them dropped), then up to
 * EVICT_MAX of the oldest unauthenticated entries evicted, one at a time
 * until the allocation succeeds.  Then MCPA_FULL (a 503 with Retry-After).
 * Expired entries are still all reclaimed in time: every write looks at
 * SWEEP_STEP entries, in turn, and every lookup drops what it finds
 * expired.
 */
#define NGX_HTTP_MCP_AUTH_SWEEP_STEP      2
#define NGX_HTTP_MCP_AUTH_SWEEP_MAX       64
#define NGX_HTTP_MCP_AUTH_EVICT_MAX       256


/* an entry's place in the zone in the index's 8-byte units, and back */
#define ngx_http_mcp_auth_off(zone, an)                                      \
    ((uint32_t) (((u_char *) (an) - (u_char *) (zone)->shpool) >> 3))
#define ngx_http_mcp_auth_at(base, off)                                      \
    ((ngx_http_mcp_auth_node_t *) ((u_char *) (base) + ((size_t) (off) << 3)))


static ngx_http_mcp_auth_node_t *ngx_http_mcp_auth_lookup(
    ngx_http_mcp_auth_zone_t *zone, mcpa_str_t *key, uint64_t hash);
static void ngx_http_mcp_auth_delete(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_node_t *node);
static size_t ngx_http_mcp_auth_slab_size(size_t size);
static size_t ngx_http_mcp_auth_charge(size_t key_len, size_t value_len);
static ngx_int_t ngx_http_mcp_auth_evict(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_node_t **an);
static void ngx_http_mcp_auth_sweep(ngx_http_mcp_auth_zone_t *zone,
    ngx_uint_t n);
static uint64_t ngx_http_mcp_auth_key_hash(ngx_http_mcp_auth_zone_t *zone,
    mcpa_str_t key);
static void ngx_http_mcp_auth_discard(void *ctx, const char *data,
    size_t len);
static ngx_int_t ngx_http_mcp_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_mcp_auth_random(void *buf, size_t len,
    ngx_log_t *log);


static int
ngx_http_mcp_auth_same_key(const unsigned char *base, uint32_t off,
    const void *key, size_t len)
{
    ngx_http_mcp_auth_node_t  *an;

    an = ngx_http_mcp_auth_at(base, off);

    return an->key_len == len && ngx_memcmp(an->data, key, len) == 0;
}


static uint32_t
ngx_http_mcp_auth_home(const unsigned char *base, uint32_t off)
{
    return ngx_http_mcp_auth_at(base, off)->hash;
}


static ngx_http_mcp_auth_node_t *
ngx_http_mcp_auth_lookup(ngx_http_mcp_auth_zone_t *zone, mcpa_str_t *key,
    uint64_t hash)
{
    int64_t                    i;
    u_char                    *base;
    ngx_http_mcp_auth_node_t  *an;

    base = (u_char *) zone->shpool;

    i = mcpa_zindex_find(&zone->sh->index, base, hash, key->data, key->len,
                         ngx_http_mcp_auth_same_key);
    if (i < 0) {
        return NULL;
    }

    an = ngx_http_mcp_auth_at(base, zone->sh->index.slots[i].node);

    if (an->expires <= (int64_t) ngx_time()) {
        ngx_http_mcp_auth_delete(zone, an);
        return NULL;
    }

    return an;
}


static void
ngx_http_mcp_auth_delete(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_node_t *an)
{
    int64_t                      i;
    ngx_http_mcp_auth_unauth_t  *u;

    i = mcpa_zindex_slot_of(&zone->sh->index, an->hash,
                            ngx_http_mcp_auth_off(zone, an));

    if (i >= 0) {
        mcpa_zindex_remove(&zone->sh->index, (u_char *) zone->shpool,
                           (uint32_t) i, ngx_http_mcp_auth_home);
    }

    ngx_queue_remove(&an->queue);

    if (an->flags & NGX_HTTP_MCP_AUTH_UNAUTH) {
        u = ngx_http_mcp_auth_unauth_of(an);
        ngx_queue_remove(&u->queue);
        zone->sh->unauth_count--;
        zone->sh->unauth_bytes -= ngx_http_mcp_auth_charge(an->key_len,
                                                           an->value_len);
        ngx_slab_free_locked(zone->shpool, u);

    } else {
        ngx_slab_free_locked(zone->shpool, an);
    }

    zone->sh->count--;
    zone->sh->changes++;
}


/*
 * What an allocation of size bytes takes from the slab (ngx_slab.c): up to
 * half a page, the power of two that holds it (8 bytes at least); beyond,
 * whole pages.
 */
static size_t
ngx_http_mcp_auth_slab_size(size_t size)
{
    size_t  s;

    if (size > ngx_pagesize / 2) {
        return ngx_align(size, ngx_pagesize);
    }

    for (s = 8; s < size; s <<= 1) { /* void */ }

    return s;
}


/*
 * The bytes an unauthenticated entry counts against its budget: exactly
 * what its allocation takes from the zone (the link in front, the node's
 * header, the key and the value, rounded up as the slab rounds them).
 */
static size_t
ngx_http_mcp_auth_charge(size_t key_len, size_t value_len)
{
    return ngx_http_mcp_auth_slab_size(sizeof(ngx_http_mcp_auth_unauth_t)
                                       + offsetof(ngx_http_mcp_auth_node_t,
                                                  data)
                                       + key_len + value_len);
}


/*
 * Drops the oldest unauthenticated entry; *an is cleared when it was that
 * entry.  NGX_DECLINED when there is none.  A live entry dropped counts as
 * evicted; an expired one was only waiting for the sweep.
 */
static ngx_int_t
ngx_http_mcp_auth_evict(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_node_t **an)
{
    ngx_queue_t               *q;
    ngx_http_mcp_auth_node_t  *oldest;

    if (ngx_queue_empty(&zone->sh->unauth)) {
        return NGX_DECLINED;
    }

    q = ngx_queue_last(&zone->sh->unauth);
    oldest = ngx_http_mcp_auth_node_of(
                 ngx_queue_data(q, ngx_http_mcp_auth_unauth_t, queue));

    if (oldest == *an) {
        *an = NULL;
    }

    if (oldest->expires > (int64_t) ngx_time()) {
        zone->sh->evicted++;
    }

    ngx_http_mcp_auth_delete(zone, oldest);

    return NGX_OK;
}


/*
 * Entries live for very different times (a code a minute, a session a
 * month), so the queue is not ordered by expiry: each write looks at a few
 * entries at the tail, drops the expired ones and moves the others to the
 * head, so that every entry is looked at in turn.
 */
static void
ngx_http_mcp_auth_sweep(ngx_http_mcp_auth_zone_t *zone, ngx_uint_t n)
{
    int64_t                    now;
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    ngx_http_mcp_auth_node_t  *an;

    now = (int64_t) ngx_time();

    for (i = 0; i < n; i++) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&zone->sh->queue);
        an = ngx_queue_data(q, ngx_http_mcp_auth_node_t, queue);

        if (an->expires <= now) {
            ngx_http_mcp_auth_delete(zone, an);
            continue;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_head(&zone->sh->queue, q);
    }
}


/*
 * The key's home slot in the index starts loading from memory (in a large
 * zone it is a cache and a TLB miss) while the guard reads the body; get()
 * then finds it close at hand.  The hash key, the mask and the slots' place
 * are set once, when the zone is made: nothing here needs the lock, and a
 * prefetch reads nothing.
 */
void
ngx_http_mcp_auth_store_prefetch(void *data, mcpa_str_t key)
{
    ngx_http_mcp_auth_zone_t *zone = data;

    uint64_t        hash;
    mcpa_zindex_t  *ix;

    ix = &zone->sh->index;
    hash = mcpa_zindex_hash(ix, key.data, key.len);

    __builtin_prefetch(&ix->slots[(uint32_t) hash & ix->mask]);

    if (key.len <= sizeof(zone->prefetched)) {
        ngx_memcpy(zone->prefetched, key.data, key.len);
        zone->prefetched_len = key.len;
        zone->prefetched_hash = hash;
    }
}


/* The key's hash in the index: the hash key is set once, when the zone is
 * made, so no lock is needed. */
static uint64_t
ngx_http_mcp_auth_key_hash(ngx_http_mcp_auth_zone_t *zone, mcpa_str_t key)
{
    if (key.len != 0 && key.len == zone->prefetched_len
        && ngx_memcmp(zone->prefetched, key.data, key.len) == 0)
    {
        return zone->prefetched_hash;
    }

    return mcpa_zindex_hash(&zone->sh->index, key.data, key.len);
}


int
ngx_http_mcp_auth_store_get(void *data, mcpa_str_t key, int take,
    mcpa_sink_pt sink, void *sink_ctx)
{
    ngx_http_mcp_auth_zone_t *zone = data;

    uint64_t                   hash;
    ngx_http_mcp_auth_node_t  *an;

    hash = ngx_http_mcp_auth_key_hash(zone, key);

    ngx_shmtx_lock(&zone->shpool->mutex);
    an = ngx_http_mcp_auth_lookup(zone, &key, hash);

    if (an == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return MCPA_NOT_FOUND;
    }

    /* the sink only copies into process memory: no I/O under the lock */
    sink(sink_ctx, (const char *) an->data + an->key_len, an->value_len);

    if (take) {
        ngx_http_mcp_auth_delete(zone, an);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return MCPA_OK;
}


/*
 * mode is MCPA_PUT_SET, _NEW or _REPLACE_IF, with MCPA_PUT_UNAUTHENTICATED
 * for an entry that counts against the budget of unauthenticated entries.
 */
int
ngx_http_mcp_auth_store_put(void *data, mcpa_str_t key, mcpa_str_t value,
    int64_t expires, int mode, mcpa_str_t expect)
{
    ngx_http_mcp_auth_zone_t *zone = data;

    size_t                       size, charge, used;
    u_char                      *p;
    uint64_t                     hash;
    ngx_uint_t                   flags, tries;
    ngx_http_mcp_auth_node_t    *an, *node;
    ngx_http_mcp_auth_unauth_t  *u;

    if (key.len > 65535 || value.len > 0xffffffff) {
        return MCPA_ERROR;
    }

    flags = (mode & MCPA_PUT_UNAUTHENTICATED) ? NGX_HTTP_MCP_AUTH_UNAUTH : 0;
    mode &= MCPA_PUT_MODE_MASK;

    size = offsetof(ngx_http_mcp_auth_node_t, data) + key.len + value.len;
    charge = 0;

    if (flags) {
        size += sizeof(ngx_http_mcp_auth_unauth_t);
        charge = ngx_http_mcp_auth_charge(key.len, value.len);

        if (charge > zone->unauth_budget) {
            /* evicting every other one would not make room */
            ngx_http_mcp_auth_observe(MCPA_M_STORE_ERROR, MCPA_FULL, 0);
            return MCPA_FULL;
        }
    }

    /* the hash key is set once, when the zone is made: no lock needed */
    hash = mcpa_zindex_hash(&zone->sh->index, key.data, key.len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_mcp_auth_sweep(zone, NGX_HTTP_MCP_AUTH_SWEEP_STEP);

    an = ngx_http_mcp_auth_lookup(zone, &key, hash);

    switch (mode) {

    case MCPA_PUT_NEW:
        if (an) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return MCPA_EXISTS;
        }
        break;

    case MCPA_PUT_REPLACE_IF:
        if (an == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return MCPA_NOT_FOUND;
        }

        if (an->value_len != expect.len
            || ngx_memcmp(an->data + an->key_len, expect.data, expect.len)
               != 0)
        {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return MCPA_CONFLICT;
        }
        break;

    default: /* MCPA_PUT_SET */
        break;
    }

    if (an && an->value_len == value.len
        && (an->flags & NGX_HTTP_MCP_AUTH_UNAUTH) == flags)
    {
        /* same size, same class: overwrite in place (an unauthenticated
         * entry keeps its place in the order, and its charge) */
        ngx_memcpy(an->data + an->key_len, value.data, value.len);
        an->expires = expires;
        zone->sh->changes++;
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return MCPA_OK;
    }

    if (flags) {
        /*
         * The budget: the oldest unauthenticated entries make room.  The
         * entry this one replaces goes anyway, so it does not count.  Ends:
         * charge <= the budget, and every eviction lowers what is used; the
         * number of evictions is at most this entry's size over the
         * smallest entry's.
         */
        for ( ;; ) {
            used = zone->sh->unauth_bytes;

            if (an && (an->flags & NGX_HTTP_MCP_AUTH_UNAUTH)) {
                used -= ngx_http_mcp_auth_charge(an->key_len, an->value_len);
            }

            if (used + charge <= zone->unauth_budget
                || ngx_http_mcp_auth_evict(zone, &an) != NGX_OK)
            {
                break;
            }
        }
    }

    /*
     * Memory (or, for a new key, an index slot): when there is none, the
     * bounded work described at NGX_HTTP_MCP_AUTH_SWEEP_MAX, then "full".
     * Normal entries are never evicted.
     */
    node = NULL;

    for (tries = 0; /* void */; tries++) {

        if (an || zone->sh->index.used < zone->sh->index.limit) {
            node = ngx_slab_alloc_locked(zone->shpool, size);
            if (node) {
                break;
            }
        }

        if (tries == 0) {
            ngx_http_mcp_auth_sweep(zone, NGX_HTTP_MCP_AUTH_SWEEP_MAX);
            continue;
        }

        if (tries > NGX_HTTP_MCP_AUTH_EVICT_MAX
            || ngx_http_mcp_auth_evict(zone, &an) != NGX_OK)
        {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            ngx_http_mcp_auth_observe(MCPA_M_STORE_ERROR, MCPA_FULL, 0);
            return MCPA_FULL;
        }
    }

    if (tries) {
        /* the sweep may have dropped the entry found (it expired) */
        an = ngx_http_mcp_auth_lookup(zone, &key, hash);
    }

    if (an) {
        ngx_http_mcp_auth_delete(zone, an);
    }

    if (flags) {
        u = (ngx_http_mcp_auth_unauth_t *) node;
        node = ngx_http_mcp_auth_node_of(u);

        ngx_queue_insert_head(&zone->sh->unauth, &u->queue);
        zone->sh->unauth_count++;
        zone->sh->unauth_bytes += charge;
    }

    node->hash = (uint32_t) hash;
    node->key_len = (u_short) key.len;
    node->flags = (u_short) flags;
    node->value_len = (uint32_t) value.len;
    node->expires = expires;
    p = ngx_cpymem(node->data, key.data, key.len);
    ngx_memcpy(p, value.data, value.len);

    /* cannot fail: a free slot was seen above, or an entry was removed */
    (void) mcpa_zindex_insert(&zone->sh->index, hash,
                              ngx_http_mcp_auth_off(zone, node));

    ngx_queue_insert_head(&zone->sh->queue, &node->queue);
    zone->sh->count++;
    zone->sh->changes++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return MCPA_OK;
}


/* A delete is a take whose value nobody wants. */
int
ngx_http_mcp_auth_store_del(void *data, mcpa_str_t key)
{
    return ngx_http_mcp_auth_store_get(data, key, 1,
                                       ngx_http_mcp_auth_discard, NULL);
}


static void
ngx_http_mcp_auth_discard(void *ctx, const char *data, size_t len)
{
}


static ngx_int_t
ngx_http_mcp_auth_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_mcp_auth_zone_t  *ozone = data;

    size_t                     len;
    uint32_t                   nslots;
    uint64_t                   seed[2];
    mcpa_zslot_t              *slots;
    ngx_http_mcp_auth_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* reload: the same zone, its entries intact */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_mcp_auth_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    /* the index: sized with the zone, keyed with a secret of this zone */
    if (shm_zone->shm.size > ((size_t) 1 << 35)) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "mcp_auth zone \"%V\" is larger than 32g",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    nslots = mcpa_zindex_slots_for(shm_zone->shm.size);

    slots = ngx_slab_alloc(zone->shpool, nslots * sizeof(mcpa_zslot_t));
    if (slots == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_mcp_auth_random(seed, sizeof(seed), shm_zone->shm.log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    mcpa_zindex_init(&zone->sh->index, slots, nslots, seed[0], seed[1]);
    ngx_explicit_memzero(seed, sizeof(seed));

    ngx_queue_init(&zone->sh->queue);
    zone->sh->count = 0;

    ngx_queue_init(&zone->sh->unauth);
    zone->sh->unauth_count = 0;
    zone->sh->unauth_bytes = 0;
    zone->sh->evicted = 0;

    len = sizeof(" in mcp_auth zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in mcp_auth zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is reported to the client as 503, once per request */
    zone->shpool->log_nomem = 0;

    if (zone->state_file.len) {
        ngx_http_mcp_auth_load_state(zone, shm_zone->shm.log);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_mcp_auth_random(void *buf, size_t len, ngx_log_t *log)
{
    ssize_t   n;
    ngx_fd_t  fd;

    fd = ngx_open_file("/dev/urandom", NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "mcp_auth: cannot open /dev/urandom");
        return NGX_ERROR;
    }

    n = read(fd, buf, len);

    ngx_close_file(fd);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "mcp_auth: cannot read /dev/urandom");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* mcp_auth_zone name:size -- the same name is the same zone everywhere. */
char *
ngx_http_mcp_auth_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_mcp_auth_loc_conf_t *alcf = conf;

    u_char                    *p;
    size_t                     budget;
    ssize_t                    size, n;
    ngx_str_t                 *value, name, s, state_file, unauth;
    ngx_uint_t                 i;
    ngx_msec_t                 interval;
    ngx_http_mcp_auth_zone_t  *zone;

    if (alcf->shm_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    state_file.len = 0;
    state_file.data = NULL;
    interval = 10000;
    ngx_str_null(&unauth);
    budget = (size_t) size * NGX_HTTP_MCP_AUTH_UNAUTH_PERCENT / 100;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "state=", 6) == 0) {
            state_file.data = value[i].data + 6;
            state_file.len = value[i].len - 6;

            if (state_file.len == 0
                || ngx_conf_full_name(cf->cycle, &state_file, 0) != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "state_interval=", 15) == 0) {
            s.data = value[i].data + 15;
            s.len = value[i].len - 15;

            interval = ngx_parse_time(&s, 0);
            if (interval == (ngx_msec_t) NGX_ERROR || interval == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid state_interval \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "unauthenticated=", 16) == 0) {
            unauth.data = value[i].data + 16;
            unauth.len = value[i].len - 16;

            /* N% of the zone, or a size (k, m, g) */
            if (unauth.len > 1 && unauth.data[unauth.len - 1] == '%') {
                n = ngx_atoi(unauth.data, unauth.len - 1);
                if (n == NGX_ERROR || n > 100) {
                    n = 0;
                }

                budget = (size_t) size * n / 100;

            } else {
                n = ngx_parse_size(&unauth);
                budget = n == NGX_ERROR ? 0 : (size_t) n;
            }

            if (budget == 0 || budget > (size_t) size) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid unauthenticated \"%V\": a size "
                                   "up to the zone's (%z), or 1%% to 100%% "
                                   "of it", &unauth, size);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    alcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_mcp_auth_module);
    if (alcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone = alcf->shm_zone->data;

    if (zone == NULL) {
        zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_mcp_auth_zone_t));
        if (zone == NULL) {
            return NGX_CONF_ERROR;
        }

        zone->state_interval = interval;
        zone->unauth_budget = budget;
        zone->unauth_conf = unauth;
        alcf->shm_zone->init = ngx_http_mcp_auth_init_zone;
        alcf->shm_zone->data = zone;
    }

    /* the zone named again: at most one budget for it */
    if (unauth.len) {
        if (zone->unauth_conf.len
            && (zone->unauth_conf.len != unauth.len
                || ngx_strncmp(zone->unauth_conf.data, unauth.data,
                               unauth.len) != 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" already has unauthenticated="
                               "\"%V\"", &name, &zone->unauth_conf);
            return NGX_CONF_ERROR;
        }

        zone->unauth_budget = budget;
        zone->unauth_conf = unauth;
    }

    if (state_file.len) {
        if (zone->state_file.len
            && (zone->state_file.len != state_file.len
                || ngx_strncmp(zone->state_file.data, state_file.data,
                               state_file.len) != 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" already has state file \"%V\"",
                               &name, &zone->state_file);
            return NGX_CONF_ERROR;
        }

        zone->state_file = state_file;
        zone->state_interval = interval;
    }

    return NGX_CONF_OK;
}


/*
 * The zone's figures for operators (status, metrics): one walk of the entry
 * list under the zone's lock, nothing changed.  Sessions and codes are told
 * apart by their keys (mcpa_metrics_key_class).
 */
void
ngx_http_mcp_auth_zone_census(ngx_http_mcp_auth_zone_t *zone,
    ngx_http_mcp_auth_census_t *c)
{
    int64_t                    now;
    mcpa_str_t                 key;
    ngx_queue_t               *q;
    ngx_http_mcp_auth_node_t  *an;

    ngx_memzero(c, sizeof(ngx_http_mcp_auth_census_t));
    now = (int64_t) ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        an = ngx_queue_data(q, ngx_http_mcp_auth_node_t, queue);

        if (an->expires <= now) {
            c->expired++;
            continue;
        }

        c->live++;

        key.data = (const char *) an->data;
        key.len = an->key_len;

        switch (mcpa_metrics_key_class(key)) {
        case 1:
            c->sessions++;
            break;
        case 2:
            c->codes++;
            break;
        }
    }

    c->pages_free = zone->shpool->pfree;
    c->unauth_count = zone->sh->unauth_count;
    c->unauth_bytes = zone->sh->unauth_bytes;
    c->evicted = zone->sh->evicted;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}
