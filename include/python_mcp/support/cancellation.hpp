#pragma once
// Cooperative cancellation shared between the protocol layer, tools and the Python engine.
//
// A CancellationSource owns the flag; CancellationTokens observe it. Callbacks registered with
// on_cancel() run exactly once, on the thread that calls cancel() (or at once if it already
// happened). Thread-safe throughout. Lock order: the state's own mutex is never held while a
// callback runs, so callbacks may take any lock. Destroying a CancelRegistration waits for its
// callback if another thread is running it, so a callback never outlives what it captured.
// Nothing here throws except std::bad_alloc.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace pymcp {

namespace detail {
struct CancellationState;
}

class CancelRegistration {
public:
    CancelRegistration() = default;
    CancelRegistration(std::shared_ptr<detail::CancellationState> state, unsigned long id);
    CancelRegistration(CancelRegistration&& other) noexcept;
    CancelRegistration& operator=(CancelRegistration&& other) noexcept;
    CancelRegistration(const CancelRegistration&) = delete;
    CancelRegistration& operator=(const CancelRegistration&) = delete;
    ~CancelRegistration();
    void reset();

private:
    std::shared_ptr<detail::CancellationState> state_;
    unsigned long id_ = 0;
};

class CancellationToken {
public:
    CancellationToken() = default;  // a token that is never cancelled
    explicit CancellationToken(std::shared_ptr<detail::CancellationState> state);

    bool cancelled() const noexcept;
    std::string reason() const;
    [[nodiscard]] CancelRegistration on_cancel(std::function<void()> callback) const;
    // Sleeps until cancelled or the time passes; true when cancelled.
    bool wait_for(std::chrono::nanoseconds duration) const;
    bool wait_until(std::chrono::steady_clock::time_point deadline) const;

private:
    std::shared_ptr<detail::CancellationState> state_;
};

class CancellationSource {
public:
    CancellationSource();
    // A source that is also cancelled when `parent` is.
    explicit CancellationSource(const CancellationToken& parent);
    // Returns true for the call that actually cancelled.
    bool cancel(std::string reason = "cancelled") const;
    bool cancelled() const noexcept;
    CancellationToken token() const;

private:
    static bool cancel_state(const std::shared_ptr<detail::CancellationState>& state, std::string reason);

    std::shared_ptr<detail::CancellationState> state_;
    std::shared_ptr<CancelRegistration> parent_link_;
};

}  // namespace pymcp
