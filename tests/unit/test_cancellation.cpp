// CancellationSource / CancellationToken / CancelRegistration: callbacks exactly once, waits that
// wake on cancel, linked sources, and registrations that never outlive a running callback.

#include "python_mcp/support/cancellation.hpp"
#include "support/eventually.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pymcp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using pymcp::testing::eventually;

TEST(Cancellation, DefaultTokenIsNeverCancelled) {
    CancellationToken token;
    EXPECT_FALSE(token.cancelled());
    EXPECT_EQ(token.reason(), "");
    bool ran = false;
    auto reg = token.on_cancel([&] { ran = true; });
    EXPECT_FALSE(ran);
    auto start = Clock::now();
    EXPECT_FALSE(token.wait_for(20ms));
    EXPECT_GE(Clock::now() - start, 15ms);
}

TEST(Cancellation, CancelOnceWithReason) {
    CancellationSource source;
    auto token = source.token();
    EXPECT_FALSE(source.cancelled());
    EXPECT_FALSE(token.cancelled());
    EXPECT_TRUE(source.cancel("because"));
    EXPECT_FALSE(source.cancel("again"));
    EXPECT_TRUE(source.cancelled());
    EXPECT_TRUE(token.cancelled());
    EXPECT_EQ(token.reason(), "because");
    // Copies of the source share the state.
    CancellationSource copy = source;
    EXPECT_TRUE(copy.cancelled());
    EXPECT_FALSE(copy.cancel());
}

TEST(Cancellation, CallbacksRunExactlyOnce) {
    CancellationSource source;
    std::atomic<int> a{0}, b{0};
    auto ra = source.token().on_cancel([&] { ++a; });
    auto rb = source.token().on_cancel([&] { ++b; });
    EXPECT_EQ(a + b, 0);
    source.cancel();
    source.cancel();
    EXPECT_EQ(a.load(), 1);
    EXPECT_EQ(b.load(), 1);
    ra.reset();
    rb.reset();
    EXPECT_EQ(a.load(), 1);
}

TEST(Cancellation, CallbackRunsOnTheCancellingThread) {
    CancellationSource source;
    std::thread::id ran_on;
    auto reg = source.token().on_cancel([&] { ran_on = std::this_thread::get_id(); });
    std::thread::id canceller;
    std::thread t([&] {
        canceller = std::this_thread::get_id();
        source.cancel();
    });
    t.join();
    EXPECT_EQ(ran_on, canceller);
}

TEST(Cancellation, RegisteringAfterCancelRunsAtOnce) {
    CancellationSource source;
    source.cancel("done");
    int ran = 0;
    auto reg = source.token().on_cancel([&] { ++ran; });
    EXPECT_EQ(ran, 1);
    source.cancel();
    EXPECT_EQ(ran, 1);
}

TEST(Cancellation, ResetRegistrationPreventsTheCallback) {
    CancellationSource source;
    int ran = 0;
    {
        auto reg = source.token().on_cancel([&] { ++ran; });
    }  // destroyed
    auto reg2 = source.token().on_cancel([&] { ++ran; });
    reg2.reset();
    reg2.reset();  // twice is fine
    source.cancel();
    EXPECT_EQ(ran, 0);
}

TEST(Cancellation, MovedRegistrationStillControlsTheCallback) {
    CancellationSource source;
    int ran = 0;
    CancelRegistration outer;
    {
        auto reg = source.token().on_cancel([&] { ++ran; });
        outer = std::move(reg);
    }  // the moved-from registration going away must not unregister
    CancelRegistration moved(std::move(outer));
    source.cancel();
    EXPECT_EQ(ran, 1);

    CancellationSource s2;
    int ran2 = 0;
    CancelRegistration a = s2.token().on_cancel([&] { ++ran2; });
    CancelRegistration b = s2.token().on_cancel([&] { ran2 += 10; });
    a = std::move(b);  // the first registration is dropped by the assignment
    s2.cancel();
    EXPECT_EQ(ran2, 10);
}

