#pragma once
// Asking the client in the 2026-07-28 era: input_required results and the client's retry
// (multi round-trip requests). That revision has no server-to-client requests; instead a
// tools/call is answered with `resultType: "input_required"`, the questions (`inputRequests`)
// and an opaque `requestState`, and the client retries the call with `inputResponses` and that
// state. Here the running execution is not restarted: it stays parked, blocked in the ask, and
// the retry resumes it.
//
// An InputFlow is the channel of one modern tools/call across its legs (the first request and
// each retry): a question (request()) answers the open leg with input_required and waits; a
// retry carrying the state becomes the open leg, delivers the answers and wakes the waiter; the
// tool's final answer goes to whichever leg is open (or waits for the next retry). Notifications
// go to the open leg's stream (over HTTP each leg is its own POST), progress under that leg's
// progressToken. A state is single-use (each round gets a fresh one); a question nobody answers
// within its time-out (at most InputLot's limit) abandons the flow: the call is cancelled.
// InputLot maps outstanding states to their flows; it is shared by every connection (a retry may
// come on another HTTP POST).
//
// Threads: request() on a tool's thread (it blocks); resume() on a connection's reading thread;
// complete() on any thread; cancellation callbacks on the cancelling thread. Lock order:
// InputFlow::mutex_ -> InputLot::mutex_ (a leaf). Nothing is sent and no registration is made
// with a flow's mutex held. request() throws ClientRequestError; resume() and InputLot::find()
// throw jsonrpc::RpcError (-32602); nothing else throws except std::bad_alloc.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/client_session.hpp"

namespace pymcp::mcp {

// How one request is served: the era its `_meta` chose and, for the modern era, what it declared.
struct RequestEra {
    bool modern = false;
    json capabilities = json::object();
    int log_rank = -1;  // modern: the request's logLevel; -1: no log messages for it
};

// One tools/call request of a flow: the first one or a retry.
struct InputLeg {
    jsonrpc::Responder reply;
    std::shared_ptr<ClientSession> session;
    RequestEra era;
    json progress_token;  // this request's own, or null
};

class InputFlow;

class InputLot {
public:
    // `limit` bounds every parked wait (a question's own time-out may be shorter) and how long
    // a finished call's answer waits for a retry.
    explicit InputLot(std::chrono::milliseconds limit) : limit_(limit) {}
    std::chrono::milliseconds limit() const { return limit_; }
    // The flow a requestState belongs to; RpcError -32602 when unknown, used or expired.
    std::shared_ptr<InputFlow> find(const std::string& state) const;
    void add(const std::string& state, std::shared_ptr<InputFlow> flow);
    void remove(const std::string& state);
    // Shutdown: every parked call is cancelled.
    void cancel_all(const std::string& reason);
    size_t size() const;

private:
    void sweep();

    const std::chrono::milliseconds limit_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<InputFlow>> flows_;  // GUARDED_BY(mutex_), by state
};

class InputFlow final : public ClientChannel, public std::enable_shared_from_this<InputFlow> {
public:
    // Adds resultType and the server's _meta to a result of `era`.
    using Finisher = std::function<json(const RequestEra& era, json result)>;

    static std::shared_ptr<InputFlow> start(std::shared_ptr<InputLot> lot, std::string tool, json arguments,
                                            InputLeg first, Finisher finish);
    ~InputFlow() override;

    // The call's cancellation: any open leg's, and abandonment.
    CancellationToken cancellation() const { return cancel_.token(); }

    // A retry of this call (same tool and arguments, else -32602) presenting `state`: takes the
    // answers it carries and becomes the open leg, which gets the final result, or another
    // input_required when questions are still unanswered.
    void resume(const std::string& state, const std::string& tool, const json& arguments, InputLeg leg,
                const json& responses);

    // The tool's answer: to the open leg, or kept for the next retry.
    void complete(json result);
    void reject(int code, const std::string& message);

    // Whether this flow is over and its answer no longer awaited (InputLot's sweep).
    bool expired(std::chrono::steady_clock::time_point now) const;
    void cancel(const std::string& reason);

    // ClientChannel
    void notify(const std::string& method, json params) override;
    bool wants_log(const std::string& level) const override;
    json client_capabilities() const override;
    json request(const std::string& method, json params, std::chrono::milliseconds timeout,
                 const CancellationToken& cancel) override;

private:
    struct Question {
        std::string method;
        json params;
        std::optional<json> answer;
    };
    struct Final {
        bool is_error = false;
        json result;
        int code = 0;
        std::string message;
    };

    InputFlow(std::shared_ptr<InputLot> lot, std::string tool, json arguments, Finisher finish);
    void open_leg(InputLeg leg);
    // Answers the open leg with input_required for every unanswered question; the leg closes.
    void ask_on_leg(std::unique_lock<std::mutex>& lock);
    void deliver(Final answer);
    void abandon(std::unique_lock<std::mutex>& lock, const std::string& reason);
    void forget_state(std::unique_lock<std::mutex>& lock);

    const std::shared_ptr<InputLot> lot_;
    const std::string tool_;
    const json arguments_;
    const Finisher finish_;
    CancellationSource cancel_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::optional<InputLeg> leg_;                        // GUARDED_BY(mutex_): the open leg
    std::shared_ptr<std::atomic<bool>> leg_live_;        // GUARDED_BY(mutex_): the open leg's cancel link
    RequestEra era_;                                     // GUARDED_BY(mutex_): the latest leg's
    std::map<std::string, Question> questions_;          // GUARDED_BY(mutex_), by inputRequests key
    unsigned long next_key_ = 0;                         // GUARDED_BY(mutex_)
    std::string state_;                                  // GUARDED_BY(mutex_): outstanding, or ""
    std::optional<Final> final_;                         // GUARDED_BY(mutex_): kept for the retry
    bool done_ = false;                                  // GUARDED_BY(mutex_): answered or abandoned
    std::chrono::steady_clock::time_point closed_at_;    // GUARDED_BY(mutex_)
    // Never destroyed under mutex_: a running callback may be waiting for it.
    std::vector<CancelRegistration> links_;              // GUARDED_BY(mutex_)
};

}  // namespace pymcp::mcp
