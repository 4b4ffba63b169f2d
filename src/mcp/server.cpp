#include "python_mcp/mcp/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>
#include <optional>
#include <vector>

namespace pymcp::mcp {

using namespace jsonrpc;

const char* const kSupportedProtocolVersions[4] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

namespace {

int level_rank(const std::string& level) {
    static const char* levels[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
    for (int i = 0; i < 8; ++i)
        if (level == levels[i]) return i;
    return -1;
}

}  // namespace

// The way back to the client, shared by every CallContext. Thread-safe.
class Server::Channel final : public ClientChannel {
public:
    explicit Channel(MessageSink& sink) : sink_(sink) {}
    void notify(const std::string& method, json params) override {
        sink_.send(make_notification(method, std::move(params)));
    }
    bool wants_log(const std::string& level) const override {
        int r = level_rank(level);
        return r >= 0 && r >= min_level_.load();
    }
    void set_level(int rank) { min_level_ = rank; }

private:
    MessageSink& sink_;
    std::atomic<int> min_level_{1};  // info
};

// Collects the answers to one batch line and sends them as one array once the last is in.
// Each reply slot holds a reference, so the batch lives as long as any of its requests runs.
class Server::Batch : public std::enable_shared_from_this<Server::Batch> {
public:
    explicit Batch(Server& server) : server_(server) {}
    Reply reply_slot() {
        std::lock_guard lock(mutex_);
        ++pending_;
        return [self = shared_from_this()](json response) { self->deliver(std::move(response), false); };
    }
    void seal() { deliver(nullptr, true); }

private:
    void deliver(json response, bool sealing) {
        json out;
        {
            std::lock_guard lock(mutex_);
            if (sealing) {
                sealed_ = true;
            } else {
                --pending_;
                if (!response.is_null()) responses_.push_back(std::move(response));
            }
            if (!sealed_ || pending_ > 0 || sent_) return;
            sent_ = true;
            out = std::move(responses_);
        }
        if (!out.empty()) server_.send(out);  // all notifications: nothing to send
    }

