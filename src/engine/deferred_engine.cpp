#include "python_mcp/engine/deferred_engine.hpp"

namespace pymcp::engine {

void DeferredEngine::ready(Engine& engine) {
    // Hand on the queue in order before publishing the engine, so a submission arriving now
    // cannot overtake one that was waiting (per session, order is the user's order).
    std::unique_lock lock(mutex_);
    while (!pending_.empty()) {
        auto batch = std::move(pending_);
        pending_.clear();
        lock.unlock();
        for (auto& p : batch) {
            try {
                // A copy of `done`, not a move: if submit() refuses, the catch below answers.
                engine.submit(p.request, p.host, p.done);
            } catch (const EngineError& e) {
                p.done(failure_outcome(e.what()));
            }
        }
        lock.lock();
    }
    engine_ = &engine;
    lock.unlock();
    settled_.notify_all();
}

void DeferredEngine::fail(std::string reason) {
    std::deque<Pending> batch;
    {
        std::lock_guard lock(mutex_);
        failure_ = reason.empty() ? "Python failed to start" : std::move(reason);
        batch = std::move(pending_);
        pending_.clear();
    }
    settled_.notify_all();
    for (auto& p : batch) p.done(failure_outcome(failure_));
}

bool DeferredEngine::is_ready() const {
    std::lock_guard lock(mutex_);
    return engine_ != nullptr;
}

ExecOutcome DeferredEngine::failure_outcome(const std::string& reason) {
    ExecOutcome o;
    o.status = ExecOutcome::Status::Error;
    o.error = ExecError{"EngineError", reason, ""};
    return o;
}

Engine& DeferredEngine::wait() {
    std::unique_lock lock(mutex_);
    settled_.wait(lock, [&] { return engine_ != nullptr || !failure_.empty(); });
    if (!engine_) throw EngineError(failure_);
    return *engine_;
}

bool DeferredEngine::can_submit() const {
    std::lock_guard lock(mutex_);
    return engine_ == nullptr || engine_->can_submit();
}

void DeferredEngine::submit(const ExecRequest& request, std::shared_ptr<ExecutionHost> host, Completion done) {
    Engine* engine = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (!failure_.empty()) throw EngineError(failure_);
        engine = engine_;
        if (!engine) {
            pending_.push_back(Pending{request, std::move(host), std::move(done)});
            return;
        }
    }
    engine->submit(request, std::move(host), std::move(done));
}

std::optional<size_t> DeferredEngine::clear_session(const std::string& session_id) {
    return wait().clear_session(session_id);
}

std::optional<size_t> DeferredEngine::restart_session(const std::string& session_id) {
    return wait().restart_session(session_id);
}

std::vector<SessionInfo> DeferredEngine::list_sessions() { return wait().list_sessions(); }

std::optional<BackgroundOutput> DeferredEngine::read_output(const std::string& session_id) {
    return wait().read_output(session_id);
}

void DeferredEngine::interrupt_all() {
    Engine* engine = nullptr;
    {
        std::lock_guard lock(mutex_);
        engine = engine_;
    }
    if (engine) engine->interrupt_all();
}

}  // namespace pymcp::engine
