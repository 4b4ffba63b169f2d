#pragma once
// A per-thread cache of small freed blocks, and the allocator that puts pymcp::json's containers
// (object maps and their nodes, arrays, strings) on it.
//
// Why: a tool result is some thirty small containers, built and freed on every call. glibc's
// per-thread cache keeps only seven free chunks of a size, so most of a result's frees took the
// slow path: a fifth of an in-process mcp.call was malloc and free.
//
// Each thread keeps up to kBlocksPerClass freed blocks of each 16-byte size class up to
// kMaxCachedBytes; more, or larger, go back to operator delete, so a thread caches at most about
// 140 KiB. A block freed on another thread than the one that allocated it simply joins that
// thread's cache (blocks are plain operator-new memory, interchangeable within a class).
// Thread-safe without locks (every cache is thread_local); nothing throws but allocate()
// (std::bad_alloc). With PYMCP_NO_BLOCK_CACHE (sanitizer builds) every call goes straight to
// operator new/delete, so AddressSanitizer still sees every use after free.

#include <cstddef>
#include <new>

namespace pymcp::block_cache {

inline constexpr std::size_t kClassBytes = 16;
inline constexpr std::size_t kMaxCachedBytes = 256;
inline constexpr std::size_t kBlocksPerClass = 64;

void* allocate(std::size_t bytes);
void deallocate(void* block, std::size_t bytes) noexcept;
// Blocks the calling thread holds in its cache (for tests).
std::size_t cached_blocks() noexcept;

}  // namespace pymcp::block_cache

namespace pymcp {

// A stateless allocator: any instance frees what any other allocated.
template <typename T>
struct CachedAllocator {
    using value_type = T;

    CachedAllocator() noexcept = default;
    template <typename U>
    CachedAllocator(const CachedAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(block_cache::allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { block_cache::deallocate(p, n * sizeof(T)); }

    template <typename U>
    bool operator==(const CachedAllocator<U>&) const noexcept {
        return true;
    }
};

}  // namespace pymcp