    Server& server_;
    std::mutex mutex_;
    size_t pending_ = 0;
    bool sealed_ = false;
    bool sent_ = false;
    json responses_ = json::array();
};

Server::Server(ToolRegistry& registry, MessageSink& sink, ServerOptions options)
    : registry_(registry),
      sink_(sink),
      options_(std::move(options)),
      channel_(std::make_shared<Channel>(sink)),
      pool_("request", options_.max_request_threads) {
    // A downstream server registers its tools one by one: coalesce the burst into one
    // notification sent shortly after the first change.
    registry_subscription_ = registry_.subscribe([this] {
        if (!client_ready_.load() || list_changed_pending_.exchange(true)) return;
        try {
            pool_.post([this] {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                list_changed_pending_ = false;
                if (!shutting_down_.load()) send(make_notification("notifications/tools/list_changed", nullptr));
            });
        } catch (const PoolError& e) {
            // No thread to wait on: tell the client now rather than never.
            list_changed_pending_ = false;
            if (!shutting_down_.load()) send(make_notification("notifications/tools/list_changed", nullptr));
        }
    });
}

Server::~Server() {
    registry_.unsubscribe(registry_subscription_);
    begin_shutdown();
}

void Server::send(const json& message) { sink_.send(message); }

std::string Server::protocol_version() const {
    std::lock_guard lock(mutex_);
    return protocol_version_;
}

size_t Server::in_flight() const {
    std::lock_guard lock(mutex_);
    return running_calls_;
}

void Server::handle_overlong_line(size_t limit, std::string_view prefix) {
    // Clients write "id" before "params" (the bulk), so the id is usually in the first bytes:
    // answering with it lets the client stop waiting for that request.
    json id = request_id_from_prefix(prefix).value_or(json(nullptr));
    spdlog::warn("skipped an input line longer than {} bytes (id {})", limit, id.is_null() ? "unknown" : id.dump());
    send(make_error(id, kInvalidRequest,
                    "Invalid Request: message longer than the " + std::to_string(limit) +
                        "-byte limit (see --max-message-bytes); it was skipped"));
}

void Server::handle_line(std::string_view line) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;  // blank lines are not messages
    json message;
    try {
        message = parse_message(line, options_.parse_limits);
    } catch (const RpcError& e) {
        send(make_error(nullptr, e.code(), e.what()));
        return;
    }
    if (message.is_array()) {
        handle_batch(message);
        return;
    }
    handle_message(message, [this](json response) {
        if (!response.is_null()) send(response);
    });
}

void Server::handle_batch(const json& batch) {
    std::string version = protocol_version();
    if (batch.empty()) {
        send(make_error(nullptr, kInvalidRequest, "Invalid Request: empty batch"));
        return;
    }
    if (version != "2025-03-26") {
        send(make_error(nullptr, kInvalidRequest,
                        "Invalid Request: JSON-RPC batches are only part of protocol revision 2025-03-26" +
                            (version.empty() ? std::string() : "; this session uses " + version)));
        return;
    }
    auto collector = std::make_shared<Batch>(*this);
    for (const auto& element : batch) {
        if (element.is_array()) {
            auto slot = collector->reply_slot();
            slot(make_error(nullptr, kInvalidRequest, "Invalid Request: nested batch"));
            continue;
        }
        handle_message(element, collector->reply_slot());
    }
    collector->seal();
}

void Server::handle_message(const json& message, const Reply& reply) {
    Classified c = classify(message);
    switch (c.kind) {
        case Kind::Invalid: {
            json id = nullptr;
            if (message.is_object()) {
                auto it = message.find("id");
                if (it != message.end() && (it->is_string() || it->is_number_integer())) id = *it;
            }
            reply(make_error(id, kInvalidRequest, "Invalid Request: " + c.problem));
            return;
        }
        case Kind::Notification:
            handle_notification(message);
            reply(nullptr);
            return;
        case Kind::Response:
            spdlog::debug("ignoring a response from the client: {}", serialize(message).substr(0, 200));
            reply(nullptr);
            return;
        case Kind::Request:
            handle_request(message, reply);
            return;
    }
}

void Server::handle_notification(const json& message) {
    const std::string& method = message["method"].get_ref<const std::string&>();
    static const json no_params = json::object();
    auto found = message.find("params");
    const json& params = found != message.end() ? *found : no_params;
    if (method == "notifications/initialized") {
        client_ready_ = true;
    } else if (method == "notifications/cancelled") {
        if (!params.is_object() || !params.contains("requestId")) return;
        std::string reason = "cancelled by the client";
        if (auto r = params.find("reason"); r != params.end() && r->is_string()) reason += ": " + r->get<std::string>();
        std::optional<CancellationSource> target;
        {
            std::lock_guard lock(mutex_);
            auto it = in_flight_.find(id_key(params["requestId"]));
            if (it != in_flight_.end()) target = it->second.cancel;
        }
        // Outside the lock: cancellation callbacks may answer the request, which takes mutex_.
        if (target) target->cancel(reason);
    } else {
        spdlog::debug("ignoring notification {}", method);
    }
}

void Server::handle_request(const json& message, const Reply& reply) {
    const json& id = message["id"];
    const std::string& method = message["method"].get_ref<const std::string&>();
    static const json no_params = json::object();
    auto found = message.find("params");
    const json& params = found != message.end() ? *found : no_params;
    try {
        if (method == "ping") {
            reply(make_result(id, json::object()));
            return;
        }
        if (method == "initialize") {
            reply(make_result(id, on_initialize(params)));
            return;
        }
        static const char* known[] = {"tools/list", "tools/call", "logging/setLevel"};
        bool is_known = std::find_if(std::begin(known), std::end(known), [&](const char* k) { return method == k; }) !=
                        std::end(known);
        if (!is_known) {
            reply(make_error(id, kMethodNotFound, "Method not found: " + method));
            return;
        }
        if (!initialized_.load()) {
            reply(make_error(id, kInvalidRequest, "Invalid Request: the server is not initialized; send 'initialize' first"));
            return;
        }
        if (!params.is_object()) throw RpcError(kInvalidParams, "Invalid params: params must be an object");
        if (method == "tools/list") reply(make_result(id, on_tools_list(params)));
        else if (method == "logging/setLevel") reply(make_result(id, on_set_level(params)));
        else start_tool_call(id, params, reply);
    } catch (const RpcError& e) {
        reply(make_error(id, e.code(), e.what(), e.data()));
    } catch (const std::exception& e) {
        spdlog::error("{} failed: {}", method, e.what());
        reply(make_error(id, kInternalError, std::string("Internal error: ") + e.what()));
    }
}

json Server::on_initialize(const json& params) {
    if (initialized_.load()) throw RpcError(kInvalidRequest, "Invalid Request: the server is already initialized");
    if (!params.is_object() || !params.contains("protocolVersion") || !params["protocolVersion"].is_string())
        throw RpcError(kInvalidParams, "Invalid params: initialize needs a string 'protocolVersion'");
    const std::string requested = params["protocolVersion"];
    std::string version = kSupportedProtocolVersions[0];
    for (const char* v : kSupportedProtocolVersions)
        if (requested == v) version = v;
    {
        std::lock_guard lock(mutex_);
        protocol_version_ = version;
    }
    initialized_ = true;
    if (params.contains("clientInfo") && params["clientInfo"].is_object())
        spdlog::info("client {} {} asked for protocol {}, using {}", params["clientInfo"].value("name", "?"),
                     params["clientInfo"].value("version", "?"), requested, version);
    json server_info{{"name", options_.name}, {"version", options_.version}};
    if (version >= "2025-06-18") server_info["title"] = options_.title;
    json result{{"protocolVersion", version},
                {"capabilities", {{"tools", {{"listChanged", true}}}, {"logging", json::object()}}},
                {"serverInfo", server_info}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
}

json Server::on_tools_list(const json& params) const {
    json tools = json::array();
    for (const auto& def : registry_.list())
        if (def.exposed) tools.push_back(def.to_json());
    return json{{"tools", std::move(tools)}};
}

json Server::on_set_level(const json& params) {
    if (!params.contains("level") || !params["level"].is_string() || level_rank(params["level"]) < 0)
        throw RpcError(kInvalidParams,
                       "Invalid params: 'level' must be one of debug, info, notice, warning, error, critical, alert, emergency");
    channel_->set_level(level_rank(params["level"]));
    return json::object();
}

void Server::start_tool_call(const json& id, const json& params, const Reply& reply) {
    auto name_it = params.find("name");
    if (name_it == params.end() || !name_it->is_string())
        throw RpcError(kInvalidParams, "Invalid params: tools/call needs a string 'name'");
    std::string name = *name_it;
    json arguments = json::object();
    if (auto a = params.find("arguments"); a != params.end() && !a->is_null()) arguments = *a;
    if (!arguments.is_object()) throw RpcError(kInvalidParams, "Invalid params: 'arguments' must be an object");
    if (!registry_.is_exposed(name)) throw RpcError(kInvalidParams, "Unknown tool: '" + name + "'");
    json progress_token = nullptr;
    if (auto meta = params.find("_meta"); meta != params.end() && meta->is_object()) {
        auto pt = meta->find("progressToken");
        if (pt != meta->end() && (pt->is_string() || pt->is_number_integer())) progress_token = *pt;
    }

    const std::string key = id_key(id);
    CancellationSource cancel;
    uint64_t cookie;
    {
        std::lock_guard lock(mutex_);
        if (shutting_down_) throw RpcError(kInternalError, "the server is shutting down");
        if (in_flight_.count(key))
            throw RpcError(kInvalidRequest, "Invalid Request: id " + key + " is already used by a request in progress");
        cookie = next_cookie_++;
        in_flight_.emplace(key, InFlight{cookie, cancel});
        ++running_calls_;
    }
    // Answers once, whichever path the call takes.
    auto finish = [this, id, key, cookie, cancel, reply](json response) {
        {
            // Forget the id before answering, so a client that reuses it at once is not refused.
            std::lock_guard lock(mutex_);
            auto it = in_flight_.find(key);
            if (it != in_flight_.end() && it->second.cookie == cookie) in_flight_.erase(it);
        }
        // A cancelled request gets no answer (the client has forgotten the id).
        reply(cancel.cancelled() ? json(nullptr) : std::move(response));
        {
            std::lock_guard lock(mutex_);
            --running_calls_;
        }
        idle_.notify_all();
    };
    CallContext context(cancel.token(), id, progress_token, channel_);
    if (registry_.try_call_async(name, arguments, context,
                                 [id, finish](json result) { finish(make_result(id, std::move(result))); }))
        return;
    // `finish` is copied into the task, not moved: when the pool refuses the task (it cannot
    // start a thread and has none), the task is dropped unrun and this call answers it here,
    // once. Answering through handle_request's catch instead would leave the id in flight.
    try {
        pool_.post([this, id, name, arguments = std::move(arguments), context = std::move(context),
                    finish]() mutable {
            json response;
            try {
                response = make_result(id, registry_.call(name, arguments, context));
            } catch (const UnknownToolError& e) {
                response = make_error(id, kInvalidParams, e.what());
            } catch (const InvalidParamsError& e) {
                response = make_error(id, kInvalidParams, std::string("Invalid params: ") + e.what());
            } catch (const std::exception& e) {
                response = make_error(id, kInternalError, std::string("Internal error: ") + e.what());
            }
            finish(std::move(response));
        });
    } catch (const PoolError& e) {
        spdlog::error("tools/call {}: {}", name, e.what());
        finish(make_error(id, kInternalError, std::string("Internal error: ") + e.what() + "; the call did not run"));
    }
}

void Server::begin_shutdown() {
    std::vector<CancellationSource> running;
    {
        std::lock_guard lock(mutex_);
        shutting_down_ = true;
        for (auto& [_, f] : in_flight_) running.push_back(f.cancel);
    }
    for (auto& c : running) c.cancel("the server is shutting down");
}

bool Server::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [&] { return running_calls_ == 0; });
}

}  // namespace pymcp::mcp
