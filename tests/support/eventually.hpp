#pragma once
// Test helper: waiting for a condition with a deadline, never a blind sleep.

#include <chrono>
#include <thread>

namespace pymcp::testing {

// Polls `pred` every millisecond until it holds or `timeout` passes; its last answer.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
}

}  // namespace pymcp::testing
