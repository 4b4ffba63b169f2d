#pragma once
// A thread pool that grows on demand: post() hands the task to an idle thread or starts a new one
// (up to max_threads; past that, tasks queue). A thread idle for Retire::after ends, unless only
// Retire::keep threads are left: a burst of sessions does not leave its threads (and their
// Python thread states) behind for good, while the usual one or two stay warm, so per-thread
// set-up is paid rarely.
//
// Thread-safe. post() never blocks on a running task. The destructor drains the queue, joins the
// threads and waits for retiring ones; tasks must therefore finish on their own. on_start/on_stop
// run on each pool thread (on_stop also when it retires). A task that throws is logged and the
// thread goes on.
// When a thread cannot be started (EAGAIN from pthread_create, or its stack does not fit under
// RLIMIT_AS): with other threads in the pool, the task stays queued and runs when one of them is
// free, as past max_threads; with none, post() throws PoolError and the task is NOT queued, so a
// caller that reports the error knows the task will never run.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pymcp {

// post() could not start a thread and no thread would ever run the task; it was not queued.
class PoolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ElasticPool {
public:
    struct Hooks {
        std::function<void()> on_start;
        std::function<void()> on_stop;
    };
    struct Retire {
        std::chrono::milliseconds after{60000};
        size_t keep = 2;
    };

    ElasticPool(std::string name, size_t max_threads, Hooks hooks = {});  // Retire's defaults
    ElasticPool(std::string name, size_t max_threads, Hooks hooks, Retire retire);
    ~ElasticPool();
    ElasticPool(const ElasticPool&) = delete;
    ElasticPool& operator=(const ElasticPool&) = delete;

    // Throws PoolError (task not queued) when no thread exists and none can be started.
    void post(std::function<void()> task);
    size_t thread_count() const;
    size_t busy_count() const;

    // Tests: how threads are started (default: std::thread). A spawner that throws stands for
    // pthread_create failing.
    using Spawner = std::function<std::thread(std::function<void()>)>;
    void set_spawner_for_testing(Spawner spawner);

private:
    void run_thread();
    // With mutex_ held: takes the calling thread out of threads_ (detached) when it may retire.
    bool retire_locked();
    // With mutex_ held: starts one more thread; false (logged) when it cannot.
    bool start_thread_locked();

    const std::string name_;
    const size_t max_threads_;
    const Hooks hooks_;
    const Retire retire_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable retired_;          // a retiring thread has finished on_stop
    std::deque<std::function<void()>> queue_;  // GUARDED_BY(mutex_)
    std::vector<std::thread> threads_;         // GUARDED_BY(mutex_)
    size_t idle_ = 0;                          // GUARDED_BY(mutex_)
    size_t retiring_ = 0;                      // GUARDED_BY(mutex_): detached, still in on_stop
    bool stopping_ = false;                    // GUARDED_BY(mutex_)
    bool start_failed_ = false;                // GUARDED_BY(mutex_): the last start failed (logged once)
    Spawner spawn_;                            // GUARDED_BY(mutex_)
};

}  // namespace pymcp
