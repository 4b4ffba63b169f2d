#include "python_mcp/support/elastic_pool.hpp"

#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace pymcp {

ElasticPool::ElasticPool(std::string name, size_t max_threads, Hooks hooks)
    : ElasticPool(std::move(name), max_threads, std::move(hooks), Retire{}) {}

ElasticPool::ElasticPool(std::string name, size_t max_threads, Hooks hooks, Retire retire)
    : name_(std::move(name)), max_threads_(max_threads), hooks_(std::move(hooks)), retire_(retire) {}

ElasticPool::~ElasticPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    // No thread retires once stopping_ is set, so threads_ no longer changes.
    for (auto& t : threads_) t.join();
    std::unique_lock lock(mutex_);
    retired_.wait(lock, [&] { return retiring_ == 0; });
}

void ElasticPool::set_spawner_for_testing(Spawner spawner) {
    std::lock_guard lock(mutex_);
    spawn_ = std::move(spawner);
}

bool ElasticPool::start_thread_locked() {
    try {
        threads_.reserve(threads_.size() + 1);  // so nothing throws once the thread exists
        threads_.push_back(spawn_ ? spawn_([this] { run_thread(); }) : std::thread([this] { run_thread(); }));
        start_failed_ = false;
        return true;
    } catch (const std::exception& e) {  // std::system_error (EAGAIN), std::bad_alloc
        if (!start_failed_)
            spdlog::warn("{} pool: cannot start a thread ({}); {} thread(s) carry on", name_, e.what(),
                         threads_.size());
        start_failed_ = true;
        return false;
    }
}

void ElasticPool::post(std::function<void()> task) {
    std::unique_lock lock(mutex_);
    queue_.push_back(std::move(task));
    // Idle threads are counted before they take from the queue; start a thread only when every
    // idle one is already spoken for.
    if (idle_ >= queue_.size()) {
        lock.unlock();
        wake_.notify_one();
        return;
    }
    if (threads_.size() >= max_threads_ || start_thread_locked() || !threads_.empty()) return;
    // No thread will ever take it: hand it back, destroyed outside the lock (its captures may
    // take other locks), and say so. Nothing else can have taken it: there is no thread.
    auto refused = std::move(queue_.back());
    queue_.pop_back();
    lock.unlock();
    refused = nullptr;
    throw PoolError("cannot start a thread for the " + name_ +
                    " pool (the process is out of threads or memory: see --memory-limit and ulimit -u)");
}

bool ElasticPool::retire_locked() {
    if (stopping_ || threads_.size() <= retire_.keep) return false;
    auto self = std::find_if(threads_.begin(), threads_.end(),
                             [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
    if (self == threads_.end()) return false;
    self->detach();
    threads_.erase(self);
    ++retiring_;
    return true;
}

size_t ElasticPool::thread_count() const {
    std::lock_guard lock(mutex_);
    return threads_.size();
}

size_t ElasticPool::busy_count() const {
    std::lock_guard lock(mutex_);
    return threads_.size() - idle_;
}

void ElasticPool::run_thread() {
    // Named after the pool (cut to the kernel's 15 bytes) so top -H, gdb and /proc tell pools apart.
    ::pthread_setname_np(::pthread_self(), name_.substr(0, 15).c_str());
    if (hooks_.on_start) hooks_.on_start();
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        bool woken = wake_.wait_for(lock, retire_.after, [&] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (!woken) {
            if (retire_locked()) {
                lock.unlock();
                if (hooks_.on_stop) hooks_.on_stop();
                lock.lock();
                --retiring_;
                // The last of a wave of retiring threads: what they freed (caches, Python
                // thread states, arena free lists) goes back to the OS.
                const bool wave_over = retiring_ == 0 && threads_.size() <= retire_.keep;
                retired_.notify_all();
                lock.unlock();  // `this` may be gone from here on
                if (wave_over) ::malloc_trim(0);
                return;
            }
            continue;
        }
        if (queue_.empty()) break;  // stopping with nothing left
        auto task = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        try {
            task();
        } catch (const std::exception& e) {
            spdlog::error("{} pool: task failed: {}", name_, e.what());
        } catch (...) {
            spdlog::error("{} pool: task failed with an unknown exception", name_);
        }
        task = nullptr;  // captured state dies on this thread, before it waits again
        lock.lock();
    }
    lock.unlock();
    if (hooks_.on_stop) hooks_.on_stop();
}

}  // namespace pymcp
