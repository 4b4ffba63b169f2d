#pragma once
// One end of a two-way JSON-RPC connection, used by the MCP server (towards its client) and by
// the downstream client (towards a server it started): a method table for what the other side
// asks, a reply-once Responder per request, and outgoing requests matched to their responses.
//
// Incoming: each text is parsed, classified and, for batches the owner allows, answered as one
// array. Requests go to the handler registered for their method; the handler gets a Responder and
// may answer later from any thread. `notifications/cancelled` cancels the request's token and
// its answer is dropped; `notifications/progress` for a token of ours goes to the waiting call.
// Outgoing: call() sends a request and waits for its response, its deadline (restarted by each
// progress notification when asked) or its cancellation; on the last two it sends
// notifications/cancelled. Responses the other side sends are routed to the waiting call, never
// dropped. A text that cannot be parsed (nested too deep, invalid UTF-8) but reads, by scanning
// its top level, as the answer to a waiting call fails that call at once (Kind::Unreadable)
// instead of leaving it to its time-out.
//
// Threads: the transport's reading thread calls on_text()/on_oversized() and runs request and
// notification handlers and on_malformed, which must not block (post long work elsewhere). Everything else is
// thread-safe. call() blocks its own thread only; its progress callback runs on that thread too.
// Lock order: mutex_ is a leaf, never held while a handler, a callback or the transport runs.
// Throws: call() throws CallError; nothing else throws except std::bad_alloc. Handlers that
// throw RpcError (or anything) before replying get that error as their answer.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/jsonrpc/transport.hpp"
#include "python_mcp/support/cancellation.hpp"

namespace pymcp::jsonrpc {

class Peer;

// An outgoing request that did not get a result.
class CallError : public std::runtime_error {
public:
    enum class Kind {
        Closed,     // the connection ended (or was never usable) before the answer
        Timeout,    // no answer before the deadline (notifications/cancelled was sent)
        Cancelled,  // the caller's token fired (notifications/cancelled was sent)
        Rpc,        // the other side answered with a JSON-RPC error
        Unreadable, // the answer came but cannot be parsed (nested too deep, invalid UTF-8): what() says why
    };
    CallError(Kind kind, const std::string& message, int code = 0, json data = nullptr)
        : std::runtime_error(message), kind_(kind), code_(code), data_(std::move(data)) {}
    Kind kind() const { return kind_; }
    int code() const { return code_; }  // the JSON-RPC error code, for Kind::Rpc
    const json& data() const { return data_; }

private:
    Kind kind_;
    int code_;
    json data_;
};

namespace detail {
struct PeerCore;
struct ReplyState;
class Batch;
}  // namespace detail

// The one answer to one incoming request: a handle that copies of share (so it fits in a
// std::function). Answers exactly once: a second answer is logged and dropped, and when the last
// copy goes away without answering, the request is answered -32603 (a handler that forgot is a
// bug, but the client must not wait forever). A request the client cancelled gets no answer.
class Responder {
public:
    Responder() = default;
    explicit Responder(std::shared_ptr<detail::ReplyState> state);

    // const: a Responder is a handle; answering changes the shared slot, not the handle.
    void result(json result) const;
    void error(int code, const std::string& message, json data = nullptr) const;
    void error(const RpcError& e) const { error(e.code(), e.what(), e.data()); }

