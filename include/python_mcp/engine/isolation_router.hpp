#pragma once
// The engine the python tool sees when sessions may run in the server (thread isolation, the
// SessionEngine) or in worker processes (process isolation, the ProcessEngine): it sends each
// session to the engine of its mode. A session's mode is fixed when it is first named (the
// request's `isolation`, else the server's --isolation) and kept until it is cleared; a request
// asking for the other mode of an existing session is refused (EngineError) with what to do.
//
// Threads: any. Lock order: mutex_ is a leaf, never held while calling an engine (a mode check
// that needs the thread engine's session list releases it first). Throws EngineError for an
// unknown or mismatching mode; everything else comes from the engines.

#include <mutex>
#include <string>
#include <unordered_map>

#include "python_mcp/engine/engine.hpp"

namespace pymcp::engine {

enum class Isolation { Thread, Process };

// "thread"/"process" -> Isolation; nullopt for anything else.
std::optional<Isolation> parse_isolation(const std::string& text);
const char* isolation_name(Isolation mode);

class IsolationRouter final : public Engine {
public:
    // Both engines must outlive the router.
    IsolationRouter(Engine& threads, Engine& processes, Isolation default_mode);

    void submit(const ExecRequest& request, std::shared_ptr<ExecutionHost> host, Completion done) override;
    std::optional<size_t> clear_session(const std::string& session_id) override;
    std::optional<size_t> restart_session(const std::string& session_id) override;
    std::vector<SessionInfo> list_sessions() override;
    std::optional<BackgroundOutput> read_output(const std::string& session_id) override;
    void interrupt_all() override;

private:
    // The mode of the request's session, recorded when the session is first named.
    Isolation mode_for(const ExecRequest& request);
    Isolation known_mode(const std::string& session_id);  // the default when never named
    bool exists_in(Engine& engine, const std::string& session_id);
    Engine& engine_of(Isolation mode) { return mode == Isolation::Thread ? threads_ : processes_; }

    Engine& threads_;
    Engine& processes_;
    const Isolation default_;
    std::mutex mutex_;
    std::unordered_map<std::string, Isolation> modes_;  // GUARDED_BY(mutex_)
};

}  // namespace pymcp::engine
