#include "python_mcp/jsonrpc/peer.hpp"


#include <spdlog/spdlog.h>

#include <deque>
#include <vector>

namespace pymcp::jsonrpc {

namespace {

// A message's start for logs.
std::string excerpt(std::string_view text, size_t max = 200) {
    if (text.size() <= max) return std::string(text);
    return std::string(text.substr(0, max)) + "... (" + std::to_string(text.size()) + " bytes)";
}

// How long notifications/cancelled may wait for room in the pipe: it is a courtesy, and the
// caller that gave up should not wait on a peer that stopped reading.
constexpr auto kCancelNoticeTimeout = std::chrono::seconds(1);

}  // namespace


namespace detail {

// What Responders share with their Peer. Outlives the Peer when a handler still holds a
// Responder: sends then go nowhere (transport is null) and the request counts as finished.
struct PeerCore {
    std::string name;
    std::mutex mutex;
    std::condition_variable idle;
    Transport* transport = nullptr;  // GUARDED_BY(mutex); null once the Peer is gone
    struct Incoming {
        unsigned long long cookie;
        CancellationSource cancel;
    };
    std::map<std::string, Incoming> incoming;  // GUARDED_BY(mutex), by id_key
    unsigned long long next_cookie = 1;        // GUARDED_BY(mutex)
    size_t outstanding = 0;                    // GUARDED_BY(mutex): requests not yet answered or dropped

    // The transport is used outside the lock; the Peer's destructor waits for no send, so it
    // clears the pointer first and a send racing with it finds null or a live transport.
    bool send(const json& message, StreamId stream) {
        Transport* t;
        {
            std::lock_guard lock(mutex);
            t = transport;
        }
        return t != nullptr && t->send(message, stream);
    }
};

}  // namespace detail

namespace detail {

// Collects the answers to one batch line and sends them as one array once the last is in.
class Batch {
public:
    Batch(std::shared_ptr<detail::PeerCore> core, StreamId stream) : core_(std::move(core)), stream_(stream) {}
    void expect() {
        std::lock_guard lock(mutex_);
        ++pending_;
    }
    // A null response: that slot needs no answer (a notification, a cancelled request).
    void deliver(json response) {
        finish([&] {
            --pending_;
            if (!response.is_null()) responses_.push_back(std::move(response));
        });
    }
    void seal() {
        finish([&] { sealed_ = true; });
    }

private:
    template <class Change>
    void finish(Change change) {
        json out;
        {
            std::lock_guard lock(mutex_);
            change();
            if (!sealed_ || pending_ > 0 || sent_) return;
            sent_ = true;
            out = std::move(responses_);
        }
        if (!out.empty()) core_->send(out, stream_);  // a batch of notifications has no answer
    }

    std::shared_ptr<detail::PeerCore> core_;
    StreamId stream_;
    std::mutex mutex_;
    size_t pending_ = 0;
    bool sealed_ = false;
    bool sent_ = false;
    json responses_ = json::array();
};

// One incoming request's answer slot, shared by the copies of its Responder.
struct ReplyState {
    std::shared_ptr<PeerCore> core;
    json id;
    std::string method;
    std::string key;
    unsigned long long cookie = 0;
    StreamId stream = kMainStream;
    CancellationSource cancel;
    CancellationToken token;
    std::shared_ptr<Batch> batch;
    std::atomic<bool> answered{false};

    // Exactly once: forgets the id (so the client may reuse it at once), then sends unless the
    // request was cancelled (a cancelled request gets no answer).
    void deliver(json response) {
        if (answered.exchange(true)) {
            spdlog::warn("{}: a second answer to request {} ({}) was dropped", core->name, key, method);
            return;
        }
        {
            std::lock_guard lock(core->mutex);
            auto it = core->incoming.find(key);
            if (it != core->incoming.end() && it->second.cookie == cookie) core->incoming.erase(it);
        }
        if (cancel.cancelled()) response = nullptr;
        if (batch) batch->deliver(std::move(response));
        else if (!response.is_null()) core->send(response, stream);
        {
            std::lock_guard lock(core->mutex);
            --core->outstanding;
        }
        core->idle.notify_all();
    }

