#include "python_mcp/mcp/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "python_mcp/support/json_text.hpp"

namespace pymcp::mcp {

using namespace jsonrpc;

namespace {

const json& params_or_empty(const json& params) {
    static const json empty = json::object();
    return params.is_object() ? params : empty;
}

// A tools/call's progressToken, when it carries a usable one.
json progress_token_of(const json& params) {
    auto meta = params.find("_meta");
    if (meta == params.end() || !meta->is_object()) return nullptr;
    auto token = meta->find("progressToken");
    if (token != meta->end() && (token->is_string() || token->is_number_integer())) return *token;
    return nullptr;
}

const json* meta_of(const json& params) {
    if (!params.is_object()) return nullptr;
    auto meta = params.find("_meta");
    return meta != params.end() && meta->is_object() ? &*meta : nullptr;
}

// Whether a request speaks the modern revision: its `_meta` names a protocol version.
bool names_protocol_version(const json& params) {
    const json* meta = meta_of(params);
    return meta && meta->contains(kMetaProtocolVersion);
}

json supported_versions() {
    json versions = json::array({std::string(kModernProtocolVersion)});
    for (auto v : kLegacyProtocolVersions) versions.push_back(std::string(v));
    return versions;
}

// The way back for one legacy request: its notifications on the stream it came in on (HTTP: the
// response to its POST), log messages at the client's level, and requests to the client. (A
// modern tools/call's channel is its InputFlow.)
class RequestChannel final : public ClientChannel {
public:
    RequestChannel(std::shared_ptr<ClientSession> session, StreamId stream, RequestEra era)
        : session_(std::move(session)), stream_(stream), era_(std::move(era)) {}

