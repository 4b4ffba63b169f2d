#include "python_mcp/python/gil_priority.hpp"

#include <Python.h>

namespace pymcp::python {

namespace {
constexpr auto kWaitingUs = static_cast<unsigned long>(GilPriority::kWaitingInterval.count());
}

GilPriority& GilPriority::instance() {
    static GilPriority priority;
    return priority;
}

// _PyEval_{Get,Set}SwitchInterval only read and write the runtime's interval field: no GIL is
// needed, and a thread waiting in take_gil reads it again on each round of its wait.
void GilPriority::begin() {
    std::lock_guard lock(mutex_);
    if (waiting_++ == 0) {
        saved_us_ = _PyEval_GetSwitchInterval();
        if (saved_us_ > kWaitingUs) _PyEval_SetSwitchInterval(kWaitingUs);
    }
}

void GilPriority::end() {
    std::lock_guard lock(mutex_);
    if (--waiting_ == 0 && saved_us_ > kWaitingUs) _PyEval_SetSwitchInterval(saved_us_);
}

GilPriority::Waiting::Waiting(GilPriority& priority, bool shared) : priority_(shared ? &priority : nullptr) {
    if (priority_) priority_->begin();
}

void GilPriority::Waiting::done() {
    if (priority_) {
        priority_->end();
        priority_ = nullptr;
    }
}

}  // namespace pymcp::python
