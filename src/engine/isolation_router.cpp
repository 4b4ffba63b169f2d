#include "python_mcp/engine/isolation_router.hpp"

#include <algorithm>

namespace pymcp::engine {

std::optional<Isolation> parse_isolation(const std::string& text) {
    if (text == "thread") return Isolation::Thread;
    if (text == "process") return Isolation::Process;
    return std::nullopt;
}

const char* isolation_name(Isolation mode) { return mode == Isolation::Thread ? "thread" : "process"; }

IsolationRouter::IsolationRouter(Engine& threads, Engine& processes, Isolation default_mode)
    : threads_(threads), processes_(processes), default_(default_mode) {}

bool IsolationRouter::exists_in(Engine& engine, const std::string& session_id) {
    auto sessions = engine.list_sessions();
    return std::any_of(sessions.begin(), sessions.end(), [&](const SessionInfo& s) { return s.id == session_id; });
}

Isolation IsolationRouter::mode_for(const ExecRequest& request) {
    std::optional<Isolation> asked;
    if (!request.isolation.empty()) {
        asked = parse_isolation(request.isolation);
        if (!asked)
            throw EngineError("'isolation' must be \"thread\" or \"process\", not \"" + request.isolation + "\"");
    }
    std::optional<Isolation> recorded;
    {
        std::lock_guard lock(mutex_);
        if (auto it = modes_.find(request.session_id); it != modes_.end()) recorded = it->second;
        if (!recorded) {
            Isolation mode = asked.value_or(default_);
            modes_.emplace(request.session_id, mode);
            return mode;
        }
        if (!asked || *asked == *recorded) return *recorded;
    }
    // The other mode was asked for: allowed only when the old session is gone (it expired).
    if (exists_in(engine_of(*recorded), request.session_id))
        throw EngineError("session '" + request.session_id + "' runs with " + isolation_name(*recorded) +
                          " isolation and keeps the mode it was created with; the code did not run. Clear it "
                          "(clear_session) first, or use another session_id for " + isolation_name(*asked) +
                          " isolation");
    std::lock_guard lock(mutex_);
    modes_[request.session_id] = *asked;
    return *asked;
}

Isolation IsolationRouter::known_mode(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    auto it = modes_.find(session_id);
    return it == modes_.end() ? default_ : it->second;
}

void IsolationRouter::submit(const ExecRequest& request, std::shared_ptr<ExecutionHost> host, Completion done) {
    engine_of(mode_for(request)).submit(request, std::move(host), std::move(done));
}

std::optional<size_t> IsolationRouter::clear_session(const std::string& session_id) {
    auto freed = engine_of(known_mode(session_id)).clear_session(session_id);
    std::lock_guard lock(mutex_);
    modes_.erase(session_id);
    return freed;
}

std::optional<size_t> IsolationRouter::restart_session(const std::string& session_id) {
    return engine_of(known_mode(session_id)).restart_session(session_id);
}

std::vector<SessionInfo> IsolationRouter::list_sessions() {
    auto out = threads_.list_sessions();
    for (auto& s : out) s.isolation = "thread";
    for (auto& s : processes_.list_sessions()) {
        s.isolation = "process";
        out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

std::optional<BackgroundOutput> IsolationRouter::read_output(const std::string& session_id) {
    return engine_of(known_mode(session_id)).read_output(session_id);
}

void IsolationRouter::interrupt_all() {
    threads_.interrupt_all();
    processes_.interrupt_all();
}

}  // namespace pymcp::engine