    void notify(const std::string& method, json params) override {
        // A task's status outlives the request that created it (answered at once), whose HTTP
        // stream has ended by then: it goes on the session's own stream (stdio: the one stream).
        if (method == "notifications/tasks/status") return session_->notify(method, std::move(params));
        session_->notify_on(method, std::move(params), stream_);
    }
    bool wants_log(const std::string& level) const override {
        if (!era_.modern) return session_->wants_log(level);
        int rank = log_level_rank(level);
        return era_.log_rank >= 0 && rank >= era_.log_rank;
    }
    json client_capabilities() const override {
        return era_.modern ? era_.capabilities : session_->client_capabilities();
    }
    json request(const std::string& method, json params, std::chrono::milliseconds timeout,
                 const CancellationToken& cancel) override {
        if (era_.modern)
            throw ClientRequestError("the client speaks protocol 2026-07-28, where " + method +
                                     " can only be asked through a tools/call's input_required result");
        return session_->request(method, std::move(params), timeout, cancel);
    }

private:
    std::shared_ptr<ClientSession> session_;
    StreamId stream_;
    RequestEra era_;
};

// resource_link content came with 2025-06-18: an older client gets the result without it (the
// text still says where the whole output is).
void drop_resource_links(const std::string& version, json& result) {
    if (version >= "2025-06-18" || !result.is_object()) return;
    auto content = result.find("content");
    if (content == result.end() || !content->is_array()) return;
    json kept = json::array();
    for (auto& item : *content)
        if (!item.is_object() || item.value("type", "") != "resource_link") kept.push_back(std::move(item));
    *content = std::move(kept);
}

}  // namespace

Server::Server(ToolRegistry& registry, ServerOptions options)
    : registry_(registry),
      options_(std::move(options)),
      input_lot_(std::make_shared<InputLot>(options_.input_wait)),
      pool_("request", options_.max_request_threads) {
    registry_subscription_ = registry_.subscribe([this] { announce_tools_changed(); });
}

Server::~Server() {
    registry_.unsubscribe(registry_subscription_);
    begin_shutdown();
}

std::shared_ptr<Server::Connection> Server::connect(Transport& transport) {
    auto connection = std::make_shared<Connection>();
    PeerOptions peer_options;
    peer_options.name = "client";
    peer_options.parse_limits = options_.parse_limits;
    // The policies read the session; the connection owns the peer, so they never outlive it.
    peer_options.batch_policy = [connection = connection.get()]() -> std::optional<std::string> {
        std::string version = connection->session().protocol_version();
        if (version == kBatchProtocolVersion) return std::nullopt;
        return "Invalid Request: JSON-RPC batches are only part of protocol revision 2025-03-26" +
               (version.empty() ? std::string() : "; this session uses " + version);
    };
    // No request gate: whether a request may run depends on its era (era_of), not only on its method.
    connection->peer_ = std::make_shared<Peer>(transport, std::move(peer_options));
    connection->session_ = std::make_shared<ClientSession>(connection->peer_);
    bind(*connection);
    std::lock_guard lock(mutex_);
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    connections_.push_back(connection);
    return connection;
}

// Every handler is registered ungated and asks era_of() itself: a modern request needs no
// initialize, a legacy one does.
void Server::bind(Connection& connection) {
    Peer& peer = *connection.peer_;
    std::shared_ptr<ClientSession> session = connection.session_;
    ClientSession* s = session.get();
    peer.on_request("initialize", [this, s](const json& params, Responder reply) {
        reply.result(on_initialize(*s, params));
    }, /*ungated=*/true);
    // ping is answered before initialize too (as before), but is no part of the modern revision.
    peer.on_request("ping", [](const json& params, Responder reply) {
        if (names_protocol_version(params)) throw RpcError(kMethodNotFound, "Method not found: ping (removed in 2026-07-28)");
        reply.result(json::object());
    }, /*ungated=*/true);
    peer.on_request("tools/list", [this, s](const json& params, Responder reply) {
        reply.result(on_tools_list(*s, era_of(*s, params)));
    }, true);
    peer.on_request("tools/call", [this, session](const json& params, Responder reply) {
        on_tools_call(session, era_of(*session, params), params, reply);
    }, true);
    peer.on_request("logging/setLevel", [this, s](const json& params, Responder reply) {
        if (names_protocol_version(params))
            throw RpcError(kMethodNotFound, "Method not found: logging/setLevel (2026-07-28 sets the level per request)");
        era_of(*s, params);
        int rank = params.is_object() && params.contains("level") && params["level"].is_string()
                       ? log_level_rank(params["level"].get<std::string>())
                       : -1;
        if (rank < 0)
            throw RpcError(kInvalidParams,
                           "Invalid params: 'level' must be one of debug, info, notice, warning, error, critical, "
                           "alert, emergency");
        s->set_log_level(rank);
        reply.result(json::object());
    }, true);
    peer.on_notification("notifications/initialized", [s](const json&) { s->mark_ready(); });
    bind_modern(connection);
    if (options_.resources) bind_resources(connection);
    bind_tasks(connection);
}

// The methods only the modern revision has.
void Server::bind_modern(Connection& connection) {
    Peer& peer = *connection.peer_;
    std::shared_ptr<ClientSession> session = connection.session_;
    ClientSession* s = session.get();
    peer.on_request("server/discover", [this, s](const json& params, Responder reply) {
        if (!names_protocol_version(params))
            throw RpcError(kInvalidParams, std::string("Invalid params: server/discover needs _meta[\"") +
                                               kMetaProtocolVersion + "\"] and its client capabilities");
        RequestEra era = era_of(*s, params);
        reply.result(finish(era, on_discover()));
    }, true);
    peer.on_request("subscriptions/listen", [this, session](const json& params, Responder reply) {
        on_listen(session, params, reply);
    }, true);
}

// The era of one request, checked: a modern request must name a supported version (-32022) and
// declare its capabilities (-32602); a legacy one needs an initialized connection.
RequestEra Server::era_of(const ClientSession& session, const json& params) const {
    const json* meta = meta_of(params);
    if (!meta || !meta->contains(kMetaProtocolVersion)) {
        if (!session.initialized())
            throw RpcError(kInvalidRequest,
                           "Invalid Request: the server is not initialized; send 'initialize' first (or, for protocol "
                           "2026-07-28, name the version in the request's _meta)");
        return RequestEra{};
    }
    const json& version = (*meta)[kMetaProtocolVersion];
    if (!version.is_string() || version.get_ref<const std::string&>() != kModernProtocolVersion)
        throw RpcError(kUnsupportedProtocolVersion, "Unsupported protocol version",
                       json{{"supported", supported_versions()}, {"requested", version}});
    RequestEra era;
    era.modern = true;
    auto caps = meta->find(kMetaClientCapabilities);
    if (caps == meta->end() || !caps->is_object())
        throw RpcError(kInvalidParams, std::string("Invalid params: _meta[\"") + kMetaClientCapabilities +
                                           "\"] (an object) is required in protocol 2026-07-28");
    era.capabilities = *caps;
    if (auto level = meta->find(kMetaLogLevel); level != meta->end()) {
        era.log_rank = level->is_string() ? log_level_rank(level->get<std::string>()) : -1;
        if (era.log_rank < 0)
            throw RpcError(kInvalidParams, std::string("Invalid params: _meta[\"") + kMetaLogLevel +
                                               "\"] must be one of debug, info, notice, warning, error, critical, "
                                               "alert, emergency");
    }
    return era;
}

// A modern result: resultType, and the server's identity in _meta.
json Server::finish(const RequestEra& era, json result) const {
    if (!era.modern || !result.is_object()) return result;
    if (!result.contains("resultType")) result["resultType"] = "complete";
    if (!result.contains("_meta") || !result["_meta"].is_object()) result["_meta"] = json::object();
    result["_meta"][kMetaServerInfo] = json{{"name", options_.name}, {"title", options_.title}, {"version", options_.version}};
    return result;
}

json Server::on_discover() const {
    json result{{"supportedVersions", supported_versions()},
                {"capabilities", capabilities(false)},
                {"ttlMs", options_.discover_ttl.count()},
                {"cacheScope", "private"}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
}

json Server::on_initialize(ClientSession& session, const json& params) const {
    if (session.initialized()) throw RpcError(kInvalidRequest, "Invalid Request: the server is already initialized");
    if (!params.is_object() || !params.contains("protocolVersion") || !params["protocolVersion"].is_string())
        throw RpcError(kInvalidParams, "Invalid params: initialize needs a string 'protocolVersion'");
    const std::string requested = params["protocolVersion"];
    std::string version(is_legacy_protocol_version(requested) ? requested : kLegacyProtocolVersions[0]);
    json client_info = params.value("clientInfo", json::object());
    session.initialize(version, params.value("capabilities", json::object()), client_info);
    if (client_info.is_object())
        spdlog::info("client {} {} asked for protocol {}, using {}", client_info.value("name", "?"),
                     client_info.value("version", "?"), requested, version);
    json server_info{{"name", options_.name}, {"version", options_.version}};
    if (version >= "2025-06-18") server_info["title"] = options_.title;
    json result{{"protocolVersion", version},
                {"capabilities", capabilities(tasks_ && version == kTasksProtocolVersion)},
                {"serverInfo", server_info}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
}

json Server::capabilities(bool with_tasks) const {
    json caps{{"tools", {{"listChanged", true}}}, {"logging", json::object()}};
    if (options_.resources) caps["resources"] = json::object();  // no subscribe, no listChanged
    if (with_tasks)
        caps["tasks"] = json{{"list", json::object()},
                             {"cancel", json::object()},
                             {"requests", {{"tools", {{"call", json::object()}}}}}};
    return caps;
}

json Server::on_tools_list(const ClientSession& session, const RequestEra& era) const {
    const bool with_tasks = tasks_for(session, era);
    json tools = json::array();
    for (const auto& def : registry_.list()) {
        if (!def.exposed) continue;
        json tool = def.to_json(with_tasks);
        if (options_.tool_meta.is_object() && !options_.tool_meta.empty()) {
            json& meta = tool["_meta"];
            if (!meta.is_object()) meta = json::object();
            for (auto it = options_.tool_meta.begin(); it != options_.tool_meta.end(); ++it)
                if (!meta.contains(it.key())) meta[it.key()] = *it;
        }
        tools.push_back(std::move(tool));
    }
    json result{{"tools", std::move(tools)}};
    if (era.modern) {
        result["ttlMs"] = options_.tools_list_ttl.count();
        result["cacheScope"] = "private";
    }
    return finish(era, std::move(result));
}

// resources/list, resources/read and resources/templates/list (none), for both eras. The
// provider reads files: not on the reading thread.
void Server::bind_resources(Connection& connection) {
    Peer& peer = *connection.peer_;
    ClientSession* s = connection.session_.get();
    auto blocking = [this, s](json (Server::*method)(const json&) const) {
        return [this, s, method](const json& params, Responder reply) {
            RequestEra era = era_of(*s, params);
            bool posted = run_blocking([this, method, params, reply, era] {
                try {
                    reply.result(finish(era, (this->*method)(params)));
                } catch (const RpcError& e) {
                    reply.error(e.code(), e.what(), e.data());
                } catch (const std::exception& e) {
                    reply.error(kInternalError, std::string("Internal error: ") + e.what());
                }
            });
            if (!posted) throw RpcError(kInternalError, "no request thread could be started: the request did not run");
        };
    };
    peer.on_request("resources/list", blocking(&Server::on_resources_list), true);
    peer.on_request("resources/read", blocking(&Server::on_resources_read), true);
    peer.on_request("resources/templates/list", [this, s](const json& params, Responder reply) {
        reply.result(finish(era_of(*s, params), json{{"resourceTemplates", json::array()}}));
    }, true);
}

json Server::on_resources_list(const json& raw_params) const {
    const json& params = params_or_empty(raw_params);
    std::string cursor;
    if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
        if (!c->is_string()) throw RpcError(kInvalidParams, "Invalid params: 'cursor' must be a string");
        cursor = c->get<std::string>();
    }
    ResourcePage page;
    try {
        page = options_.resources->list(cursor);
    } catch (const std::invalid_argument& e) {
        throw RpcError(kInvalidParams, e.what());
    }
    json list = json::array();
    for (const auto& r : page.resources) list.push_back(resource_json(r));
    json result{{"resources", std::move(list)}};
    if (!page.next_cursor.empty()) result["nextCursor"] = page.next_cursor;
    return result;
}

json Server::on_resources_read(const json& raw_params) const {
    const json& params = params_or_empty(raw_params);
    auto uri = params.find("uri");
    if (uri == params.end() || !uri->is_string())
        throw RpcError(kInvalidParams, "Invalid params: resources/read needs a string 'uri'");
    std::vector<ResourceContents> contents;
    try {
        contents = options_.resources->read(uri->get<std::string>());
    } catch (const ResourceNotFound& e) {
        throw RpcError(kResourceNotFound, e.what(), json{{"uri", *uri}});
    } catch (const std::invalid_argument& e) {
        throw RpcError(kInvalidParams, std::string("Invalid params: ") + e.what());
    }
    json list = json::array();
    for (auto& c : contents) {
        json item(json::value_t::object);
        if (!c.meta.is_null()) append_field(item, "_meta", std::move(c.meta));
        if (c.is_text) {
            append_field(item, "mimeType", c.mime_type);
            append_field(item, "text", std::move(c.data));
        } else {
            std::string blob;
            append_base64(blob, c.data);
            append_field(item, "blob", std::move(blob));
            append_field(item, "mimeType", c.mime_type);
        }
        append_field(item, "uri", c.uri);
        list.push_back(std::move(item));
    }
    return json{{"contents", std::move(list)}};
}

void Server::on_tools_call(const std::shared_ptr<ClientSession>& session, const RequestEra& era,
                           const json& raw_params, const Responder& reply) {
    if (shutting_down_.load()) throw RpcError(kInternalError, "the server is shutting down");
    const json& params = params_or_empty(raw_params);
    auto name_it = params.find("name");
    if (name_it == params.end() || !name_it->is_string())
        throw RpcError(kInvalidParams, "Invalid params: tools/call needs a string 'name'");
    const std::string& name = name_it->get_ref<const std::string&>();
    json arguments = json::object();
    if (auto a = params.find("arguments"); a != params.end() && !a->is_null()) arguments = *a;
    if (!arguments.is_object()) throw RpcError(kInvalidParams, "Invalid params: 'arguments' must be an object");
    if (!registry_.is_exposed(name)) throw RpcError(kInvalidParams, "Unknown tool: '" + name + "'");
    if (era.modern) return on_modern_tools_call(session, era, name, std::move(arguments), params, reply);
    std::optional<TaskRequest> task = task_of(name, params, tasks_for(*session, era));

    auto channel = std::make_shared<RequestChannel>(session, reply.stream(), era);
    CallContext context(reply.cancellation(), reply.id(), progress_token_of(params), std::move(channel));
    if (task) context.set_task(*task);
    ToolReply answer{[this, reply, era, session](json result) {
                         if (!era.modern) drop_resource_links(session->protocol_version(), result);
                         reply.result(finish(era, std::move(result)));
                     },
                     [reply](int code, const std::string& message) { reply.error(code, message); }};
    registry_.dispatch(ToolCall(name, std::move(arguments), std::move(context), std::move(answer),
                                [this](std::function<void()> work) { return run_blocking(std::move(work)); }));
}

// A retry names its parked call by requestState (the tool and arguments must match); anything
// else starts a call on a new InputFlow, which is its channel, its cancellation, and where its
// answer goes (to whichever leg is open when it comes).
void Server::on_modern_tools_call(const std::shared_ptr<ClientSession>& session, const RequestEra& era,
                                  const std::string& name, json arguments, const json& params,
                                  const Responder& reply) {
    InputLeg leg{reply, session, era, progress_token_of(params)};
    auto state = params.find("requestState");
    if (state != params.end() && !state->is_null()) {
        if (!state->is_string()) throw RpcError(kInvalidParams, "Invalid params: 'requestState' must be a string");
        std::shared_ptr<InputFlow> flow = input_lot_->find(state->get<std::string>());
        json responses = params.value("inputResponses", json());
        return flow->resume(state->get<std::string>(), name, arguments, std::move(leg), responses);
    }
    if (params.contains("inputResponses") && !params["inputResponses"].is_null())
        throw RpcError(kInvalidParams, "Invalid params: 'inputResponses' without the 'requestState' they answer");
    auto flow = InputFlow::start(input_lot_, name, arguments, std::move(leg),
                                 [this](const RequestEra& e, json result) { return finish(e, std::move(result)); });
    CallContext context(flow->cancellation(), reply.id(), progress_token_of(params), flow);
    ToolReply answer{[flow](json result) { flow->complete(std::move(result)); },
                     [flow](int code, const std::string& message) { flow->reject(code, message); }};
    registry_.dispatch(ToolCall(name, std::move(arguments), std::move(context), std::move(answer),
                                [this](std::function<void()> work) { return run_blocking(std::move(work)); }));
}

// False when the pool has no thread and cannot start one: the work is dropped unrun (the pool
// does not queue it), and the caller answers the call.
bool Server::run_blocking(std::function<void()> work) {
    try {
        pool_.post(std::move(work));
        return true;
    } catch (const PoolError& e) {
        spdlog::error("cannot start a request thread: {}", e.what());
        return false;
    }
}

// subscriptions/listen: acknowledged at once (only what this server has: tool list changes),
// then open until the client cancels it (or closes its stream) or the server shuts down.
void Server::on_listen(const std::shared_ptr<ClientSession>& session, const json& params, const Responder& reply) {
    RequestEra era = era_of(*session, params);
    if (!era.modern) throw RpcError(kMethodNotFound, "Method not found: subscriptions/listen is part of protocol 2026-07-28");
    if (shutting_down_.load()) throw RpcError(kInternalError, "the server is shutting down");
    auto filter = params.find("notifications");
    if (filter == params.end() || !filter->is_object())
        throw RpcError(kInvalidParams, "Invalid params: subscriptions/listen needs a 'notifications' object");
    json honoured = json::object();
    if (filter->value("toolsListChanged", false) == true) honoured["toolsListChanged"] = true;
    session->notify_on("notifications/subscriptions/acknowledged",
                       json{{"notifications", honoured}, {"_meta", {{kMetaSubscriptionId, reply.id()}}}}, reply.stream());
    // Kept even when it asked for nothing this server has: the stream stays open until the
    // client ends it, and shutdown answers it.
    std::lock_guard lock(mutex_);
    std::erase_if(listeners_, [](const Listener& l) { return l.reply.answered() || l.reply.cancellation().cancelled(); });
    listeners_.push_back(Listener{session, reply, honoured.contains("toolsListChanged")});
}

void Server::announce_to_listeners() {
    std::vector<Listener> live;
    {
        std::lock_guard lock(mutex_);
        std::erase_if(listeners_, [](const Listener& l) { return l.reply.answered() || l.reply.cancellation().cancelled(); });
        live = listeners_;
    }
    for (auto& l : live)
        if (auto session = l.session.lock(); session && l.tools)
            session->notify_on("notifications/tools/list_changed", json{{"_meta", {{kMetaSubscriptionId, l.reply.id()}}}},
                               l.reply.stream());
}

// At shutdown each open listen gets its closing result, before requests are cancelled.
void Server::close_listeners() {
    std::vector<Listener> open;
    {
        std::lock_guard lock(mutex_);
        open.swap(listeners_);
    }
    for (auto& l : open)
        l.reply.result(json{{"resultType", "complete"},
                            {"_meta", {{kMetaSubscriptionId, l.reply.id()},
                                       {kMetaServerInfo, {{"name", options_.name}, {"version", options_.version}}}}}});
}

// A downstream server registers its tools in bursts: one notification shortly after the first
// change covers the burst.
void Server::announce_tools_changed() {
    if (shutting_down_.load() || list_changed_pending_.exchange(true)) return;
    auto announce = [this] {
        list_changed_pending_ = false;
        if (shutting_down_.load()) return;
        for (auto& c : connections())
            if (c->session().ready()) c->peer().notify("notifications/tools/list_changed", nullptr);
        announce_to_listeners();
    };
    bool posted = run_blocking([announce] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        announce();
    });
    if (!posted) announce();  // no thread to wait on: tell the clients now rather than never
}

std::vector<std::shared_ptr<Server::Connection>> Server::connections() const {
    std::vector<std::shared_ptr<Connection>> live;
    std::lock_guard lock(mutex_);
    for (const auto& w : connections_)
        if (auto c = w.lock()) live.push_back(std::move(c));
    return live;
}

void Server::begin_shutdown() {
    shutting_down_ = true;
    close_listeners();
    input_lot_->cancel_all("the server is shutting down");
    for (auto& c : connections()) c->peer().cancel_incoming("the server is shutting down");
}

void Server::end_of_input() { close_listeners(); }

bool Server::wait_idle(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& c : connections()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (!c->peer().wait_idle(std::max(left, std::chrono::milliseconds(0)))) return false;
    }
    return true;
}

