#pragma once
// An MCP client over one child process's stdin/stdout: newline-delimited JSON-RPC, requests
// multiplexed by id so any number of threads may have calls in flight at once. The JSON-RPC
// work (ids, the pending map, progress routing, time-outs, cancellation, answering the server's
// own requests) is a jsonrpc::Peer's over a jsonrpc::StdioTransport; this class adds the child
// process, MCP's handshake and results, and the decisions about when the connection is over.
//
// Threads: the constructor starts two threads that live until close(): the reader (runs the
// transport: parses the child's stdout, completes waiting requests, answers the server's own
// requests through the Peer's method table, hands notifications/tools/list_changed to
// on_tools_changed) and the stderr reader (logs each line at info level, prefixed with the
// server's name, and keeps the last few for error messages). Any thread may call
// request()/call_tool()/notify(); each request blocks its caller until the answer, the deadline,
// the caller's cancellation or the connection's end.
// Callbacks (on_tools_changed, on_closed) run with no lock of ours held; they must not wait for
// a request. on_tools_changed runs on the reader thread; on_closed on the thread that ended the
// connection (the reader, a call whose write stalled, or close()/kill()).
// Lock order: Impl's mutex is a leaf: never held while the Peer, the transport, the Subprocess
// or a callback runs. The Peer's and the transport's locks are leaves in their classes; the
// transport's stall callback (which may close the Peer and the transport) runs with none held.
// Both reader threads share ownership of the state, so close() can leave a reader behind
// (detached) if something the child started still holds its pipe open.
// Throws: request methods throw ClientError; nothing else throws except std::bad_alloc.
//
// Writes to the child's stdin (non-blocking, one writer at a time) each have a deadline and, for
// requests, the caller's cancellation, whether waiting for their turn or for room in the pipe.
// Answers to the server's requests and notifications get 10 s. A write that gave up with part of
// its line written (cancelled, or out of time), or that found the pipe full until its deadline
// (the child stopped reading), ends the connection: the child is killed and every waiting
// request fails with that reason (the manager restarts the server on the next call). A request
// cancelled before any of it was written just fails.
//
// Lines that are not JSON-RPC are logged and skipped, as the reference SDK clients do, except an
// answer we wait for that cannot be parsed (nested deeper than max_depth, invalid UTF-8): the
// Peer reads its id from the top level of the text (without recursing) and that request fails
// at once with ClientError::Kind::Protocol. A line longer than max_line_bytes breaks the
// connection (an answer was lost): the child is killed and every waiting request fails.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/client/subprocess.hpp"
#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::client {

using json = pymcp::json;

class ClientError : public std::runtime_error {
public:
    enum class Kind {
        Closed,     // the connection is gone (the server exited, broke the protocol, or we closed it)
        Timeout,    // no answer before the deadline (notifications/cancelled was sent)
        Cancelled,  // the caller's token was cancelled (notifications/cancelled was sent)
        Rpc,        // the server answered with a JSON-RPC error
        Protocol,   // the answer makes no sense (wrong protocol version, a result of the wrong type)
    };
    ClientError(Kind kind, const std::string& message, int code = 0, json data = nullptr)
        : std::runtime_error(message), kind_(kind), code_(code), data_(std::move(data)) {}
    Kind kind() const { return kind_; }
    int code() const { return code_; }  // the JSON-RPC error code for Kind::Rpc
    const json& data() const { return data_; }

private:
    Kind kind_;
    int code_;
    json data_;
};

