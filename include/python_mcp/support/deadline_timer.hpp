#pragma once
// Runs callbacks at given times on one thread of its own (time-outs of queued and running work).
//
// Thread-safe. Callbacks run on the timer thread with no lock held and must be short (they may
// post work elsewhere). The destructor drops callbacks that have not run yet and joins.

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace pymcp {

class DeadlineTimer {
public:
    using Clock = std::chrono::steady_clock;

    DeadlineTimer();
    ~DeadlineTimer();
    DeadlineTimer(const DeadlineTimer&) = delete;
    DeadlineTimer& operator=(const DeadlineTimer&) = delete;

    // Returns an id for cancel().
    uint64_t schedule(Clock::time_point when, std::function<void()> callback);
    // Drops a callback that has not run yet (no-op when it ran or is running).
    void cancel(uint64_t id);

private:
    void loop();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> due_;  // GUARDED_BY(mutex_)
    std::map<uint64_t, Clock::time_point> when_;                                  // GUARDED_BY(mutex_)
    uint64_t next_id_ = 1;                                                        // GUARDED_BY(mutex_)
    // When the timer thread will wake by itself (max: only when told; min: it is awake).
    Clock::time_point sleeping_until_ = Clock::time_point::min();                 // GUARDED_BY(mutex_)
    bool stop_ = false;                                             // GUARDED_BY(mutex_)
    std::thread thread_;
};

}  // namespace pymcp