TEST(Cancellation, AThrowingCallbackDoesNotStopTheOthers) {
    CancellationSource source;
    int ran = 0;
    auto r1 = source.token().on_cancel([] { throw std::runtime_error("callback failed"); });
    auto r2 = source.token().on_cancel([&] { ++ran; });
    EXPECT_NO_THROW(source.cancel());
    EXPECT_EQ(ran, 1);
    EXPECT_TRUE(source.cancelled());
}

TEST(Cancellation, ResetWaitsForARunningCallback) {
    CancellationSource source;
    CancellationSource release;
    std::atomic<bool> callback_started{false};
    std::atomic<bool> callback_finished{false};
    auto reg = std::make_unique<CancelRegistration>(source.token().on_cancel([&] {
        callback_started = true;
        release.token().wait_for(5s);
        callback_finished = true;
    }));
    std::thread canceller([&] { source.cancel(); });
    ASSERT_TRUE(eventually([&] { return callback_started.load(); }));

    std::atomic<bool> reset_returned{false};
    bool finished_when_reset_returned = false;
    std::thread resetter([&] {
        reg->reset();
        finished_when_reset_returned = callback_finished.load();
        reset_returned = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(reset_returned.load()) << "reset() returned while its callback was still running";
    release.cancel();
    resetter.join();
    canceller.join();
    EXPECT_TRUE(reset_returned.load());
    EXPECT_TRUE(finished_when_reset_returned);
}

TEST(Cancellation, ACallbackMayResetItsOwnRegistration) {
    CancellationSource source;
    auto reg = std::make_shared<CancelRegistration>();
    int ran = 0;
    *reg = source.token().on_cancel([&, reg] {
        ++ran;
        reg->reset();  // on the cancelling thread: must not wait for itself
    });
    std::thread t([&] { source.cancel(); });
    t.join();
    EXPECT_EQ(ran, 1);
}

TEST(Cancellation, CallbacksMayTakeLocksAndRegisterMore) {
    CancellationSource source;
    std::mutex m;
    int ran = 0;
    CancelRegistration inner;
    auto reg = source.token().on_cancel([&] {
        std::lock_guard lock(m);
        ++ran;
        // Registering on an already cancelled token runs at once, even from a callback.
        inner = source.token().on_cancel([&] { ++ran; });
        EXPECT_TRUE(source.token().cancelled());
    });
    source.cancel();
    EXPECT_EQ(ran, 2);
}

TEST(Cancellation, WaitForWakesOnCancel) {
    CancellationSource source;
    auto token = source.token();
    bool result = false;
    Clock::duration waited{};
    std::thread waiter([&] {
        auto start = Clock::now();
        result = token.wait_for(10s);
        waited = Clock::now() - start;
    });
    std::this_thread::sleep_for(30ms);
    source.cancel();
    waiter.join();
    EXPECT_TRUE(result);
    EXPECT_LT(waited, 2s);
    // Already cancelled: returns at once.
    auto start = Clock::now();
    EXPECT_TRUE(token.wait_for(10s));
    EXPECT_TRUE(token.wait_until(Clock::now() + 10s));
    EXPECT_LT(Clock::now() - start, 500ms);
}

TEST(Cancellation, WaitForTimesOut) {
    CancellationSource source;
    auto start = Clock::now();
    EXPECT_FALSE(source.token().wait_for(30ms));
    EXPECT_GE(Clock::now() - start, 25ms);
    EXPECT_FALSE(source.token().wait_until(Clock::now() - 1s));
}

TEST(Cancellation, ManyWaitersAllWake) {
    CancellationSource source;
    std::atomic<int> woke{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 8; ++i)
        waiters.emplace_back([&] {
            if (source.token().wait_for(10s)) ++woke;
        });
    std::this_thread::sleep_for(20ms);
    auto start = Clock::now();
    source.cancel();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(woke.load(), 8);
    EXPECT_LT(Clock::now() - start, 2s);
}

TEST(Cancellation, LinkedSourceFollowsItsParent) {
    CancellationSource parent;
    CancellationSource child(parent.token());
    CancellationSource grandchild(child.token());
    int child_callbacks = 0;
    auto reg = grandchild.token().on_cancel([&] { ++child_callbacks; });
    EXPECT_FALSE(child.cancelled());
    parent.cancel("server shutting down");
    EXPECT_TRUE(child.cancelled());
    EXPECT_TRUE(grandchild.cancelled());
    EXPECT_EQ(child.token().reason(), "server shutting down");
    EXPECT_EQ(grandchild.token().reason(), "server shutting down");
    EXPECT_EQ(child_callbacks, 1);
}

TEST(Cancellation, CancellingAChildLeavesTheParentAlone) {
    CancellationSource parent;
    CancellationSource child(parent.token());
    CancellationSource sibling(parent.token());
    child.cancel("just me");
    EXPECT_TRUE(child.cancelled());
    EXPECT_FALSE(parent.cancelled());
    EXPECT_FALSE(sibling.cancelled());
    parent.cancel("all");
    EXPECT_TRUE(sibling.cancelled());
    EXPECT_EQ(child.token().reason(), "just me");  // the first reason stays
}

TEST(Cancellation, ChildOfACancelledParentStartsCancelled) {
    CancellationSource parent;
    parent.cancel("early");
    CancellationSource child(parent.token());
    EXPECT_TRUE(child.cancelled());
    EXPECT_EQ(child.token().reason(), "early");
    CancellationSource of_default{CancellationToken()};
    EXPECT_FALSE(of_default.cancelled());
}

TEST(Cancellation, ChildGoingAwayBeforeItsParentIsFine) {
    CancellationSource parent;
    for (int i = 0; i < 1000; ++i) {
        CancellationSource child(parent.token());
        auto token = child.token();
    }
    EXPECT_TRUE(parent.cancel());
    // A token of a destroyed child still works.
    CancellationToken survivor;
    {
        CancellationSource p2;
        CancellationSource child(p2.token());
        survivor = child.token();
        p2.cancel("gone");
    }
    EXPECT_TRUE(survivor.cancelled());
}

TEST(Cancellation, ConcurrentCancelFromEightThreads) {
    for (int round = 0; round < 200; ++round) {
        CancellationSource source;
        std::atomic<int> callbacks{0};
        std::vector<CancelRegistration> regs;
        for (int i = 0; i < 4; ++i) regs.push_back(source.token().on_cancel([&] { ++callbacks; }));
        std::atomic<int> winners{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                while (!go) std::this_thread::yield();
                if (source.cancel("thread " + std::to_string(t))) ++winners;
            });
        go = true;
        for (auto& t : threads) t.join();
        ASSERT_EQ(winners.load(), 1) << "round " << round;
        ASSERT_EQ(callbacks.load(), 4) << "round " << round;
        ASSERT_TRUE(source.cancelled());
        ASSERT_EQ(source.token().reason().rfind("thread ", 0), 0u);
    }
}

TEST(Cancellation, RegisterAndResetRacingWithCancel) {
    for (int round = 0; round < 200; ++round) {
        CancellationSource source;
        std::atomic<int> ran{0};
        std::atomic<bool> go{false};
        std::thread registrar([&] {
            while (!go) std::this_thread::yield();
            for (int i = 0; i < 20; ++i) {
                auto value = std::make_shared<int>(0);
                auto reg = source.token().on_cancel([value, &ran] {
                    ++*value;
                    ++ran;
                });
                if (i % 2) reg.reset();
            }
        });
        std::thread canceller([&] {
            while (!go) std::this_thread::yield();
            source.cancel();
        });
        go = true;
        registrar.join();
        canceller.join();
        ASSERT_TRUE(source.cancelled());
        ASSERT_LE(ran.load(), 20);
    }
}

}  // namespace
}  // namespace pymcp
