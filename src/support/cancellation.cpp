#include "python_mcp/support/cancellation.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace pymcp {
namespace detail {

struct CancellationState {
    std::atomic<bool> cancelled{false};
    std::mutex mutex;
    std::condition_variable changed;
    std::string reason;
    unsigned long next_id = 1;
    std::map<unsigned long, std::function<void()>> callbacks;
    unsigned long running_id = 0;  // the callback cancel() is running now, if any
    std::thread::id running_thread;
};

}  // namespace detail

using detail::CancellationState;

CancelRegistration::CancelRegistration(std::shared_ptr<CancellationState> state, unsigned long id)
    : state_(std::move(state)), id_(id) {}

CancelRegistration::CancelRegistration(CancelRegistration&& other) noexcept
    : state_(std::move(other.state_)), id_(other.id_) {
    other.id_ = 0;
}

CancelRegistration& CancelRegistration::operator=(CancelRegistration&& other) noexcept {
    if (this != &other) {
        reset();
        state_ = std::move(other.state_);
        id_ = other.id_;
        other.id_ = 0;
    }
    return *this;
}

CancelRegistration::~CancelRegistration() { reset(); }

void CancelRegistration::reset() {
    if (!state_ || id_ == 0) {
        state_.reset();
        return;
    }
    std::unique_lock lock(state_->mutex);
    state_->callbacks.erase(id_);
    // The callback may be running on another thread right now: wait, so that what it captured
    // stays alive until it returns. On the cancelling thread itself, waiting would deadlock.
    state_->changed.wait(lock, [&] {
        return state_->running_id != id_ || state_->running_thread == std::this_thread::get_id();
    });
    lock.unlock();
    state_.reset();
    id_ = 0;
}

CancellationToken::CancellationToken(std::shared_ptr<CancellationState> state) : state_(std::move(state)) {}

bool CancellationToken::cancelled() const noexcept {
    return state_ && state_->cancelled.load(std::memory_order_acquire);
}

std::string CancellationToken::reason() const {
    if (!state_) return {};
    std::lock_guard lock(state_->mutex);
    return state_->reason;
}

CancelRegistration CancellationToken::on_cancel(std::function<void()> callback) const {
    if (!state_) return {};
    {
        std::lock_guard lock(state_->mutex);
        if (!state_->cancelled.load()) {
            auto id = state_->next_id++;
            state_->callbacks.emplace(id, std::move(callback));
            return CancelRegistration(state_, id);
        }
    }
    callback();
    return {};
}

bool CancellationToken::wait_for(std::chrono::nanoseconds duration) const {
    return wait_until(std::chrono::steady_clock::now() + duration);
}

bool CancellationToken::wait_until(std::chrono::steady_clock::time_point deadline) const {
    if (!state_) {
        std::this_thread::sleep_until(deadline);
        return false;
    }
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_until(lock, deadline, [&] { return state_->cancelled.load(); });
}

CancellationSource::CancellationSource() : state_(std::make_shared<CancellationState>()) {}

CancellationSource::CancellationSource(const CancellationToken& parent)
    : state_(std::make_shared<CancellationState>()) {
    std::weak_ptr<CancellationState> weak = state_;
    auto reason_of = parent;
    parent_link_ = std::make_shared<CancelRegistration>(parent.on_cancel([weak, reason_of] {
        if (auto s = weak.lock()) CancellationSource::cancel_state(s, reason_of.reason());
    }));
}

bool CancellationSource::cancel(std::string reason) const { return cancel_state(state_, std::move(reason)); }

bool CancellationSource::cancel_state(const std::shared_ptr<CancellationState>& state, std::string reason) {
    std::unique_lock lock(state->mutex);
    if (state->cancelled.load()) return false;
    state->reason = std::move(reason);
    state->cancelled.store(true, std::memory_order_release);
    state->changed.notify_all();
    while (!state->callbacks.empty()) {
        auto it = state->callbacks.begin();
        auto id = it->first;
        auto callback = std::move(it->second);
        state->callbacks.erase(it);
        state->running_id = id;
        state->running_thread = std::this_thread::get_id();
        lock.unlock();
        try {
            callback();
        } catch (...) {
            // A callback must not stop the others from running.
        }
        lock.lock();
        state->running_id = 0;
        state->changed.notify_all();
    }
    return true;
}

bool CancellationSource::cancelled() const noexcept { return state_->cancelled.load(std::memory_order_acquire); }

CancellationToken CancellationSource::token() const { return CancellationToken(state_); }

}  // namespace pymcp
