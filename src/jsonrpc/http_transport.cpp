#include "python_mcp/jsonrpc/http_transport.hpp"

#include <sys/random.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <condition_variable>
#include <deque>
#include <optional>
#include <vector>

#include "python_mcp/jsonrpc/http_util.hpp"

namespace pymcp::jsonrpc {

using Clock = std::chrono::steady_clock;
using http::Headers;

// --- HttpSession --------------------------------------------------------------------------------

// One legacy session, or the connection of one modern POST: a Transport whose outgoing streams
// are the open POSTs (and the GET stream). send() queues a message for its stream's connection
// thread; the last copy of the session unbinds its MCP connection before anything else goes.
class HttpSession final : public Transport {
public:
    explicit HttpSession(std::string id) : id_(std::move(id)) {}
    ~HttpSession() override { close(); }

    const std::string& id() const { return id_; }
    void bind(HttpBinding binding) { binding_ = std::move(binding); }
    // Ends the session: cancels its work, refuses sends, and hands the binding back so the
    // caller (which holds the session) destroys it outside every lock.
    HttpBinding unbind() {
        if (binding_.end) binding_.end();
        close();
        std::lock_guard dispatch(dispatch_mutex_);
        return std::move(binding_);
    }

    // Not used by the endpoint (messages come in through deliver()); waits until the session ends.
    void run(MessageHandler&) override {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return closed_; });
    }

    bool send(const json& message, StreamId stream) override;
    void close() override;

    // Hands one message text to the MCP connection, one at a time per session.
    void deliver(std::string_view text, StreamId stream) {
        std::lock_guard dispatch(dispatch_mutex_);
        if (binding_.handler && !closed()) binding_.handler->on_text(text, stream);
    }

    // A stream for the answer to a POST's requests (their ids), or the GET stream (kMainStream
    // messages). 0 when a GET stream is already open.
    StreamId open_stream(std::vector<std::string> request_keys, bool get_stream);
    void close_stream(StreamId stream);
    // The client cancelled this request: no answer will come, so its stream may end.
    void abandon(const std::string& request_key);

    struct Pending {
        std::vector<std::string> messages;
        bool final = false;  // the last of `messages` is the answer: the stream is complete
        bool ended = false;  // no answer will come (cancelled, or the session ended)
    };
    Pending next(StreamId stream, std::chrono::milliseconds wait);

    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    // The endpoint's bookkeeping, GUARDED_BY(the endpoint's mutex).
    Clock::time_point last_used = Clock::now();
    int busy = 0;  // exchanges using the session now

private:
    struct Slot {
        std::deque<std::string> queue;
        std::vector<std::string> request_keys;
        bool final = false;
        bool abandoned = false;
    };

    const std::string id_;
    HttpBinding binding_;  // GUARDED_BY(dispatch_mutex_) once bound; taken by unbind()
    std::mutex dispatch_mutex_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<StreamId, Slot> slots_;  // GUARDED_BY(mutex_)
    StreamId next_stream_ = 1;        // GUARDED_BY(mutex_)
    StreamId get_stream_ = 0;         // GUARDED_BY(mutex_): 0 while no GET stream is open
    bool closed_ = false;             // GUARDED_BY(mutex_)
};

bool HttpSession::send(const json& message, StreamId stream) {
    const bool is_request = message.is_object() && message.contains("method") && message.contains("id");
    const bool is_answer = message.is_array() || (message.is_object() && !message.contains("method"));
    std::string text = serialize(message);
    {
        std::lock_guard lock(mutex_);
        if (closed_) return false;
        auto slot = slots_.find(stream == kMainStream ? get_stream_ : stream);
        // A notification with no open stream to take it is dropped (the client opened no GET
        // stream, or the POST it was about has ended); a request or answer then fails.
        if (slot == slots_.end()) return !is_request && !is_answer;
        slot->second.queue.push_back(std::move(text));
        if (is_answer && stream != kMainStream) slot->second.final = true;
    }
    changed_.notify_all();
    return true;
}

void HttpSession::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

StreamId HttpSession::open_stream(std::vector<std::string> request_keys, bool get_stream) {
    std::lock_guard lock(mutex_);
    if (get_stream && get_stream_ != 0) return 0;
    StreamId id = next_stream_++;
    slots_[id].request_keys = std::move(request_keys);
    if (get_stream) get_stream_ = id;
    return id;
}