    ~ReplyState() {
        if (answered.load()) return;
        try {
            if (!cancel.cancelled())  // a cancelled request is dropped on purpose
                spdlog::error("{}: request {} ({}) was never answered; answering with an internal error",
                              core->name, key, method);
            deliver(make_error(id, kInternalError, "Internal error: the request was dropped without an answer"));
        } catch (...) {
        }
    }
};

}  // namespace detail

// --- Responder ----------------------------------------------------------------------------------

Responder::Responder(std::shared_ptr<detail::ReplyState> state) : state_(std::move(state)) {}

void Responder::result(json result) const {
    if (state_) state_->deliver(make_result(state_->id, std::move(result)));
}

void Responder::error(int code, const std::string& message, json data) const {
    if (state_) state_->deliver(make_error(state_->id, code, message, data));
}

const json& Responder::id() const {
    static const json none;
    return state_ ? state_->id : none;
}

const std::string& Responder::method() const {
    static const std::string none;
    return state_ ? state_->method : none;
}

StreamId Responder::stream() const { return state_ ? state_->stream : kMainStream; }

const CancellationToken& Responder::cancellation() const {
    static const CancellationToken never;
    return state_ ? state_->token : never;
}

bool Responder::answered() const { return !state_ || state_->answered.load(); }

// --- Peer: incoming -----------------------------------------------------------------------------

// An outgoing request waiting for its answer.
struct Peer::Pending {
    std::condition_variable cv;
    std::optional<json> response;        // GUARDED_BY(Peer::mutex_)
    std::optional<std::string> failure;  // GUARDED_BY(Peer::mutex_): the connection ended
    std::optional<std::string> unreadable;  // GUARDED_BY(Peer::mutex_): the answer came, unparsable: why
    std::deque<json> progress;           // GUARDED_BY(Peer::mutex_): not yet handed to the caller
    std::string progress_key;
};

Peer::Peer(Transport& transport, PeerOptions options)
    : transport_(transport), options_(std::move(options)), core_(std::make_shared<detail::PeerCore>()) {
    core_->name = options_.name;
    core_->transport = &transport_;
}

Peer::~Peer() {
    close("the connection is closed");
    std::lock_guard lock(core_->mutex);
    core_->transport = nullptr;
}

void Peer::on_request(const std::string& method, RequestHandler handler, bool ungated) {
    requests_[method] = Entry{std::move(handler), ungated};
}

void Peer::on_notification(const std::string& method, NotificationHandler handler) {
    notifications_[method] = std::move(handler);
}

void Peer::on_text(std::string_view text, StreamId stream) {
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank lines are not messages
    json message;
    try {
        message = parse_message(text, options_.parse_limits);
    } catch (const RpcError& e) {
        if (fail_unreadable_answer(text, e.what())) return;
        malformed(e.what(), text, make_error(nullptr, e.code(), e.what()), stream, nullptr);
        return;
    }
    if (message.is_array()) dispatch_batch(std::move(message), stream);
    else dispatch(std::move(message), stream, nullptr);
}

// A text that failed to parse but is, by its top level, the answer to a call of ours that is
// waiting: that call fails now with `why`. The text was a whole message, so the stream is still
// in step. False when it is no such answer (a request of the other side may use the same id).
bool Peer::fail_unreadable_answer(std::string_view text, const std::string& why) {
    Envelope envelope = scan_envelope(text);
    if (!envelope.answer || !envelope.id.is_number_integer()) return false;
    std::shared_ptr<Pending> target;
    {
        std::lock_guard lock(mutex_);
        auto it = pending_.find(envelope.id.get<long long>());
        if (it == pending_.end()) return false;
        target = it->second;
        target->unreadable = why;
    }
    spdlog::warn("{}: the answer to request {} cannot be read ({}): {}", options_.name, envelope.id.dump(), why,
                 excerpt(text));
    target->cv.notify_all();
    return true;
}

// Answers a text that is not a usable message (`answer`), or hands it to on_malformed.
void Peer::malformed(const std::string& problem, std::string_view text, const json& answer, StreamId stream,
                     const std::shared_ptr<Batch>& batch) {
    if (options_.on_malformed) {
        options_.on_malformed(problem, excerpt(text));
        if (batch) {
            batch->expect();
            batch->deliver(nullptr);
        }
        return;
    }
    if (batch) {
        batch->expect();
        batch->deliver(answer);
    } else {
        core_->send(answer, stream);
    }
}

void Peer::on_oversized(std::string_view head, size_t limit, StreamId stream) {
    spdlog::warn("{}: skipped a message longer than {} bytes", options_.name, limit);
    json id = request_id_from_prefix(head).value_or(json(nullptr));
    core_->send(make_error(id, kInvalidRequest,
                           "Invalid Request: message longer than the " + std::to_string(limit) +
                               "-byte limit (see --max-message-bytes); it was skipped"),
                stream);
}

void Peer::dispatch_batch(json batch, StreamId stream) {
    if (batch.empty()) {
        core_->send(make_error(nullptr, kInvalidRequest, "Invalid Request: empty batch"), stream);
        return;
    }
    std::optional<std::string> refusal = "Invalid Request: JSON-RPC batches are not accepted";
    if (options_.batch_policy) refusal = options_.batch_policy();
    if (refusal) {
        core_->send(make_error(nullptr, kInvalidRequest, *refusal), stream);
        return;
    }
    auto collector = std::make_shared<Batch>(core_, stream);
    for (auto& element : batch) {
        if (element.is_array()) {
            collector->expect();
            collector->deliver(make_error(nullptr, kInvalidRequest, "Invalid Request: nested batch"));
            continue;
        }
        dispatch(std::move(element), stream, collector);
    }
    collector->seal();
}

void Peer::dispatch(json message, StreamId stream, const std::shared_ptr<Batch>& batch) {
    Classified c = classify(message);
    switch (c.kind) {
        case Kind::Invalid: {
            json id = nullptr;
            if (message.is_object()) {
                auto it = message.find("id");
                if (it != message.end() && (it->is_string() || it->is_number_integer())) id = *it;
            }
            std::string problem = "Invalid Request: " + c.problem;
            malformed(problem, options_.on_malformed ? serialize(message) : std::string(),
                      make_error(id, kInvalidRequest, problem), stream, batch);
            return;
        }
        case Kind::Notification:
            dispatch_notification(message);
            return;
        case Kind::Response:
            dispatch_response(std::move(message));
            return;
        case Kind::Request:
            dispatch_request(std::move(message), stream, batch);
            return;
    }
}

void Peer::dispatch_request(json message, StreamId stream, const std::shared_ptr<Batch>& batch) {
    auto state = std::make_shared<detail::ReplyState>();
    state->core = core_;
    state->id = std::move(message["id"]);
    state->method = message["method"].get_ref<const std::string&>();
    state->key = id_key(state->id);
    state->stream = stream;
    state->batch = batch;
    state->token = state->cancel.token();
    json params = json::object();
    if (auto p = message.find("params"); p != message.end()) params = std::move(*p);

    std::optional<RpcError> refusal;
    auto entry = requests_.find(state->method);
    if (entry == requests_.end()) refusal.emplace(kMethodNotFound, "Method not found: " + state->method);
    else if (!entry->second.ungated && options_.request_gate) refusal = options_.request_gate(state->method);
    {
        std::lock_guard lock(core_->mutex);
        if (!refusal && core_->incoming.count(state->key))
            refusal.emplace(kInvalidRequest,
                            "Invalid Request: id " + state->key + " is already used by a request in progress");
        if (!refusal) {
            state->cookie = core_->next_cookie++;
            core_->incoming.emplace(state->key, detail::PeerCore::Incoming{state->cookie, state->cancel});
        }
        ++core_->outstanding;
    }
    if (batch) batch->expect();
    Responder reply(std::move(state));
    if (refusal) {
        reply.error(*refusal);
        return;
    }
    // The handler gets a copy: ours keeps the slot alive, so an exception it throws before
    // answering becomes the answer rather than a generic "dropped" error.
    try {
        entry->second.handler(params, reply);
    } catch (const RpcError& e) {
        if (!reply.answered()) reply.error(e);
    } catch (const std::exception& e) {
        spdlog::error("{}: {} failed: {}", options_.name, reply.method(), e.what());
        if (!reply.answered()) reply.error(kInternalError, std::string("Internal error: ") + e.what());
    }
}

void Peer::dispatch_notification(const json& message) {
    const std::string& method = message["method"].get_ref<const std::string&>();
    static const json no_params = json::object();
    auto found = message.find("params");
    const json& params = found != message.end() ? *found : no_params;
    if (method == "notifications/cancelled") {
        on_cancelled(params);
        return;
    }
    if (method == "notifications/progress" && params.is_object() && params.contains("progressToken")) {
        std::shared_ptr<Pending> target;
        {
            std::lock_guard lock(mutex_);
            auto it = progress_.find(id_key(params["progressToken"]));
            if (it != progress_.end()) {
                target = it->second;
                target->progress.push_back(params);
            }
        }
        if (target) {
            target->cv.notify_all();
            return;
        }
    }
    auto handler = notifications_.find(method);
    if (handler == notifications_.end()) {
        spdlog::debug("{}: ignoring notification {}", options_.name, method);
        return;
    }
    try {
        handler->second(params);
    } catch (const std::exception& e) {
        spdlog::error("{}: handling {} failed: {}", options_.name, method, e.what());
    }
}

void Peer::on_cancelled(const json& params) {
    if (!params.is_object() || !params.contains("requestId")) return;
    std::string reason = "cancelled by the client";
    if (auto r = params.find("reason"); r != params.end() && r->is_string()) reason += ": " + r->get<std::string>();
    std::optional<CancellationSource> target;
    {
        std::lock_guard lock(core_->mutex);
        auto it = core_->incoming.find(id_key(params["requestId"]));
        if (it != core_->incoming.end()) target = it->second.cancel;
    }
    // Outside the lock: cancellation callbacks may answer the request, which takes the lock.
    if (target) target->cancel(reason);
}

void Peer::dispatch_response(json message) {
    const json& id = message["id"];
    std::shared_ptr<Pending> target;
    {
        std::lock_guard lock(mutex_);
        if (id.is_number_integer()) {
            auto it = pending_.find(id.get<long long>());
            if (it != pending_.end()) {
                target = it->second;
                target->response = std::move(message);
            }
        }
    }
    if (target) target->cv.notify_all();
    else spdlog::debug("{}: a response to no request of ours (id {}) was ignored", options_.name, id_key(id));
}

// --- Peer: outgoing -----------------------------------------------------------------------------

json Peer::call(const std::string& method, json params, const CallOptions& options) {
    // One deadline for writing the request and waiting for its answer (progress restarts it).
    auto deadline = std::chrono::steady_clock::now() + options.timeout;
    auto pending = std::make_shared<Pending>();
    long long id;
    {
        std::lock_guard lock(mutex_);
        if (closed_) throw CallError(CallError::Kind::Closed, close_reason_);
        if (options.cancel.cancelled()) throw CallError(CallError::Kind::Cancelled, options.cancel.reason());
        id = next_id_++;
        pending_.emplace(id, pending);
        if (options.on_progress) {
            pending->progress_key = id_key(json(id));
            progress_.emplace(pending->progress_key, pending);
        }
    }
    if (options.on_progress) {
        if (!params.is_object()) params = json::object();
        params["_meta"]["progressToken"] = id;
    }
    SendStatus sent = transport_.send_bounded(make_request(id, method, std::move(params)), options.stream, deadline,
                                              options.cancel);
    if (sent != SendStatus::Sent) {
        {
            std::lock_guard lock(mutex_);
            pending_.erase(id);
            if (!pending->progress_key.empty()) progress_.erase(pending->progress_key);
        }
        if (sent == SendStatus::Cancelled) throw CallError(CallError::Kind::Cancelled, options.cancel.reason());
        if (sent == SendStatus::TimedOut)
            throw CallError(CallError::Kind::Timeout, method + ": the request could not be sent in time");
        throw CallError(CallError::Kind::Closed, method + ": the connection is closed");
    }
    return wait_for(id, pending, method, deadline, options);
}

namespace {

// The CallError for an error response; tolerant of odd shapes (a code that is no integer, a
// message that is no string), which must not turn into a JSON type error here.
CallError rpc_error(const json& response) {
    const json& error = response["error"];
    int code = 0;
    std::string message = "(no message)";
    json data;
    if (error.is_object()) {
        if (auto c = error.find("code"); c != error.end() && c->is_number_integer()) code = c->get<int>();
        if (auto m = error.find("message"); m != error.end() && m->is_string()) message = m->get<std::string>();
        if (auto d = error.find("data"); d != error.end()) data = *d;
    }
    return CallError(CallError::Kind::Rpc, message, code, std::move(data));
}

}  // namespace

json Peer::wait_for(long long id, const std::shared_ptr<Pending>& pending, const std::string& method,
                    std::chrono::steady_clock::time_point deadline, const CallOptions& options) {
    auto registration = options.cancel.on_cancel([this, pending] {
        std::lock_guard lock(mutex_);
        pending->cv.notify_all();
    });
    std::unique_lock lock(mutex_);
    auto forget = [&] {
        pending_.erase(id);
        if (!pending->progress_key.empty()) progress_.erase(pending->progress_key);
    };
    for (;;) {
        while (!pending->progress.empty()) {
            json update = std::move(pending->progress.front());
            pending->progress.pop_front();
            if (options.progress_resets_timeout) deadline = std::chrono::steady_clock::now() + options.timeout;
            lock.unlock();
            try {
                options.on_progress(update);
            } catch (const std::exception& e) {
                spdlog::warn("{}: a progress callback of {} failed: {}", options_.name, method, e.what());
            }
            lock.lock();
        }
        if (pending->response) {
            forget();
            json response = std::move(*pending->response);
            lock.unlock();
            if (response.contains("error")) throw rpc_error(response);
            return std::move(response["result"]);
        }
        if (pending->unreadable) {
            forget();
            throw CallError(CallError::Kind::Unreadable, *pending->unreadable);
        }
        if (pending->failure) {
            forget();
            throw CallError(CallError::Kind::Closed, *pending->failure);
        }
        bool cancelled = options.cancel.cancelled();
        if (cancelled || std::chrono::steady_clock::now() >= deadline) {
            forget();
            lock.unlock();
            std::string reason = cancelled ? options.cancel.reason() : options.cancel_reason;
            send_cancelled(id, reason, options.stream);
            if (cancelled) throw CallError(CallError::Kind::Cancelled, reason);
            throw CallError(CallError::Kind::Timeout, method + ": no answer within the time-out");
        }
        pending->cv.wait_until(lock, deadline);
    }
}

// Bounded, and never cancelled by the caller's token (which fired already): a peer that stopped
// reading costs the caller at most kCancelNoticeTimeout. The reason (which may come from the
// other side) is shortened so the line stays under PIPE_BUF even escaped: such a write is
// atomic, so giving up on it never leaves half a line.
void Peer::send_cancelled(long long id, const std::string& reason, StreamId stream) {
    static const CancellationToken never;
    json params{{"requestId", id}, {"reason", reason.size() > 500 ? reason.substr(0, 500) + "..." : reason}};
    transport_.send_bounded(make_notification("notifications/cancelled", std::move(params)), stream,
                            std::chrono::steady_clock::now() + kCancelNoticeTimeout, never);
}

bool Peer::notify(const std::string& method, json params, StreamId stream) {
    return core_->send(make_notification(method, std::move(params)), stream);
}

// --- Peer: lifecycle ----------------------------------------------------------------------------

void Peer::cancel_incoming(const std::string& reason) {
    std::vector<CancellationSource> running;
    {
        std::lock_guard lock(core_->mutex);
        for (auto& [_, incoming] : core_->incoming) running.push_back(incoming.cancel);
    }
    for (auto& c : running) c.cancel(reason);
}

void Peer::close(const std::string& reason) {
    std::vector<std::shared_ptr<Pending>> waiting;
    {
        std::lock_guard lock(mutex_);
        if (closed_) return;
        closed_ = true;
        close_reason_ = reason;
        for (auto& [_, p] : pending_) {
            p->failure = reason;
            waiting.push_back(p);
        }
    }
    for (auto& p : waiting) p->cv.notify_all();
}

bool Peer::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(core_->mutex);
    return core_->idle.wait_for(lock, timeout, [&] { return core_->outstanding == 0; });
}

size_t Peer::incoming_in_flight() const {
    std::lock_guard lock(core_->mutex);
    return core_->outstanding;
}

size_t Peer::outgoing_in_flight() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
}

}  // namespace pymcp::jsonrpc
