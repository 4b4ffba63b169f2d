#include "python_mcp/support/block_cache.hpp"

#include <array>

namespace pymcp::block_cache {

#ifdef PYMCP_NO_BLOCK_CACHE

void* allocate(std::size_t bytes) { return ::operator new(bytes); }
void deallocate(void* block, std::size_t) noexcept { ::operator delete(block); }
std::size_t cached_blocks() noexcept { return 0; }

#else

namespace {

constexpr std::size_t kClasses = kMaxCachedBytes / kClassBytes;
static_assert(kClassBytes >= sizeof(void*) && kClassBytes % alignof(std::max_align_t) == 0);

struct FreeBlock {
    FreeBlock* next;
};

// The calling thread's cache; its blocks go back to operator delete when the thread ends. A
// container freed later in the thread's exit (by another thread_local's destructor) finds every
// class full and goes straight to operator delete too.
struct ThreadCache {
    std::array<FreeBlock*, kClasses> heads{};
    std::array<unsigned short, kClasses> counts{};

    ~ThreadCache() {
        for (std::size_t c = 0; c < kClasses; ++c) {
            for (FreeBlock* head = heads[c]; head;) {
                FreeBlock* next = head->next;
                ::operator delete(head);
                head = next;
            }
            heads[c] = nullptr;
            counts[c] = kBlocksPerClass;
        }
    }
};

thread_local ThreadCache t_cache;

// Size class of a request: 1..16 bytes -> 0, 17..32 -> 1, ...
inline std::size_t class_of(std::size_t bytes) { return (bytes - 1) / kClassBytes; }

}  // namespace

void* allocate(std::size_t bytes) {
    if (bytes == 0 || bytes > kMaxCachedBytes) return ::operator new(bytes);
    const std::size_t c = class_of(bytes);
    ThreadCache& cache = t_cache;
    if (FreeBlock* block = cache.heads[c]) {
        cache.heads[c] = block->next;
        --cache.counts[c];
        return block;
    }
    // Allocated at the class's full size, so the block can serve any request of its class.
    return ::operator new((c + 1) * kClassBytes);
}

void deallocate(void* block, std::size_t bytes) noexcept {
    if (!block) return;
    if (bytes == 0 || bytes > kMaxCachedBytes) {
        ::operator delete(block);
        return;
    }
    const std::size_t c = class_of(bytes);
    ThreadCache& cache = t_cache;
    if (cache.counts[c] >= kBlocksPerClass) {
        ::operator delete(block);
        return;
    }
    auto* free_block = static_cast<FreeBlock*>(block);
    free_block->next = cache.heads[c];
    cache.heads[c] = free_block;
    ++cache.counts[c];
}

std::size_t cached_blocks() noexcept {
    std::size_t n = 0;
    for (auto count : t_cache.counts) n += count;
    return n;
}

#endif

}  // namespace pymcp::block_cache