void HttpSession::close_stream(StreamId stream) {
    std::lock_guard lock(mutex_);
    slots_.erase(stream);
    if (get_stream_ == stream) get_stream_ = 0;
}

void HttpSession::abandon(const std::string& request_key) {
    {
        std::lock_guard lock(mutex_);
        for (auto& [_, slot] : slots_)
            if (std::find(slot.request_keys.begin(), slot.request_keys.end(), request_key) != slot.request_keys.end())
                slot.abandoned = true;
    }
    changed_.notify_all();
}

HttpSession::Pending HttpSession::next(StreamId stream, std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    Pending out;
    auto slot = slots_.find(stream);
    if (slot == slots_.end()) {
        out.ended = true;
        return out;
    }
    Slot& s = slot->second;
    changed_.wait_for(lock, wait, [&] { return !s.queue.empty() || s.abandoned || closed_; });
    out.messages.assign(std::make_move_iterator(s.queue.begin()), std::make_move_iterator(s.queue.end()));
    s.queue.clear();
    out.final = s.final;
    out.ended = !s.final && (s.abandoned || closed_);
    return out;
}

// --- helpers ------------------------------------------------------------------------------------

namespace {

constexpr auto kWaitSlice = std::chrono::milliseconds(200);

std::string new_session_id() {
    unsigned char bytes[16];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n > 0) got += static_cast<size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string id;
    for (unsigned char b : bytes) {
        id.push_back(hex[b >> 4]);
        id.push_back(hex[b & 15]);
    }
    return id;
}

std::string error_body(const json& id, int code, const std::string& message) {
    return serialize(make_error(id, code, message));
}

void reply_error(http::Exchange& exchange, int status, const json& id, int code, const std::string& message,
                 const Headers& extra = {}) {
    exchange.respond(status, "application/json", error_body(id, code, message), extra);
}

std::string sse_event(const std::string& text) { return "event: message\ndata: " + text + "\n\n"; }

// What a POST body holds: its requests' ids and whether it is one `initialize` request.
struct Contents {
    std::vector<std::string> request_keys;
    std::vector<std::string> cancelled_keys;  // notifications/cancelled among them
    bool initialize = false;
    std::optional<std::string> invalid;  // an envelope that is not JSON-RPC
    json invalid_id;
};

Contents inspect(const json& body) {
    Contents c;
    auto look = [&](const json& m) {
        Classified k = classify(m);
        if (k.kind == Kind::Invalid) {
            c.invalid = "Invalid Request: " + k.problem;
            if (m.is_object() && m.contains("id") && (m["id"].is_string() || m["id"].is_number_integer()))
                c.invalid_id = m["id"];
        } else if (k.kind == Kind::Request) {
            c.request_keys.push_back(id_key(m["id"]));
        } else if (k.kind == Kind::Notification && m["method"] == "notifications/cancelled") {
            const json& p = m.value("params", json::object());
            if (p.is_object() && p.contains("requestId")) c.cancelled_keys.push_back(id_key(p["requestId"]));
        }
    };
    if (body.is_array()) {
        if (body.empty()) c.invalid = "Invalid Request: empty batch";
        for (const auto& m : body) look(m);
    } else {
        look(body);
        c.initialize = c.request_keys.size() == 1 && body["method"] == "initialize";
    }
    return c;
}

}  // namespace

// One POST being served: the request, its parsed body and what the body holds.
struct HttpEndpoint::Post {
    http::Request& request;
    json body;
    Contents contents;
    bool sse_ok = false;
};

// Writes a stream's messages to its exchange until its answer is out, the session ends, or the
// client goes away (returned: the client is gone). The answer alone goes as application/json;
// anything before it turns the answer into an SSE stream when the client accepts one.
struct StreamPump {
    StreamPump(HttpSession& s, StreamId id, http::Exchange& e, bool sse, Headers h, std::chrono::milliseconds k,
               std::function<int(const std::string&)> status)
        : session(s), stream(id), exchange(e), sse_ok(sse), headers(std::move(h)), keepalive(k), status_of(std::move(status)) {}

    HttpSession& session;
    StreamId stream;
    http::Exchange& exchange;
    bool sse_ok;
    Headers headers;
    std::chrono::milliseconds keepalive;
    std::function<int(const std::string& answer)> status_of;  // JSON answers' HTTP status
    bool streaming = false;
    bool opening = false;  // the POST is the initialize that opened the session
    std::optional<std::string> answer;

