// DeadlineTimer: callbacks run at their time in order, cancel() drops them, and cancelling the
// callback the timer thread is waiting for is safe (a use-after-free found by the ASan stage:
// the thread's wait_until held a reference into the erased map node).

#include "python_mcp/support/deadline_timer.hpp"
#include "support/eventually.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace pymcp {
namespace {

using namespace std::chrono_literals;
using Clock = DeadlineTimer::Clock;

using pymcp::testing::eventually;

TEST(DeadlineTimer, RunsCallbacksInDeadlineOrder) {
    DeadlineTimer timer;
    std::mutex mutex;
    std::vector<int> order;
    auto now = Clock::now();
    timer.schedule(now + 60ms, [&] { std::lock_guard l(mutex); order.push_back(3); });
    timer.schedule(now + 20ms, [&] { std::lock_guard l(mutex); order.push_back(1); });
    timer.schedule(now + 40ms, [&] { std::lock_guard l(mutex); order.push_back(2); });
    ASSERT_TRUE(eventually([&] { std::lock_guard l(mutex); return order.size() == 3; }));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(DeadlineTimer, CancelDropsTheCallback) {
    DeadlineTimer timer;
    std::atomic<int> ran{0};
    auto id = timer.schedule(Clock::now() + 30ms, [&] { ++ran; });
    timer.cancel(id);
    std::atomic<bool> later{false};
    timer.schedule(Clock::now() + 60ms, [&] { later = true; });
    ASSERT_TRUE(eventually([&] { return later.load(); }));
    EXPECT_EQ(ran.load(), 0);
    timer.cancel(id);  // again, after it would have run: a no-op
}

TEST(DeadlineTimer, CancellingTheAwaitedDeadlineIsSafe) {
    DeadlineTimer timer;
    for (int round = 0; round < 20; ++round) {
        // The timer thread waits until this far deadline...
        auto far = timer.schedule(Clock::now() + 10s, [] { FAIL() << "cancelled callback ran"; });
        std::this_thread::sleep_for(5ms);
        // ...whose node is erased while it waits; an earlier deadline then wakes it.
        timer.cancel(far);
        std::atomic<bool> ran{false};
        timer.schedule(Clock::now() + 1ms, [&] { ran = true; });
        ASSERT_TRUE(eventually([&] { return ran.load(); }));
    }
}

TEST(DeadlineTimer, DestructorDropsPendingCallbacks) {
    std::atomic<int> ran{0};
    {
        DeadlineTimer timer;
        timer.schedule(Clock::now() + 10s, [&] { ++ran; });
    }
    EXPECT_EQ(ran.load(), 0);
}

TEST(DeadlineTimer, LaterDeadlinesAfterACancelStillFireAndEarlierOnesAreNotDelayed) {
    // The timer thread is not woken for a deadline later than the one it sleeps until, even when
    // that one was cancelled: the later deadline must still fire, at its time.
    DeadlineTimer timer;
    std::atomic<int> ran{0};
    auto first = timer.schedule(Clock::now() + 150ms, [&] { ran += 100; });
    std::this_thread::sleep_for(20ms);  // the thread now sleeps until the first deadline
    timer.cancel(first);
    auto start = Clock::now();
    timer.schedule(start + 250ms, [&] { ++ran; });
    ASSERT_TRUE(eventually([&] { return ran.load() == 1; }, 5000ms));
    EXPECT_GE(Clock::now() - start, 240ms);
    // One earlier than what the thread sleeps until wakes it: it is not held back to the later one.
    std::atomic<bool> late{false}, early{false};
    timer.schedule(Clock::now() + 10s, [&] { late = true; });
    std::this_thread::sleep_for(20ms);
    start = Clock::now();
    timer.schedule(start + 30ms, [&] { early = true; });
    ASSERT_TRUE(eventually([&] { return early.load(); }, 5000ms));
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_FALSE(late.load());
    EXPECT_EQ(ran.load(), 1);  // the cancelled one never ran
}

}  // namespace
}  // namespace pymcp
