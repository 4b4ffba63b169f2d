#include "python_mcp/support/elastic_pool.hpp"

#include <spdlog/spdlog.h>

namespace pymcp {

ElasticPool::ElasticPool(std::string name, size_t max_threads, Hooks hooks)
    : name_(std::move(name)), max_threads_(max_threads), hooks_(std::move(hooks)) {}

ElasticPool::~ElasticPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
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
    if (threads_.size() < max_threads_) threads_.emplace_back([this] { run_thread(); });
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
    if (hooks_.on_start) hooks_.on_start();
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        --idle_;
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
