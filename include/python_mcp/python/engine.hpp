#pragma once
// The interface the python tool calls to run code. It knows nothing of pybind11, so the protocol
// and tool layers build and test without Python, and a later engine that runs sessions in forked
// worker processes can sit behind the same calls.
//
// Implementations are thread-safe: execute() is called concurrently from request threads and
// blocks its caller until the code finished, timed out or was cancelled. It throws only for
// requests it cannot accept (EngineError); everything user code does is in the ExecOutcome.

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "python_mcp/mcp/call_context.hpp"

namespace pymcp::python {

struct ExecRequest {
    std::string code;
    std::string session_id = "default";
    bool persistent = false;
    bool run_on_main_thread = false;
    std::chrono::milliseconds timeout{60000};
    size_t max_output = 64 * 1024;  // per stream, bytes
    std::string filename;           // shown in tracebacks; a script's path for run_script
    std::vector<std::string> argv;  // run_script: sys.argv while it runs (its path, then its args)
};

struct ExecError {
    std::string type;
    std::string message;
    std::string traceback;
};

struct StreamText {
    std::string text;        // what is kept: all of it, or head + marker + tail
    size_t total_bytes = 0;  // everything written
    size_t cut_bytes = 0;    // left out of `text`
};

struct ExecOutcome {
    enum class Status { Ok, Error, TimedOut, Cancelled };
    Status status = Status::Ok;
    StreamText out;
    StreamText err;
    std::optional<std::string> result;  // repr of the trailing expression, when not None
    size_t result_cut_bytes = 0;        // left out of `result` (cut like output past max_output)
    std::optional<ExecError> error;     // for Error and TimedOut
    double duration_ms = 0;
    // The code was still running when the answer was due (it ignored the interrupt, e.g. a long
    // C call): the session stays busy until it returns.
    bool still_running = false;
    std::vector<mcp::NestedCallRecord> mcp_calls;         // the first calls, one by one
    std::vector<mcp::NestedCallTally> mcp_calls_omitted;  // the rest, counted per tool
};

struct SessionInfo {
    std::string id;
    size_t variables = 0;
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point last_used;
    bool busy = false;
    size_t executions = 0;
};

class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Engine {
public:
    using Completion = std::function<void(ExecOutcome)>;

    virtual ~Engine() = default;
    // `context` is the tool call's; nested mcp.calls made by the code derive theirs from it.
    virtual ExecOutcome execute(const ExecRequest& request, const mcp::CallContext& context) = 0;
    // The same without holding the caller's thread: `done` is called exactly once, from any
    // thread, when the outcome is known (at the latest at the time-out plus a short grace, or at
    // once on cancellation). Engines that cannot do this say so with can_submit().
    virtual bool can_submit() const { return false; }
    virtual void submit(const ExecRequest& request, const mcp::CallContext& context, Completion done) {
        done(execute(request, context));
    }
    // Number of variables freed, or nullopt when there is no such session.
    virtual std::optional<size_t> clear_session(const std::string& session_id) = 0;
    virtual std::vector<SessionInfo> list_sessions() = 0;
    // Interrupts everything running (server shutdown). Returns without waiting.
    virtual void interrupt_all() {}
};

}  // namespace pymcp::python