// The answer to a request the server sent us (on_server_request): a JSON-RPC error instead of a
// result.
class ServerRequestError : public std::runtime_error {
public:
    ServerRequestError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

// The part of a server's recent stderr that explains a failure, for error messages:
// "; stderr: <line> | <line> ...", or "" when there is nothing to show. Noise is skipped (blank
// lines, `npm notice` and `npm warn` lines, which npx prints after the real error); lines that
// look like errors (error, ENOENT, cannot, not found, denied, fatal, exception, ...) are shown,
// the first few and the last; without any, the last few lines. Each line is shortened to 300
// bytes.
std::string stderr_excerpt(const std::vector<std::string>& tail);

struct ProgressUpdate {
    double progress = 0;
    double total = -1;  // -1 when the server gave none
    std::string message;
};

struct McpClientOptions {
    std::string name;  // the server's name, in logs and messages
    size_t max_line_bytes = 64u << 20;
    size_t max_stderr_line_bytes = 64u << 10;
    size_t stderr_tail_lines = 64;           // kept for error messages, each cut to 1 KiB
    // Nesting a message from the server may have (the message object is level 1); a deeper
    // answer fails its request at once. The protocol sets no limit, but parsing, copying and
    // converting to Python recurse: measured at 2048 levels, parsing takes under 640 KiB of stack
    // in a release build and under 5 MiB with AddressSanitizer+UBSan, inside the 8 MiB threads
    // get (4096 levels overflowed 8 MiB under the sanitizers).
    size_t max_depth = 2048;
    // What initialize declares we can answer (its `capabilities`).
    json capabilities = json::object();
    // The server's own requests other than ping (elicitation/create, sampling/createMessage,
    // roots/list), when set: each runs on a thread of its own, since its answer may wait for a
    // person, at most kMaxServerRequests at once (more are answered -32603 at once). Returns the
    // result or throws ServerRequestError (any other exception: -32603). `cancel` fires when the
    // server cancels its request or the connection ends. Unset: those requests get -32601.
    std::function<json(const std::string& method, const json& params, const CancellationToken& cancel)>
        on_server_request;
    static constexpr int kMaxServerRequests = 8;
    // On the reader thread, no lock held.
    std::function<void()> on_tools_changed;
    // Exactly once, when the connection ends for any reason, on the thread that ended it.
    std::function<void(const std::string& reason)> on_closed;
};

class McpClient {
public:
    // Takes the process's pipes and starts the reader threads. The process must be fresh.
    McpClient(Subprocess process, McpClientOptions options);
    ~McpClient();  // close(500 ms) unless done
    McpClient(const McpClient&) = delete;
    McpClient& operator=(const McpClient&) = delete;

    // initialize (offering the newest revision, accepting any of mcp::kLegacyProtocolVersions),
    // then notifications/initialized. Returns the initialize result.
    json initialize(const json& client_info, std::chrono::steady_clock::time_point deadline,
                    const CancellationToken& cancel);
    // Every page of tools/list, following nextCursor.
    std::vector<json> list_tools(std::chrono::steady_clock::time_point deadline, const CancellationToken& cancel);
    // tools/call; the CallToolResult as the server sent it. on_progress, when given, runs on the
    // calling thread for each notifications/progress the server sends for this call, and each
    // one restarts the time-out (as the TypeScript SDK's resetTimeoutOnProgress): a long job
    // that reports progress is not cut off, a silent one is. The caller's cancellation (an
    // execution's own time-out) still ends it.
    json call_tool(const std::string& tool, const json& arguments, std::chrono::milliseconds timeout,
                   const CancellationToken& cancel,
                   const std::function<void(const ProgressUpdate&)>& on_progress = {});
    json request(const std::string& method, const json& params, std::chrono::steady_clock::time_point deadline,
                 const CancellationToken& cancel,
                 const std::function<void(const ProgressUpdate&)>& on_progress = {});
    bool notify(const std::string& method, const json& params = nullptr);

    pid_t pid() const;
    bool closed() const;
    std::string close_reason() const;
    std::string protocol_version() const;  // empty before initialize
    json server_info() const;
    json server_capabilities() const;
    std::vector<std::string> recent_stderr() const;

    // Fails every waiting request with `reason`, closes the child's stdin, then SIGTERM and
    // SIGKILL (each after `grace`), reaps it and joins the readers. Idempotent; returns the
    // child's wait status.
    int close(std::chrono::milliseconds grace, const std::string& reason = "connection closed by python-mcp");
    // Kills the child at once (SIGKILL to its group); the readers then see the end.
    void kill(const std::string& reason);

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
    std::thread reader_;
    std::thread stderr_reader_;
    std::optional<int> close_status_;
};

}  // namespace pymcp::client
