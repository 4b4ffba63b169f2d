#pragma once
// Live output: what running code prints, sent to the client while it runs, as the `message` of
// notifications/progress. Batched and bounded, so a loop printing a million lines costs the
// client a few notifications a second, not a million messages:
//   - the first text goes at once (scheduled for now), later text at most one message per
//     `interval` (a timer flushes what waits);
//   - a message carries at most `max_message` bytes of what waited (cut on a UTF-8 boundary),
//     then "… N more bytes" (the execution's final result still has all of its output, cut only
//     by max_output);
//   - finish() sends what waits on the calling thread before the caller sends the final result;
//     text appended later is dropped.
// Python-free: the python tool makes one per execution whose request carried a progressToken.
//
// Threads: append() from any thread (the code's threads, the fd capture reader), cheap and never
// blocking on the client: it only stores text and schedules a flush. Flushes run on the timer's
// thread (one DeadlineTimer used only for live output, so a client that stops reading stalls only
// live output) or in finish(). Lock order: send_mutex_ -> mutex_; send() runs with send_mutex_
// held (messages leave in order), never with mutex_. Made with make_shared (the timer holds a
// weak_ptr). Nothing throws except std::bad_alloc; an exception from send() is swallowed.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "python_mcp/support/deadline_timer.hpp"

namespace pymcp::tools {

struct LiveOutputOptions {
    std::chrono::milliseconds interval{100};
    size_t max_message = 4096;  // bytes of text per message, before the "more bytes" marker
};

class LiveOutput : public std::enable_shared_from_this<LiveOutput> {
public:
    using Send = std::function<void(const std::string& message)>;

    LiveOutput(LiveOutputOptions options, DeadlineTimer& timer, Send send);
    LiveOutput(const LiveOutput&) = delete;
    LiveOutput& operator=(const LiveOutput&) = delete;

    void append(std::string_view text);
    // Sends what waits, here, and drops later text. Idempotent.
    void finish();
    size_t messages_sent() const;

    // `text` cut to `limit` bytes on a UTF-8 boundary, with "… N more bytes" when cut (N counts
    // `extra` bytes that were never stored too).
    static std::string bounded_message(std::string text, size_t limit, size_t extra);

private:
    void flush();  // the timer's thread
    // With send_mutex_ held: takes what waits and sends it.
    void send_pending(bool finishing);

    const LiveOutputOptions options_;
    DeadlineTimer& timer_;
    const Send send_;
    std::mutex send_mutex_;
    mutable std::mutex mutex_;
    std::string pending_;        // GUARDED_BY(mutex_): at most max_message + 3 bytes
    size_t dropped_ = 0;         // GUARDED_BY(mutex_): bytes past what pending_ keeps
    bool scheduled_ = false;     // GUARDED_BY(mutex_): a flush is on the timer
    bool finished_ = false;      // GUARDED_BY(mutex_)
    DeadlineTimer::Clock::time_point last_sent_{};  // GUARDED_BY(mutex_)
    size_t sent_ = 0;            // GUARDED_BY(mutex_)
};

}  // namespace pymcp::tools
