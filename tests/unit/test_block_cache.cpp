// The per-thread block cache behind pymcp::json's containers (support/block_cache.hpp).
#include "python_mcp/support/block_cache.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "python_mcp/support/json.hpp"

using namespace pymcp;
namespace bc = pymcp::block_cache;

namespace {

// Empties the calling thread's cache, so every test starts from nothing.
void drain() {
    std::vector<void*> taken;
    for (std::size_t bytes = bc::kClassBytes; bytes <= bc::kMaxCachedBytes; bytes += bc::kClassBytes)
        while (bc::cached_blocks() > 0 && taken.size() < 100000) {
            std::size_t before = bc::cached_blocks();
            void* p = bc::allocate(bytes);
            if (bc::cached_blocks() == before) {  // this class is empty: the block is new
                bc::deallocate(p, 0);             // size 0: never cached
                break;
            }
            taken.push_back(p);
        }
    for (void* p : taken) ::operator delete(p);
}

}  // namespace

#ifndef PYMCP_NO_BLOCK_CACHE

TEST(BlockCacheTest, AFreedBlockServesTheNextRequestOfItsSizeClass) {
    drain();
    void* a = bc::allocate(40);
    bc::deallocate(a, 40);
    EXPECT_EQ(bc::cached_blocks(), 1u);
    void* b = bc::allocate(48);  // 33..48 bytes: the same class
    EXPECT_EQ(a, b);
    EXPECT_EQ(bc::cached_blocks(), 0u);
    void* c = bc::allocate(56);  // another class: a new block
    EXPECT_NE(c, b);
    bc::deallocate(b, 48);
    bc::deallocate(c, 56);
    drain();
}

TEST(BlockCacheTest, EachClassKeepsABoundedNumberOfBlocks) {
    drain();
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < 3 * bc::kBlocksPerClass; ++i) blocks.push_back(bc::allocate(24));
    for (void* p : blocks) bc::deallocate(p, 24);
    EXPECT_EQ(bc::cached_blocks(), bc::kBlocksPerClass);
    drain();
}

TEST(BlockCacheTest, LargeBlocksAreNeverKept) {
    drain();
    void* big = bc::allocate(bc::kMaxCachedBytes + 1);
    bc::deallocate(big, bc::kMaxCachedBytes + 1);
    EXPECT_EQ(bc::cached_blocks(), 0u);
}

TEST(BlockCacheTest, ABlockFreedOnAnotherThreadJoinsThatThreadsCache) {
    drain();
    void* p = bc::allocate(100);
    std::size_t there = 0;
    std::thread([&] {
        bc::deallocate(p, 100);
        there = bc::cached_blocks();
    }).join();
    EXPECT_EQ(there, 1u);
    EXPECT_EQ(bc::cached_blocks(), 0u);
}

#else

TEST(BlockCacheTest, SanitizerBuildsKeepNothingSoEveryUseAfterFreeIsSeen) {
    void* a = bc::allocate(40);
    bc::deallocate(a, 40);
    EXPECT_EQ(bc::cached_blocks(), 0u);
}

#endif

TEST(BlockCacheTest, JsonBuiltOnOneThreadIsFreedOnAnotherAndRoundTrips) {
    json doc = json::object();
    for (int i = 0; i < 2000; ++i) {
        json row = json::array({i, "name " + std::to_string(i), i * 0.5, nullptr, json::object({{"k", i}})});
        doc["rows"].push_back(std::move(row));
    }
    doc["structuredContent"] = {{"columns", {"a", "b"}}, {"truncated", false}};
    const std::string text = doc.dump();
    json copy = json::parse(text);
    EXPECT_EQ(copy, doc);
    EXPECT_EQ(copy["rows"][1999][1], "name 1999");
    std::thread([moved = std::move(copy)]() mutable { moved = nullptr; }).join();
    doc.clear();
    json again = json::parse(text);  // served partly from blocks the first document freed
    EXPECT_EQ(again.dump(), text);
}
