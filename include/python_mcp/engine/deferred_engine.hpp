#pragma once
// An Engine that exists before the interpreter does. The server answers `initialize`,
// `tools/list` and `ping` while Python is still starting on the main thread; a `tools/call` that
// needs Python in that window is queued here (no thread held) and handed on, in order, when the
// real engine is ready.
//
// Threads: any request thread calls the Engine methods; the starting thread calls ready() or
// fail() once. Lock order: mutex_ only, never held while calling into the real engine or a
// completion. Throws EngineError (from submit, clear_session, list_sessions, read_output) after
// fail(), with its reason; a queued submission then completes with an EngineError outcome.
// clear_session, list_sessions and read_output block until the engine is settled.

#include <condition_variable>
#include <deque>
#include <mutex>

#include "python_mcp/engine/engine.hpp"

namespace pymcp::engine {

class DeferredEngine final : public Engine {
public:
    DeferredEngine() = default;
    DeferredEngine(const DeferredEngine&) = delete;
    DeferredEngine& operator=(const DeferredEngine&) = delete;

    // The real engine is up: queued submissions go to it (on this thread), waiters wake.
    // `engine` must outlive this object's use.
    void ready(Engine& engine);
    // Python could not start: everything waiting and everything later fails with `reason`.
    void fail(std::string reason);
    bool is_ready() const;

    bool can_submit() const override;
    void submit(const ExecRequest& request, std::shared_ptr<ExecutionHost> host, Completion done) override;
    std::optional<size_t> clear_session(const std::string& session_id) override;
    std::optional<size_t> restart_session(const std::string& session_id) override;
    std::vector<SessionInfo> list_sessions() override;
    std::optional<BackgroundOutput> read_output(const std::string& session_id) override;
    void interrupt_all() override;

private:
    struct Pending {
        ExecRequest request;
        std::shared_ptr<ExecutionHost> host;
        Completion done;
    };
    // Blocks until ready() or fail(); the real engine, or throws EngineError.
    Engine& wait();
    static ExecOutcome failure_outcome(const std::string& reason);

    mutable std::mutex mutex_;
    std::condition_variable settled_;
    Engine* engine_ = nullptr;       // GUARDED_BY(mutex_); set once
    std::string failure_;            // GUARDED_BY(mutex_); non-empty once failed
    std::deque<Pending> pending_;    // GUARDED_BY(mutex_)
};

}  // namespace pymcp::engine
