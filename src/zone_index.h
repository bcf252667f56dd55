/*
 * The index of the shared-memory store (nginx/ngx_http_mcp_auth_zone.c), header-only
 * so that bench/check_bench.cpp measures the very same code on its model of
 * the zone.
 *
 * An open-addressed hash table, linear probing, of 8-byte slots {tag, node}:
 * `node` is the entry's offset from the zone's start in 8-byte units (0 is
 * an empty slot: offset 0 is the slab pool's own header), `tag` the high 32
 * bits of the key's hash.  A lookup reads one slot line and, when the tag
 * matches, the entry itself: two cache misses in a zone far larger than the
 * CPU caches, where a tree walk takes one per level.  Deletion shifts the
 * following slots back (no tombstones), so probe sequences stay short.
 *
 * The hash is SipHash-1-3 with a random key per zone: keys partly chosen by
 * clients (a Client ID Metadata Document URL) cannot be made to collide,
 * which with linear probing would turn every lookup into a long scan.
 *
 * Callers hold the zone's mutex; nothing here allocates.
 */

#ifndef MCPA_ZONE_INDEX_H
#define MCPA_ZONE_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif


typedef struct {
    uint32_t  tag;
    uint32_t  node;     /* offset / 8 from the zone's start; 0: empty */
} mcpa_zslot_t;


typedef struct {
    uint64_t       k0, k1;      /* SipHash key */
    uint32_t       mask;        /* slots - 1 (a power of two) */
    uint32_t       used;
    uint32_t       limit;       /* most slots in use: 7/8 of them */
    uint32_t       reserved;
    mcpa_zslot_t  *slots;
} mcpa_zindex_t;


/* The slots a zone of `zone_size` bytes gets: one per 128 bytes (the
 * smallest slab chunk an entry can take), rounded up to a power of two. */
static inline uint32_t
mcpa_zindex_slots_for(size_t zone_size)
{
    size_t  want, n;

    want = zone_size / 128;
    if (want < 64) {
        want = 64;
    }
    if (want > ((size_t) 1 << 31)) {
        want = (size_t) 1 << 31;
    }

    for (n = 64; n < want; n <<= 1) { /* void */ }

    return (uint32_t) n;
}


static inline void
mcpa_zindex_init(mcpa_zindex_t *ix, mcpa_zslot_t *slots, uint32_t nslots,
    uint64_t k0, uint64_t k1)
{
    memset(slots, 0, (size_t) nslots * sizeof(mcpa_zslot_t));
    ix->k0 = k0;
    ix->k1 = k1;
    ix->mask = nslots - 1;
    ix->used = 0;
    ix->limit = nslots - nslots / 8;
    ix->reserved = 0;
    ix->slots = slots;
}


/*
 * SipHash-c-d (Aumasson, Bernstein 2012) of data[0..len): c rounds per
 * 8-byte block, d to finish.  The index uses SipHash-1-3 (as Rust's and
 * Python's hash tables do against flooding); the tests check the
 * construction on the paper's SipHash-2-4 vectors too.
 */

#define MCPA_ROTL64(x, b)  (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define MCPA_SIPROUND                                                        \
    do {                                                                     \
        v0 += v1; v1 = MCPA_ROTL64(v1, 13); v1 ^= v0;                        \
        v0 = MCPA_ROTL64(v0, 32);                                            \
        v2 += v3; v3 = MCPA_ROTL64(v3, 16); v3 ^= v2;                        \
        v0 += v3; v3 = MCPA_ROTL64(v3, 21); v3 ^= v0;                        \
        v2 += v1; v1 = MCPA_ROTL64(v1, 17); v1 ^= v2;                        \
        v2 = MCPA_ROTL64(v2, 32);                                            \
    } while (0)