    const json& id() const;
    const std::string& method() const;
    StreamId stream() const;
    // Cancelled by notifications/cancelled or the peer shutting down.
    const CancellationToken& cancellation() const;
    bool answered() const;
    explicit operator bool() const { return state_ != nullptr; }

private:
    std::shared_ptr<detail::ReplyState> state_;
};

struct PeerOptions {
    std::string name = "peer";  // in logs
    ParseLimits parse_limits;
    // Refuses a batch (returns why) or allows it (nullopt). Unset: batches are refused.
    std::function<std::optional<std::string>()> batch_policy;
    // Asked before a request reaches its handler; an RpcError answers it instead (e.g. "not
    // initialized"). Not asked for methods registered with on_request(..., ungated = true).
    std::function<std::optional<RpcError>(const std::string& method)> request_gate;
    // Called instead of answering a text that is not JSON (-32700) or not a JSON-RPC message
    // (-32600): a client facing a server that prints to its stdout logs and skips such lines, as
    // the reference SDK clients do. `excerpt` is the text's start. Unset: answered.
    std::function<void(const std::string& problem, std::string_view excerpt)> on_malformed;
};

struct CallOptions {
    std::chrono::milliseconds timeout{60000};
    CancellationToken cancel;
    // Called on the calling thread for each notifications/progress of this request (its params);
    // when set, the request carries _meta.progressToken.
    std::function<void(const json& progress)> on_progress;
    // Each progress notification restarts the time-out (the TypeScript SDK's
    // resetTimeoutOnProgress); the caller's token still ends the call.
    bool progress_resets_timeout = true;
    StreamId stream = kMainStream;
    std::string cancel_reason = "the request timed out";
};

class Peer final : public MessageHandler {
public:
    using RequestHandler = std::function<void(const json& params, Responder reply)>;
    using NotificationHandler = std::function<void(const json& params)>;

    Peer(Transport& transport, PeerOptions options);
    ~Peer() override;
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    // The method table. Set up before the transport runs.
    void on_request(const std::string& method, RequestHandler handler, bool ungated = false);
    void on_notification(const std::string& method, NotificationHandler handler);

    // MessageHandler, called by the transport's reading thread.
    void on_text(std::string_view text, StreamId reply_stream) override;
    void on_oversized(std::string_view head, size_t limit, StreamId reply_stream) override;

    // Outgoing. call() returns the result or throws CallError.
    json call(const std::string& method, json params, const CallOptions& options = {});
    bool notify(const std::string& method, json params, StreamId stream = kMainStream);

    // Cancels every incoming request still running (they get no answer). Refusing new ones is
    // the owner's policy (a server in shutdown still answers ping).
    void cancel_incoming(const std::string& reason);
    // Fails every waiting call() with CallError::Closed and refuses new ones.
    void close(const std::string& reason);
    // Waits until every incoming request has been answered (or dropped); false on time-out.
    bool wait_idle(std::chrono::milliseconds timeout);
    size_t incoming_in_flight() const;
    size_t outgoing_in_flight() const;

private:
    friend class Responder;
    struct Pending;
    using Batch = detail::Batch;

    void dispatch(json message, StreamId stream, const std::shared_ptr<Batch>& batch);
    void dispatch_request(json message, StreamId stream, const std::shared_ptr<Batch>& batch);
    void dispatch_notification(const json& message);
    void dispatch_response(json message);
    void dispatch_batch(json batch, StreamId stream);
    void on_cancelled(const json& params);
    bool fail_unreadable_answer(std::string_view text, const std::string& why);
    void malformed(const std::string& problem, std::string_view text, const json& answer, StreamId stream,
                   const std::shared_ptr<Batch>& batch);
    json wait_for(long long id, const std::shared_ptr<Pending>& pending, const std::string& method,
                  std::chrono::steady_clock::time_point deadline, const CallOptions& options);
    void send_cancelled(long long id, const std::string& reason, StreamId stream);

    struct Entry {
        RequestHandler handler;
        bool ungated = false;
    };

    Transport& transport_;
    const PeerOptions options_;
    std::shared_ptr<detail::PeerCore> core_;  // shared with Responders, which may outlive us
    std::unordered_map<std::string, Entry> requests_;                    // set before run()
    std::unordered_map<std::string, NotificationHandler> notifications_;  // set before run()

    mutable std::mutex mutex_;
    std::map<long long, std::shared_ptr<Pending>> pending_;      // GUARDED_BY(mutex_), by our id
    std::map<std::string, std::shared_ptr<Pending>> progress_;   // GUARDED_BY(mutex_), by token key
    long long next_id_ = 1;                                       // GUARDED_BY(mutex_)
    bool closed_ = false;                                         // GUARDED_BY(mutex_)
    std::string close_reason_;                                    // GUARDED_BY(mutex_)
};

}  // namespace pymcp::jsonrpc
