#include "python_mcp/support/deadline_timer.hpp"

namespace pymcp {

DeadlineTimer::DeadlineTimer() : thread_([this] { loop(); }) {}

DeadlineTimer::~DeadlineTimer() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

uint64_t DeadlineTimer::schedule(Clock::time_point when, std::function<void()> callback) {
    bool earliest;
    uint64_t id;
    {
        std::lock_guard lock(mutex_);
        id = next_id_++;
        auto it = due_.emplace(std::make_pair(when, id), std::move(callback)).first;
        when_.emplace(id, when);
        // The timer thread needs waking only when this is due before the time it sleeps until
        // (which may be a cancelled deadline's: it then wakes for nothing, once). So a run of
        // calls, each scheduling a time-out and cancelling it, costs no wake-up per call.
        earliest = it == due_.begin() && when < sleeping_until_;
    }
    if (earliest) wake_.notify_all();
    return id;
}

void DeadlineTimer::cancel(uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = when_.find(id);
    if (it == when_.end()) return;
    due_.erase(std::make_pair(it->second, id));
    when_.erase(it);
}

void DeadlineTimer::loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
        if (due_.empty()) {
            sleeping_until_ = Clock::time_point::max();
            wake_.wait(lock);
            continue;
        }
        auto first = due_.begin();
        // A copy: wait_until reads its time point again after waking, when cancel() may have
        // erased the node this one lives in (use-after-free found by the ASan run).
        const Clock::time_point when = first->first.first;
        if (when > Clock::now()) {
            sleeping_until_ = when;
            wake_.wait_until(lock, when);
            continue;
        }
        sleeping_until_ = Clock::time_point::min();  // running callbacks: it looks again before sleeping
        auto callback = std::move(first->second);
        when_.erase(first->first.second);
        due_.erase(first);
        lock.unlock();
        callback();
        callback = nullptr;
        lock.lock();
    }
}

}  // namespace pymcp