    bool write_event(const std::string& text) {
        if (!streaming) {
            streaming = true;
            if (!exchange.start_stream(200, "text/event-stream", headers)) return false;
        }
        return exchange.write_chunk(sse_event(text));
    }

    // True when the client went away before the stream completed.
    bool run() {
        auto quiet_since = Clock::now();
        for (;;) {
            HttpSession::Pending p = session.next(stream, kWaitSlice);
            for (size_t i = 0; i < p.messages.size(); ++i) {
                bool last = p.final && i + 1 == p.messages.size();
                if (last) answer = p.messages[i];
                if (last && !streaming) {
                    // A refused initialize names no session (none was opened).
                    if (opening && !json::parse(p.messages[i], nullptr, false).contains("result")) headers.clear();
                    exchange.respond(status_of(p.messages[i]), "application/json", p.messages[i], headers);
                    return false;
                }
                if (!sse_ok) continue;  // a JSON-only client gets the answer alone
                if (!write_event(p.messages[i])) return true;
                quiet_since = Clock::now();
            }
            if (p.final || p.ended) {
                // Cancelled or ended without an answer: an empty event stream says "nothing more".
                if (!streaming && sse_ok) exchange.start_stream(200, "text/event-stream", headers);
                if (!streaming && !sse_ok) exchange.respond(204, "", "", headers);
                if (exchange.responded()) exchange.end_stream();
                return false;
            }
            if (exchange.client_gone()) return true;
            if (streaming && Clock::now() - quiet_since >= keepalive) {
                if (!exchange.write_chunk(": keep-alive\n\n")) return true;
                quiet_since = Clock::now();
            }
        }
    }
};

// --- HttpEndpoint -------------------------------------------------------------------------------

HttpEndpoint::HttpEndpoint(HttpTransportOptions options, HttpConnector connector)
    : options_(std::move(options)),
      connector_(std::move(connector)),
      server_(options_.server, [this](http::Request& r, http::Exchange& e) { handle(r, e); }) {
    if (options_.legacy_versions.empty())
        throw std::invalid_argument("HttpTransportOptions::legacy_versions must list the legacy revisions");
}

HttpEndpoint::~HttpEndpoint() { stop(); }

void HttpEndpoint::start() { server_.start(); }

void HttpEndpoint::stop() {
    std::map<std::string, std::shared_ptr<HttpSession>> sessions;
    {
        std::lock_guard lock(mutex_);
        sessions.swap(sessions_);
    }
    for (auto& [_, s] : sessions) s->unbind();
    server_.stop();
}

size_t HttpEndpoint::session_count() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

void HttpEndpoint::handle(http::Request& request, http::Exchange& exchange) {
    if (request.path() != options_.path) {
        exchange.respond(404, "text/plain", "Not Found: the MCP endpoint is " + options_.path + "\n");
        return;
    }
    if (!admit(request, exchange)) return;
    if (request.method == "POST") on_post(request, exchange);
    else if (request.method == "GET") on_get(request, exchange);
    else if (request.method == "DELETE") on_delete(request, exchange);
    else exchange.respond(405, "text/plain", "Method Not Allowed\n", {{"Allow", "GET, POST, DELETE"}});
}

// DNS rebinding and other sites' pages: a browser names the page's origin; only loopback pages
// (and clients that send no Origin) are served. Then the bearer token.
bool HttpEndpoint::admit(const http::Request& request, http::Exchange& exchange) const {
    if (const std::string* origin = request.header("origin"); origin && !http_util::loopback_origin(*origin)) {
        reply_error(exchange, 403, nullptr, kInvalidRequest, "Forbidden: origin " + *origin + " is not allowed");
        return false;
    }
    const std::string* host = request.header("host");
    if (http_util::is_loopback_name(options_.server.host) && (!host || !http_util::loopback_authority(*host))) {
        reply_error(exchange, 403, nullptr, kInvalidRequest, "Forbidden: the Host header must name this machine");
        return false;
    }
    if (!options_.token.empty() && !http_util::bearer_matches(request.header("authorization"), options_.token)) {
        reply_error(exchange, 401, nullptr, kInvalidRequest, "Unauthorized: a valid bearer token is required",
                    {{"WWW-Authenticate", "Bearer"}});
        return false;
    }
    return true;
}

