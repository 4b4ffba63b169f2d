#pragma once
// Gets a starting execution the GIL sooner when other executions keep it busy.
//
// CPython hands the GIL over only after a waiter has waited a whole switch interval (1 ms here),
// and then to the waiter that has waited longest; a waiter whose interval runs out goes to the
// back. Behind four CPU-bound sessions a trivial execute so waited 3-4 ms for the GIL (measured:
// median 3.7 ms of a 4.9 ms round trip). While an execution that shares the GIL with others
// waits for it, the interval is cut to kWaitingInterval for everyone, so the GIL goes round
// faster until it arrives (measured: 0.6 ms of 1.6 ms); it is put back once no such execution
// waits. Only the wait is sped up: the execution then keeps the GIL for at least the normal
// interval, enough for a short cell.
//
// Thread-safe (one mutex, never held while waiting for the GIL; used without holding the GIL).
// A switch interval user code sets (sys.setswitchinterval) while an execution waits is replaced
// by the one saved when the first waiter came. Nothing throws.

#include <chrono>
#include <mutex>

namespace pymcp::python {

class GilPriority {
public:
    static constexpr std::chrono::microseconds kWaitingInterval{50};

    static GilPriority& instance();

    // Scope of one wait for the GIL; `shared`: other executions are running.
    class Waiting {
    public:
        Waiting(GilPriority& priority, bool shared);
        ~Waiting() { done(); }
        // Call once the GIL is held.
        void done();
        Waiting(const Waiting&) = delete;
        Waiting& operator=(const Waiting&) = delete;

    private:
        GilPriority* priority_;
    };

private:
    void begin();
    void end();

    std::mutex mutex_;
    int waiting_ = 0;             // GUARDED_BY(mutex_)
    unsigned long saved_us_ = 0;  // GUARDED_BY(mutex_): the interval to put back
};

}  // namespace pymcp::python
