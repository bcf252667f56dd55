// A cache of freed small blocks in front of malloc, for the libraries that
// allocate per request: libevent (every header, buffer chain and parsed line
// of a request) and cJSON (every node, key and string of a request and its
// response).
//
// glibc's per-thread cache keeps 7 blocks per size. With many requests in
// flight it overflows; freed blocks then go through the slower bins, and
// each 1 KiB buffer chain libevent allocates runs malloc_consolidate over
// the small blocks waiting in the fast bins. This cache keeps up to 1,024
// blocks per size class, 2 MiB in all. What it saves per request, with one
// connection and with many, is in bench/results.md ("What each
// optimisation saves").
//
// Its blocks are ordinary malloc blocks: anything from malloc may be given
// to alloc_cache_free, and anything alloc_cache_malloc returns may be given
// to free. Only the thread that called alloc_cache_install uses the cache;
// other threads go straight to malloc and free.
#pragma once

#include <cstddef>

void* alloc_cache_malloc(size_t size);
void* alloc_cache_realloc(void* ptr, size_t size);
void alloc_cache_free(void* ptr);

// Routes libevent's and cJSON's allocations through the cache; call before
// any other libevent or cJSON function. Does nothing in an AddressSanitizer
// build or under valgrind's memcheck, so that they still see every free
// (a cached block would hide a use after free from them).
void alloc_cache_install();
