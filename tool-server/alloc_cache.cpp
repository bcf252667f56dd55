#include "alloc_cache.hpp"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

// Class c (1..64) holds blocks with at least 16c+8 usable bytes, 24 to 1,032:
// glibc's usable sizes, so malloc(16c+8) wastes nothing. 1,024 bytes is
// libevent's smallest buffer chain.
constexpr size_t kClasses = 65;
constexpr uint32_t kMaxBlocksPerClass = 1024;
constexpr size_t kMaxCachedBytes = 2 * 1024 * 1024;

constexpr size_t class_bytes(size_t c) { return 16 * c + 8; }

struct FreeBlock {
    FreeBlock* next;
};

// Plain globals (one owner thread): a leak checker sees cached blocks as reachable.
FreeBlock* g_free[kClasses];
uint32_t g_count[kClasses];
size_t g_cached_bytes;
thread_local bool t_owner = false;

bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

bool under_memcheck() {
    const char* preload = std::getenv("LD_PRELOAD");
    return preload && std::strstr(preload, "vgpreload_memcheck") != nullptr;
}

}  // namespace

void* alloc_cache_malloc(size_t size) {
    const size_t c = size <= class_bytes(1) ? 1 : (size - 8 + 15) / 16;  // the smallest class that fits
    if (c >= kClasses || !t_owner) return std::malloc(size);
    if (FreeBlock* b = g_free[c]) {
        g_free[c] = b->next;
        --g_count[c];
        g_cached_bytes -= class_bytes(c);
        return b;
    }
    return std::malloc(class_bytes(c));
}

void* alloc_cache_realloc(void* ptr, size_t size) {
    if (!ptr) return alloc_cache_malloc(size);
    return std::realloc(ptr, size);  // a live block is an ordinary malloc block
}

void alloc_cache_free(void* ptr) {
    if (!ptr) return;
    if (t_owner) {
        const size_t usable = malloc_usable_size(ptr);
        if (usable >= class_bytes(1)) {
            const size_t c = (usable - 8) / 16;  // the largest class it can serve
            if (c < kClasses && g_count[c] < kMaxBlocksPerClass &&
                g_cached_bytes + class_bytes(c) <= kMaxCachedBytes) {
                FreeBlock* b = static_cast<FreeBlock*>(ptr);
                b->next = g_free[c];
                g_free[c] = b;
                ++g_count[c];
                g_cached_bytes += class_bytes(c);
                return;
            }
        }
    }
    std::free(ptr);
}

void alloc_cache_install() {
    if (sanitized_build() || under_memcheck()) return;
    t_owner = true;
    event_set_mem_functions(alloc_cache_malloc, alloc_cache_realloc, alloc_cache_free);
    cJSON_Hooks hooks{alloc_cache_malloc, alloc_cache_free};
    cJSON_InitHooks(&hooks);
}
