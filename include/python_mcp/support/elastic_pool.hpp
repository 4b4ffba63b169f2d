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

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pymcp {

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

    void post(std::function<void()> task);
    size_t thread_count() const;
    size_t busy_count() const;

private:
    void run_thread();
    // With mutex_ held: takes the calling thread out of threads_ (detached) when it may retire.
    bool retire_locked();

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
};

}  // namespace pymcp
