#pragma once
// What a tool call knows about the request that started it, and what it may send back.
//
// A CallContext is made by the protocol layer for each tools/call (or by the mcp bridge for each
// nested mcp.call). Tools read its cancellation token, send progress and log messages through it,
// and derive the contexts of nested calls from it. It is a value: copies share the channel and
// the progress counter but hold no pointer to the request that made them, so work that outlives
// its request (an execution still running after its time-out was answered) can keep one safely.
// A context is used by one thread at a time; the ClientChannel and progress counter behind it are
// thread-safe. Nothing here throws except std::bad_alloc.

#include "python_mcp/support/json.hpp"

#include <chrono>
#include <stdexcept>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/mcp/task.hpp"
#include "python_mcp/support/cancellation.hpp"

namespace pymcp::mcp {

using json = pymcp::json;

// A request to the client failed: it lacks the capability, refused, did not answer in time, or
// the connection ended.
class ClientRequestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The way back to the client that made the request: notifications, and requests to it
// (elicitation, sampling, roots), so tools need no other handle on the protocol.
class ClientChannel {
public:
    virtual ~ClientChannel() = default;
    virtual void notify(const std::string& method, json params) = 0;
    // The RFC 5424 level the client asked for with logging/setLevel ("info" by default).
    virtual bool wants_log(const std::string& level) const = 0;
    // What the client declared in initialize (`capabilities`), an object.
    virtual json client_capabilities() const { return json::object(); }
    // Sends a request to the client and waits for its result; throws ClientRequestError.
    virtual json request(const std::string& method, json params, std::chrono::milliseconds timeout,
                         const CancellationToken& cancel) {
        throw ClientRequestError("this client connection cannot take requests from the server");
    }
};

class CallContext {
public:
    CallContext() = default;
    CallContext(CancellationToken cancellation, json request_id, json progress_token,
                std::shared_ptr<ClientChannel> channel);

    // A context for a call made from inside this one (mcp.call from Python code in
    // `caller_session`): same channel and progress token, its own cancellation token, one level
    // deeper, and the caller added to the chain of calling sessions.
    CallContext nested(CancellationToken cancellation, std::string caller_session) const;

    const CancellationToken& cancellation() const { return cancellation_; }
    bool cancelled() const { return cancellation_.cancelled(); }
    const json& request_id() const { return request_id_; }
    int depth() const { return depth_; }

    // The Python session whose code made this call ("" when the client called directly).
    const std::string& caller_session() const {
        static const std::string none;
        return caller_sessions_.empty() ? none : caller_sessions_.back();
    }
    // True when this call or any call above it was made by code running in `session`.
    bool has_caller_session(const std::string& session) const;

    // notifications/progress, when the request carried a progressToken; no-op otherwise.
    // Progress values are kept strictly increasing as the spec requires.
    void report_progress(double progress, double total = -1, const std::string& message = {});
    // notifications/progress that is never dropped (live output, mcp.progress): `progress` when
    // it is above the last value sent, else the last value plus a tiny step; `total` when given,
    // else the last total sent. Text with no progress of its own thus repeats where the last real
    // report left a client's progress bar. No-op without a progressToken.
    void report_status(std::optional<double> progress, std::optional<double> total, const std::string& message) const;
    // A request to the client (elicitation/create, sampling/createMessage, roots/list), bounded by
    // this call's cancellation; throws ClientRequestError.
    json ask_client(const std::string& method, json params, std::chrono::milliseconds timeout) const;
    // The same, bounded by `cancel` instead (an execution's own token: its time-out or its
    // cancellation, which the request's cancellation also fires).
    json ask_client(const std::string& method, json params, std::chrono::milliseconds timeout,
                    const CancellationToken& cancel) const;
    // What the client declared it supports; an empty object when called from nowhere.
    json client_capabilities() const;
    // Whether this call can reach a client at all (a call made by the server itself cannot).
    bool has_client() const { return channel_ != nullptr; }
    const json& progress_token() const { return progress_token_; }
    // The task the client asked this call to run as (a 2025-11-25 task-augmented tools/call the
    // Server accepted for this tool); nullopt for a plain call and for every nested call.
    const std::optional<TaskRequest>& task() const { return task_; }
    void set_task(TaskRequest request) { task_ = std::move(request); }
    // notifications/tasks/status (or any notification) to the client that made the call; no-op
    // without one.
    void notify(const std::string& method, json params) const;
    // notifications/message at an RFC 5424 level, when the client's level lets it through.
    void log(const std::string& level, const json& data, const std::string& logger = "python-mcp") const;

private:
    struct ProgressState;

    CancellationToken cancellation_;
    json request_id_;
    json progress_token_;
    std::shared_ptr<ClientChannel> channel_;
    std::shared_ptr<ProgressState> progress_;
    int depth_ = 0;
    std::vector<std::string> caller_sessions_;  // outermost first
    std::optional<TaskRequest> task_;
};

}  // namespace pymcp::mcp
