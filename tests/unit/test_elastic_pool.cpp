// ElasticPool: grows only when every thread is busy, reuses idle threads, bounds the count, and
// survives throwing tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "python_mcp/support/elastic_pool.hpp"
#include "support/eventually.hpp"

using namespace pymcp;
using namespace std::chrono_literals;

using pymcp::testing::eventually;

TEST(ElasticPool, SequentialTasksReuseOneThread) {
    ElasticPool pool("t", 8);
    for (int i = 0; i < 50; ++i) {
        std::promise<void> ran;
        pool.post([&] { ran.set_value(); });
        ASSERT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
        ASSERT_TRUE(eventually([&] { return pool.busy_count() == 0; }));
    }
    EXPECT_EQ(pool.thread_count(), 1u);
}

TEST(ElasticPool, TasksThatWaitForEachOtherRunAtOnce) {
    // Four tasks that each wait for all four to have started: they finish only if the pool runs
    // them in parallel, growing to four threads.
    ElasticPool pool("t", 8);
    std::mutex m;
    std::condition_variable cv;
    int started = 0;
    std::atomic<int> finished{0};
    auto post_four_that_meet = [&] {
        {
            std::lock_guard lock(m);
            started = 0;
        }
        finished = 0;
        for (int i = 0; i < 4; ++i)
            pool.post([&] {
                std::unique_lock lock(m);
                ++started;
                cv.notify_all();
                if (cv.wait_for(lock, 5s, [&] { return started == 4; })) ++finished;
            });
    };
    post_four_that_meet();
    ASSERT_TRUE(eventually([&] { return finished.load() == 4; }));
    EXPECT_EQ(pool.thread_count(), 4u);
    // Idle again: four more such tasks start no new thread.
    ASSERT_TRUE(eventually([&] { return pool.busy_count() == 0; }));
    post_four_that_meet();
    ASSERT_TRUE(eventually([&] { return finished.load() == 4; }));
    EXPECT_EQ(pool.thread_count(), 4u);
}

TEST(ElasticPool, TheThreadCountIsBoundedAndExtraTasksQueue) {
    ElasticPool pool("t", 2);
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    std::atomic<int> ran{0};
    for (int i = 0; i < 6; ++i)
        pool.post([&, gate] {
            gate.wait();
            ++ran;
        });
    ASSERT_TRUE(eventually([&] { return pool.busy_count() == 2; }));
    EXPECT_EQ(pool.thread_count(), 2u);
    EXPECT_EQ(ran.load(), 0);
    release.set_value();
    ASSERT_TRUE(eventually([&] { return ran.load() == 6; }));
    EXPECT_EQ(pool.thread_count(), 2u);
}

TEST(ElasticPool, AThrowingTaskLeavesTheThreadWorking) {
    ElasticPool pool("t", 1);
    pool.post([] { throw std::runtime_error("boom"); });
    pool.post([] { throw 42; });
    std::promise<void> ran;
    pool.post([&] { ran.set_value(); });
    EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_EQ(pool.thread_count(), 1u);
}

TEST(ElasticPool, HooksRunOnEachThreadAndTheDestructorDrainsTheQueue) {
    std::atomic<int> starts{0}, stops{0}, ran{0};
    {
        ElasticPool pool("t", 3, ElasticPool::Hooks{[&] { ++starts; }, [&] { ++stops; }});
        for (int i = 0; i < 20; ++i)
            pool.post([&] {
                std::this_thread::sleep_for(1ms);
                ++ran;
            });
    }  // joins after the queue is empty
    EXPECT_EQ(ran.load(), 20);
    EXPECT_GE(starts.load(), 1);
    EXPECT_LE(starts.load(), 3);
    EXPECT_EQ(stops.load(), starts.load());
}

TEST(ElasticPool, ThreadsIdleLongerThanTheRetireTimeEndButTheKeptOnesStay) {
    std::atomic<int> started{0};
    std::atomic<int> stopped{0};
    ElasticPool pool("t", 8, ElasticPool::Hooks{[&] { ++started; }, [&] { ++stopped; }},
                     ElasticPool::Retire{std::chrono::milliseconds(50), 2});
    // Six tasks that wait for each other: six threads.
    std::mutex m;
    std::condition_variable cv;
    int waiting = 0;
    for (int i = 0; i < 6; ++i)
        pool.post([&] {
            std::unique_lock lock(m);
            ++waiting;
            cv.notify_all();
            cv.wait_for(lock, 5s, [&] { return waiting == 6; });
        });
    ASSERT_TRUE(eventually([&] { return pool.thread_count() == 6 && pool.busy_count() == 0; }));
    // Idle past the retire time: down to the two kept, each retired one through on_stop.
    ASSERT_TRUE(eventually([&] { return pool.thread_count() == 2 && stopped.load() == 4; }));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(pool.thread_count(), 2u);
    EXPECT_EQ(stopped.load(), 4);
    // Still serving, and growing again when it must.
    std::promise<void> ran;
    pool.post([&] { ran.set_value(); });
    EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_EQ(started.load(), 6);
}

TEST(ElasticPool, DestroyingThePoolWaitsForThreadsStillRetiring) {
    std::atomic<int> stopped{0};
    {
        ElasticPool pool("t", 8,
                         ElasticPool::Hooks{nullptr,
                                            [&] {
                                                std::this_thread::sleep_for(100ms);  // a slow on_stop
                                                ++stopped;
                                            }},
                         ElasticPool::Retire{std::chrono::milliseconds(20), 0});
        std::promise<void> ran;
        pool.post([&] { ran.set_value(); });
        ASSERT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
        ASSERT_TRUE(eventually([&] { return pool.thread_count() == 0; }));  // retiring, in on_stop
    }
    EXPECT_EQ(stopped.load(), 1);  // the destructor waited for it
}
