#pragma once
// A thread pool that grows on demand: post() hands the task to an idle thread or starts a new one
// (up to max_threads; past that, tasks queue). Threads live until the pool is destroyed, so
// per-thread set-up (a Python thread state, say) is paid once per thread.
//
// Thread-safe. post() never blocks on a running task. The destructor drains the queue and joins;
// tasks must therefore finish on their own. on_start/on_stop run on each pool thread. A task that
// throws is logged and the thread goes on.

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

    ElasticPool(std::string name, size_t max_threads, Hooks hooks = {});
    ~ElasticPool();
    ElasticPool(const ElasticPool&) = delete;
    ElasticPool& operator=(const ElasticPool&) = delete;

    void post(std::function<void()> task);
    size_t thread_count() const;
    size_t busy_count() const;

private:
    void run_thread();

    const std::string name_;
    const size_t max_threads_;
    const Hooks hooks_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> queue_;  // GUARDED_BY(mutex_)
    std::vector<std::thread> threads_;         // GUARDED_BY(mutex_)
    size_t idle_ = 0;                          // GUARDED_BY(mutex_)
    bool stopping_ = false;                    // GUARDED_BY(mutex_)
};

}  // namespace pymcp
