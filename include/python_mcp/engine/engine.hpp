#pragma once
// The interface the python tool calls to run code: plain data in (ExecRequest), plain data out
// (ExecOutcome), and an ExecutionHost for what running code asks of the outside while it runs.
// It knows nothing of Python or of the MCP protocol, so the protocol and tool layers build and
// test without Python, and an engine that runs sessions in forked worker processes can sit
// behind the same calls (everything here can be serialised).
//
// Implementations are thread-safe: submit() and execute() are called concurrently from request
// threads. They throw only for requests they cannot accept (EngineError); everything user code
// does is in the ExecOutcome.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "python_mcp/engine/execution_host.hpp"
#include "python_mcp/support/cancellation.hpp"

namespace pymcp::engine {

struct ExecRequest {
    std::string code;
    std::string session_id = "default";
    bool persistent = false;
    bool run_on_main_thread = false;
    std::chrono::milliseconds timeout{60000};
    size_t max_output = 64 * 1024;  // per stream, bytes
    std::string filename;           // shown in tracebacks; a script's path for run_script
    std::vector<std::string> argv;  // run_script: sys.argv while it runs (its path, then its args)
    // Images (figures, display()) kept per call: past either budget they are dropped and counted.
    size_t max_images = 8;
    size_t max_image_bytes = 2 * 1024 * 1024;  // decoded bytes, all images together
    // Overflow: text past max_output (stdout, stderr, the result's repr) is also kept whole in
    // files named <spool_prefix>stdout.txt, ...stderr.txt, ...result.txt, each at most
    // spool_max_bytes. Empty prefix: nothing is kept beyond head and tail. The engine only writes
    // the files and names them in the outcome (StreamText::spool); the caller owns them after.
    std::string spool_prefix;
    size_t spool_max_bytes = 0;
    // The request's own cancellation (the client's notifications/cancelled): the execution is
    // interrupted when it fires, and answered at once.
    CancellationToken cancel;
    // "thread" (in the server), "process" (a worker process of its own), or "" for the server's
    // --isolation. Honoured when the session is created; an existing session keeps its mode.
    std::string isolation;
};

struct ExecError {
    std::string type;
    std::string message;
    std::string traceback;
};

// A file holding a text whole (or its first `bytes`, when it reached the request's
// spool_max_bytes: complete is then false).
struct SpoolFile {
    std::string path;
    size_t bytes = 0;
    bool complete = true;
};

struct StreamText {
    std::string text;        // what is kept: all of it, or head + marker + tail
    size_t total_bytes = 0;  // everything written
    size_t cut_bytes = 0;    // left out of `text`
    std::optional<SpoolFile> spool;  // where all of it is, when something was cut and it was kept
};

// A record of one call the code made through its host (mcp.call), for the outcome's log.
struct NestedCallRecord {
    std::string tool;
    double duration_ms = 0;
    bool is_error = false;
};

// Calls past the ones logged one by one, counted per tool.
struct NestedCallTally {
    std::string tool;
    size_t calls = 0;
    size_t errors = 0;
    double total_ms = 0;
};

// Rich content the code produced (a figure, display(obj)), in the order it came.
struct ContentItem {
    enum class Kind { Image, Text };
    Kind kind = Kind::Text;
    std::string mime;  // image/png, image/jpeg, image/svg+xml; text/markdown, text/html, text/plain
    std::string data;  // raw bytes for images (the tool encodes them), UTF-8 for text
};

struct ExecOutcome {
    enum class Status { Ok, Error, TimedOut, Cancelled };
    Status status = Status::Ok;
    StreamText out;
    StreamText err;
    std::optional<std::string> result;  // repr of the trailing expression, when not None
    size_t result_cut_bytes = 0;        // left out of `result` (cut like output past max_output)
    std::optional<SpoolFile> result_spool;  // the whole repr, when cut and kept (spool_prefix)
    std::optional<ExecError> error;     // for Error and TimedOut
    double duration_ms = 0;
    // The code was still running when the answer was due (it ignored the interrupt, e.g. a long
    // C call): the session stays busy until it returns.
    bool still_running = false;
    std::vector<NestedCallRecord> mcp_calls;         // the first calls, one by one
    std::vector<NestedCallTally> mcp_calls_omitted;  // the rest, counted per tool
    // Bytes that threads of earlier runs in this session printed after their run had ended,
    // waiting for read_output (0 when none).
    size_t background_output_bytes = 0;
    std::vector<ContentItem> display;  // images within the request's budget, and display() text
    size_t images_dropped = 0;         // past max_images / max_image_bytes
    size_t image_bytes_dropped = 0;
    size_t texts_dropped = 0;          // display() text past the per-call cap
};

struct SessionInfo {
    std::string id;
    size_t variables = 0;
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point last_used;
    bool busy = false;
    size_t executions = 0;
    // False for a name that only has background output waiting (fresh-namespace runs).
    bool persistent = true;
    size_t pending_output_bytes = 0;  // background output waiting for read_output
    std::string isolation = "thread";  // "thread" or "process"
    // Process isolation: why the session's worker was last lost (killed after a time-out or a
    // cancel it ignored, crashed, restart_session), "" when never; its variables went with it.
    std::string lost = "";
    size_t losses = 0;
};

// What threads started by code printed after their execution had ended, kept per session name
// (bounded like max_output) until read_output takes it.
struct BackgroundOutput {
    StreamText out;
    StreamText err;
};

class EngineError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Engine {
public:
    using Completion = std::function<void(ExecOutcome)>;

    virtual ~Engine() = default;
    // Queues the request; `done` is called exactly once, from any thread, when the outcome is
    // known (at the latest at the time-out plus a short grace, or at once on cancellation).
    // `host` serves the code's output, progress and tool calls while it runs (and its threads'
    // output after). Throws EngineError, with nothing queued, for a request it refuses.
    virtual void submit(const ExecRequest& request, std::shared_ptr<ExecutionHost> host, Completion done) = 0;
    // Whether submit() returns without holding the caller's thread (false: it may block until
    // the engine exists, so call it where blocking is allowed).
    virtual bool can_submit() const { return true; }
    // submit() and wait for the outcome.
    ExecOutcome execute(const ExecRequest& request, std::shared_ptr<ExecutionHost> host);
    // Number of variables freed, or nullopt when there is no such session.
    virtual std::optional<size_t> clear_session(const std::string& session_id) = 0;
    virtual std::vector<SessionInfo> list_sessions() = 0;
    // Takes (and clears) the background output waiting for `session_id`; nullopt when none.
    virtual std::optional<BackgroundOutput> read_output(const std::string& session_id) {
        (void)session_id;
        return std::nullopt;
    }
    // Interrupts everything running (server shutdown). Returns without waiting.
    virtual void interrupt_all() {}
    // Ends the session's worker process now (running code is killed, its call answered with an
    // error) so that the next call starts it fresh. The number of variables it had, or nullopt
    // when there is no such session. Throws EngineError where sessions cannot be restarted
    // (thread isolation: code in the server's threads cannot be killed).
    virtual std::optional<size_t> restart_session(const std::string& session_id) {
        throw EngineError("restart_session needs process isolation: session '" + session_id +
                          "' runs in a thread of the server, where running code cannot be killed. Use "
                          "clear_session to drop its variables, or start sessions with \"isolation\": \"process\" "
                          "(or the server with --isolation process)");
    }
};

}  // namespace pymcp::engine
