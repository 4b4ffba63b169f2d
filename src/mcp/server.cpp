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

}  // namespace

Server::Server(ToolRegistry& registry, ServerOptions options)
    : registry_(registry), options_(std::move(options)), pool_("request", options_.max_request_threads) {
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
    peer_options.request_gate = [connection = connection.get()](const std::string&) -> std::optional<RpcError> {
        if (connection->session().initialized()) return std::nullopt;
        return RpcError(kInvalidRequest, "Invalid Request: the server is not initialized; send 'initialize' first");
    };
    connection->peer_ = std::make_shared<Peer>(transport, std::move(peer_options));
    connection->session_ = std::make_shared<ClientSession>(connection->peer_);
    bind(*connection);
    std::lock_guard lock(mutex_);
    std::erase_if(connections_, [](const auto& w) { return w.expired(); });
    connections_.push_back(connection);
    return connection;
}

void Server::bind(Connection& connection) {
    Peer& peer = *connection.peer_;
    std::shared_ptr<ClientSession> session = connection.session_;
    ClientSession* s = session.get();
    peer.on_request("initialize", [this, s](const json& params, Responder reply) {
        reply.result(on_initialize(*s, params));
    }, /*ungated=*/true);
    peer.on_request("ping", [](const json&, Responder reply) { reply.result(json::object()); }, /*ungated=*/true);
    peer.on_request("tools/list", [this](const json&, Responder reply) { reply.result(on_tools_list()); });
    peer.on_request("tools/call", [this, session](const json& params, Responder reply) {
        on_tools_call(session, params, reply);
    });
    peer.on_request("logging/setLevel", [s](const json& params, Responder reply) {
        int rank = params.is_object() && params.contains("level") && params["level"].is_string()
                       ? log_level_rank(params["level"].get<std::string>())
                       : -1;
        if (rank < 0)
            throw RpcError(kInvalidParams,
                           "Invalid params: 'level' must be one of debug, info, notice, warning, error, critical, "
                           "alert, emergency");
        s->set_log_level(rank);
        reply.result(json::object());
    });
    peer.on_notification("notifications/initialized", [s](const json&) { s->mark_ready(); });
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
                {"capabilities", {{"tools", {{"listChanged", true}}}, {"logging", json::object()}}},
                {"serverInfo", server_info}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
}

json Server::on_tools_list() const {
    json tools = json::array();
    for (const auto& def : registry_.list())
        if (def.exposed) tools.push_back(def.to_json());
    return json{{"tools", std::move(tools)}};
}

void Server::on_tools_call(const std::shared_ptr<ClientSession>& session, const json& raw_params,
                           const Responder& reply) {
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

    CallContext context(reply.cancellation(), reply.id(), progress_token_of(params), session);
    ToolReply answer{[reply](json result) { reply.result(std::move(result)); },
                     [reply](int code, const std::string& message) { reply.error(code, message); }};
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

// A downstream server registers its tools in bursts: one notification shortly after the first
// change covers the burst.
void Server::announce_tools_changed() {
    if (shutting_down_.load() || list_changed_pending_.exchange(true)) return;
    auto announce = [this] {
        list_changed_pending_ = false;
        if (shutting_down_.load()) return;
        for (auto& c : connections())
            if (c->session().ready()) c->peer().notify("notifications/tools/list_changed", nullptr);
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
    for (auto& c : connections()) c->peer().cancel_incoming("the server is shutting down");
}

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