static inline uint64_t
mcpa_siphash(uint64_t k0, uint64_t k1, const unsigned char *data, size_t len,
    int c, int d)
{
    int       r;
    size_t    i, tail;
    uint64_t  v0, v1, v2, v3, m, b;

    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        m = (uint64_t) data[i]
            | (uint64_t) data[i + 1] << 8
            | (uint64_t) data[i + 2] << 16
            | (uint64_t) data[i + 3] << 24
            | (uint64_t) data[i + 4] << 32
            | (uint64_t) data[i + 5] << 40
            | (uint64_t) data[i + 6] << 48
            | (uint64_t) data[i + 7] << 56;
        v3 ^= m;
        for (r = 0; r < c; r++) {
            MCPA_SIPROUND;
        }
        v0 ^= m;
    }

    b = (uint64_t) len << 56;
    tail = len - i;

    while (tail--) {
        b |= (uint64_t) data[i + tail] << (8 * tail);
    }

    v3 ^= b;
    for (r = 0; r < c; r++) {
        MCPA_SIPROUND;
    }
    v0 ^= b;

    v2 ^= 0xff;
    for (r = 0; r < d; r++) {
        MCPA_SIPROUND;
    }

    return v0 ^ v1 ^ v2 ^ v3;
}

#undef MCPA_SIPROUND
#undef MCPA_ROTL64


static inline uint64_t
mcpa_zindex_hash(const mcpa_zindex_t *ix, const void *key, size_t len)
{
    return mcpa_siphash(ix->k0, ix->k1, (const unsigned char *) key, len,
                        1, 3);
}


/*
 * Does the entry at offset `node` (8-byte units from `base`) have this key?
 * The caller's: the entry layout is the caller's.
 */
typedef int (*mcpa_zindex_same_pt)(const unsigned char *base, uint32_t node,
    const void *key, size_t len);


/* The slot holding `key` (hash h), or -1. */
static inline int64_t
mcpa_zindex_find(const mcpa_zindex_t *ix, const unsigned char *base,
    uint64_t h, const void *key, size_t len, mcpa_zindex_same_pt same)
{
    uint32_t             i, tag;
    const mcpa_zslot_t  *s;

    tag = (uint32_t) (h >> 32);

    for (i = (uint32_t) h & ix->mask; /* void */; i = (i + 1) & ix->mask) {
        s = &ix->slots[i];

        if (s->node == 0) {
            return -1;
        }

        if (s->tag == tag && same(base, s->node, key, len)) {
            return (int64_t) i;
        }
    }
}


/* The slot that points at entry `node`, whose hash's low half is h_lo;
 * -1 if none does (never, while the index and the entries agree). */
static inline int64_t
mcpa_zindex_slot_of(const mcpa_zindex_t *ix, uint32_t h_lo, uint32_t node)
{
    uint32_t  i;

    for (i = h_lo & ix->mask; ix->slots[i].node; i = (i + 1) & ix->mask) {
        if (ix->slots[i].node == node) {
            return (int64_t) i;
        }
    }

    return -1;
}


/* Adds an entry known not to be there; 0 when the index is at its limit. */
static inline int
mcpa_zindex_insert(mcpa_zindex_t *ix, uint64_t h, uint32_t node)
{
    uint32_t  i;

    if (ix->used >= ix->limit) {
        return 0;
    }

    for (i = (uint32_t) h & ix->mask; ix->slots[i].node;
         i = (i + 1) & ix->mask)
    { /* void */ }

    ix->slots[i].tag = (uint32_t) (h >> 32);
    ix->slots[i].node = node;
    ix->used++;

    return 1;
}


/*
 * Empties slot i and moves back the slots after it that would no longer be
 * found past the gap (backward-shift deletion).  `home` gives an entry's
 * home slot (its hash & mask): the index keeps only 32 bits of the hash, so
 * the caller recomputes it or keeps it in the entry.
 */
typedef uint32_t (*mcpa_zindex_home_pt)(const unsigned char *base,
    uint32_t node);

static inline void
mcpa_zindex_remove(mcpa_zindex_t *ix, const unsigned char *base, uint32_t i,
    mcpa_zindex_home_pt home)
{
    uint32_t  j, k;

    j = i;

    for ( ;; ) {
        j = (j + 1) & ix->mask;

        if (ix->slots[j].node == 0) {
            break;
        }

        k = home(base, ix->slots[j].node) & ix->mask;

        /* may slot j move to the gap at i? only if its home is not in (i, j] */
        if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }

    ix->slots[i].tag = 0;
    ix->slots[i].node = 0;
    ix->used--;
}


#ifdef __cplusplus
}
#endif

#endif /* MCPA_ZONE_INDEX_H */
