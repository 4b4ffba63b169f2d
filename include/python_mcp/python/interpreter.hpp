#pragma once
// The one embedded CPython interpreter of the process, and the threads allowed to run Python.
//
// start() runs once on the main thread: explicit PyConfig (sys.executable pinned, no signal
// handlers, no current directory on sys.path), then the runtime (python/pymcp_runtime.py) is
// loaded and the GIL released. The interpreter is never finalised: re-initialising breaks numpy
// and a non-daemon thread left by user code would hang Py_Finalize.
//
// Threads that run Python keep one thread state for their whole life (python_thread_hooks());
// a fresh state per call would lose ContextVars and thread-locals. The main thread runs tasks
// posted to MainThreadExecutor (run_on_main_thread) until stop(). All thread-safe; start()
// throws std::runtime_error when Python cannot start.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "python_mcp/support/elastic_pool.hpp"

namespace pymcp::python {

void start_interpreter();
bool interpreter_started();

// on_start/on_stop hooks that give each pool thread a persistent Python thread state.
ElasticPool::Hooks python_thread_hooks();

class MainThreadExecutor {
public:
    static MainThreadExecutor& instance();
    void post(std::function<void()> task);
    // Runs posted tasks on the calling (main) thread until stop(); returns then.
    void run();
    void stop();
    // Whether the caller is the thread in run(): a task posted from there would wait for itself.
    bool runs_on_this_thread() const { return runner_.load() == std::this_thread::get_id(); }

private:
    std::atomic<std::thread::id> runner_{};
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
    bool stopped_ = false;                     // GUARDED_BY(mutex_)
};

}  // namespace pymcp::python