size_t Server::in_flight() const {
    size_t n = 0;
    for (auto& c : connections()) n += c->peer().incoming_in_flight();
    return n;
}

}  // namespace pymcp::mcp

// ---------------------------------------------------------------------------------------------
// The 2025-11-25 tasks utility. Offered only to a legacy connection that negotiated 2025-11-25 on
// a server with a task backend; to everyone else tasks/* do not exist (-32601) and params.task is
// ignored (the spec: a receiver that did not declare the capability processes the request
// normally). 2026-07-28 has tasks only as an extension of another shape, not offered here.
// ---------------------------------------------------------------------------------------------

namespace pymcp::mcp {

bool Server::tasks_for(const ClientSession& session, const RequestEra& era) const {
    return tasks_ && !era.modern && session.protocol_version() == kTasksProtocolVersion;
}

std::optional<TaskRequest> Server::task_of(const std::string& name, const json& params, bool tasks) const {
    if (!tasks) return std::nullopt;
    const std::string support = registry_.task_support(name);
    auto task = params.find("task");
    if (task == params.end() || task->is_null()) {
        if (support == "required")
            throw RpcError(kMethodNotFound, "Task augmentation required for tools/call of '" + name +
                                                "' (execution.taskSupport is \"required\")");
        return std::nullopt;
    }
    if (!task->is_object()) throw RpcError(kInvalidParams, "Invalid params: 'task' must be an object");
    if (support != "optional" && support != "required")
        throw RpcError(kMethodNotFound, "Method not found: tool '" + name +
                                            "' does not support task-augmented calls (execution.taskSupport is "
                                            "\"forbidden\")");
    TaskRequest request;
    if (auto ttl = task->find("ttl"); ttl != task->end() && !ttl->is_null()) {
        if (!ttl->is_number() || ttl->get<double>() < 0)
            throw RpcError(kInvalidParams, "Invalid params: 'task.ttl' must be a number of milliseconds, 0 or more");
        request.ttl = std::chrono::milliseconds(static_cast<long long>(std::min(ttl->get<double>(), 1e15)));
    }
    return request;
}

void Server::bind_tasks(Connection& connection) {
    Peer& peer = *connection.peer_;
    std::shared_ptr<ClientSession> session = connection.session_;
    for (const char* method : {"tasks/get", "tasks/list", "tasks/cancel", "tasks/result"})
        peer.on_request(method, [this, session, m = std::string(method)](const json& params, Responder reply) {
            on_task_request(*session, m, params, reply);
        }, true);
}

namespace {

std::string task_id_of(const json& params) {
    auto id = params.is_object() ? params.find("taskId") : params.end();
    if (!params.is_object() || id == params.end() || !id->is_string())
        throw RpcError(kInvalidParams, "Invalid params: a string 'taskId' is required");
    return id->get<std::string>();
}

// Runs one tasks/* request against the backend and answers it; TaskError -> -32602.
void answer_task_request(TaskBackend& backend, const std::string& method, const json& params, const Responder& reply) {
    try {
        if (method == "tasks/list") {
            std::string cursor;
            if (params.is_object() && params.contains("cursor") && !params["cursor"].is_null()) {
                if (!params["cursor"].is_string()) throw RpcError(kInvalidParams, "Invalid params: 'cursor' must be a string");
                cursor = params["cursor"].get<std::string>();
            }
            TaskPage page = backend.list(cursor);
            json tasks = json::array();
            for (const auto& t : page.tasks) tasks.push_back(t.to_json());
            json result{{"tasks", std::move(tasks)}};
            if (!page.next_cursor.empty()) result["nextCursor"] = page.next_cursor;
            return reply.result(std::move(result));
        }
        const std::string id = task_id_of(params);
        if (method == "tasks/get") return reply.result(backend.get(id).to_json());
        if (method == "tasks/cancel") return reply.result(backend.cancel(id).to_json());
        json result = backend.result(id, reply.cancellation());
        if (!result.is_object()) result = json::object();
        if (!result.contains("_meta") || !result["_meta"].is_object()) result["_meta"] = json::object();
        result["_meta"][kMetaRelatedTask] = json{{"taskId", id}};
        reply.result(std::move(result));
    } catch (const TaskError& e) {
        reply.error(kInvalidParams, e.what());
    } catch (const RpcError& e) {
        reply.error(e);
    } catch (const std::exception& e) {
        reply.error(kInternalError, std::string("Internal error: ") + e.what());
    }
}

}  // namespace

// tasks/get and tasks/list answer from memory on the reading thread; tasks/cancel (which waits
// briefly for the code to stop) and tasks/result (which blocks until the task ends) go to the
// request pool.
void Server::on_task_request(const ClientSession& session, const std::string& method, const json& params,
                             const Responder& reply) {
    RequestEra era = era_of(session, params);
    if (!tasks_for(session, era))
        throw RpcError(kMethodNotFound, "Method not found: " + method + " (the tasks utility is offered to clients "
                                        "that negotiated protocol 2025-11-25)");
    std::shared_ptr<TaskBackend> backend = tasks_;
    if (method == "tasks/get" || method == "tasks/list") return answer_task_request(*backend, method, params, reply);
    if (shutting_down_.load()) throw RpcError(kInternalError, "the server is shutting down");
    bool started = run_blocking([backend, method, params, reply] { answer_task_request(*backend, method, params, reply); });
    if (!started) reply.error(kInternalError, "Internal error: the server cannot start a thread for " + method + " right now");
}

}  // namespace pymcp::mcp