void HttpEndpoint::on_post(http::Request& request, http::Exchange& exchange) {
    const std::string* type = request.header("content-type");
    if (!type || !http_util::media_type_is(*type, "application/json")) {
        reply_error(exchange, 415, nullptr, kInvalidRequest, "Unsupported Media Type: POST application/json");
        return;
    }
    const std::string* accept = request.header("accept");
    if (accept && !http_util::accepts(*accept, "application/json") && !http_util::accepts(*accept, "text/event-stream")) {
        reply_error(exchange, 406, nullptr, kInvalidRequest,
                    "Not Acceptable: the client must accept application/json and text/event-stream");
        return;
    }
    if (request.too_large) {
        exchange.close_after();
        json id = request_id_from_prefix(request.body).value_or(json(nullptr));
        reply_error(exchange, 413, id, kInvalidRequest,
                    "Invalid Request: message longer than the " + std::to_string(options_.server.max_body_bytes) +
                        "-byte limit (see --max-message-bytes); it was skipped");
        return;
    }
    Post post{request, json(), Contents{}, !accept || http_util::accepts(*accept, "text/event-stream")};
    try {
        post.body = parse_message(request.body, options_.parse_limits);
    } catch (const RpcError& e) {
        reply_error(exchange, 400, nullptr, e.code(), e.what());
        return;
    }
    post.contents = inspect(post.body);
    if (post.contents.invalid) {
        reply_error(exchange, 400, post.contents.invalid_id, kInvalidRequest, *post.contents.invalid);
        return;
    }
    if (request.header("mcp-session-id") || post.contents.initialize ||
        !http_util::is_modern_post(request, post.body, options_.legacy_versions))
        serve_legacy(post, exchange);
    else
        serve_modern(post, exchange);
}

std::shared_ptr<HttpSession> HttpEndpoint::make_session() {
    auto session = std::make_shared<HttpSession>(new_session_id());
    session->bind(connector_(session));
    return session;
}

std::shared_ptr<HttpSession> HttpEndpoint::open_session(http::Exchange& exchange) {
    sweep_idle_sessions();
    {
        std::lock_guard lock(mutex_);
        if (sessions_.size() >= options_.max_sessions) {
            reply_error(exchange, 503, nullptr, kInternalError, "Service Unavailable: too many sessions",
                        {{"Retry-After", "5"}});
            return nullptr;
        }
    }
    auto session = make_session();
    std::lock_guard lock(mutex_);
    sessions_[session->id()] = session;
    session->busy++;
    return session;
}

// The session a request names (marked busy), or nullptr after answering 400 or 404.
std::shared_ptr<HttpSession> HttpEndpoint::find_session(const http::Request& request, http::Exchange& exchange) {
    const std::string* id = request.header("mcp-session-id");
    if (!id) {
        reply_error(exchange, 400, nullptr, kInvalidRequest,
                    "Bad Request: an Mcp-Session-Id header is required (initialize first)");
        return nullptr;
    }
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(*id);
    if (it == sessions_.end()) {
        reply_error(exchange, 404, nullptr, -32001, "Session not found: initialize again");
        return nullptr;
    }
    it->second->busy++;
    it->second->last_used = Clock::now();
    return it->second;
}

void HttpEndpoint::drop_session(const std::string& id) {
    std::shared_ptr<HttpSession> gone;
    {
        std::lock_guard lock(mutex_);
        auto it = sessions_.find(id);
        if (it == sessions_.end()) return;
        gone = std::move(it->second);
        sessions_.erase(it);
    }
    gone->unbind();
}

void HttpEndpoint::sweep_idle_sessions() {
    std::vector<std::string> idle;
    {
        std::lock_guard lock(mutex_);
        auto limit = Clock::now() - options_.session_idle_timeout;
        for (const auto& [id, s] : sessions_)
            if (s->busy == 0 && s->last_used < limit) idle.push_back(id);
    }
    for (const auto& id : idle) drop_session(id);
}

void HttpEndpoint::serve_legacy(Post& post, http::Exchange& exchange) {
    const http::Request& request = post.request;
    if (const std::string* v = request.header("mcp-protocol-version");
        v && std::find(options_.legacy_versions.begin(), options_.legacy_versions.end(), *v) ==
                 options_.legacy_versions.end()) {
        reply_error(exchange, 400, nullptr, kInvalidRequest, "Bad Request: unsupported MCP-Protocol-Version " + *v);
        return;
    }
    const bool opening = post.contents.initialize && !request.header("mcp-session-id");
    auto session = opening ? open_session(exchange) : find_session(request, exchange);
    if (!session) return;
    SessionUse in_use{this, session.get()};
    Headers headers{{"Mcp-Session-Id", session->id()}};

    if (post.contents.request_keys.empty()) {  // notifications and responses only
        session->deliver(request.body, kMainStream);
        for (const auto& key : post.contents.cancelled_keys) session->abandon(key);
        exchange.respond(202, "", "", headers);
        return;
    }
    StreamId stream = session->open_stream(post.contents.request_keys, false);
    session->deliver(request.body, stream);
    StreamPump pump{*session, stream, exchange, post.sse_ok, headers, options_.sse_keepalive,
                    [](const std::string&) { return 200; }};
    pump.opening = opening;
    pump.run();
    session->close_stream(stream);
    // A refused initialize opens nothing: the client starts again without a session id.
    if (opening && !(pump.answer && json::parse(*pump.answer, nullptr, false).contains("result")))
        drop_session(session->id());
}

void HttpEndpoint::serve_modern(Post& post, http::Exchange& exchange) {
    if (auto mismatch = http_util::header_mismatch(post.request, post.body)) {
        json id = post.body.is_object() ? post.body.value("id", json(nullptr)) : json(nullptr);
        reply_error(exchange, 400, id, kHeaderMismatch, "Header mismatch: " + *mismatch);
        return;
    }
    auto session = make_session();  // the POST's own connection: nothing is shared across requests
    if (post.contents.request_keys.empty()) {
        session->deliver(post.request.body, kMainStream);
        exchange.respond(202, "", "");
        session->unbind();
        return;
    }
    StreamId stream = session->open_stream(post.contents.request_keys, false);
    session->deliver(post.request.body, stream);
    StreamPump pump{*session, stream, exchange, post.sse_ok, {}, options_.sse_keepalive,
                    [](const std::string& answer) { return http_util::modern_error_status(answer); }};
    if (pump.run()) {
        // On this revision closing the response stream is the cancellation of its request.
        json cancel = make_notification("notifications/cancelled",
                                        json{{"requestId", post.body["id"]}, {"reason", "the client closed the stream"}});
        session->deliver(serialize(cancel), kMainStream);
        exchange.close_after();
    }
    session->close_stream(stream);
    session->unbind();
}

void HttpEndpoint::on_get(http::Request& request, http::Exchange& exchange) {
    const std::string* version = request.header("mcp-protocol-version");
    if (!request.header("mcp-session-id") && version &&
        std::find(options_.legacy_versions.begin(), options_.legacy_versions.end(), *version) ==
            options_.legacy_versions.end()) {
        exchange.respond(405, "text/plain", "Method Not Allowed: this revision has no GET stream\n", {{"Allow", "POST"}});
        return;
    }
    const std::string* accept = request.header("accept");
    if (!accept || !http_util::accepts(*accept, "text/event-stream")) {
        reply_error(exchange, 406, nullptr, kInvalidRequest, "Not Acceptable: GET needs Accept: text/event-stream");
        return;
    }
    auto session = find_session(request, exchange);
    if (!session) return;
    SessionUse in_use{this, session.get()};
    StreamId stream = session->open_stream({}, true);
    if (stream == 0) {
        reply_error(exchange, 409, nullptr, kInvalidRequest, "Conflict: this session already has a GET stream");
        return;
    }
    StreamPump pump{*session, stream, exchange, true, {{"Mcp-Session-Id", session->id()}}, options_.sse_keepalive,
                    [](const std::string&) { return 200; }};
    pump.streaming = exchange.start_stream(200, "text/event-stream", pump.headers);
    if (pump.streaming) pump.run();
    session->close_stream(stream);
    exchange.close_after();
}

void HttpEndpoint::release(HttpSession& session) {
    std::lock_guard lock(mutex_);
    session.busy--;
    session.last_used = Clock::now();
}

void HttpEndpoint::on_delete(http::Request& request, http::Exchange& exchange) {
    auto session = find_session(request, exchange);
    if (!session) return;
    release(*session);
    drop_session(session->id());
    exchange.respond(204, "", "");
}

}  // namespace pymcp::jsonrpc
