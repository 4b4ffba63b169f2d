#pragma once
// The MCP server's protocol core: the method table (initialize, ping, tools/list, tools/call,
// logging/setLevel, notifications/initialized; server/discover and subscriptions/listen of the
// modern revision), version negotiation, and tool calls handed to the registry as ToolCalls.
// Each connected client gets a Connection: its own Peer over its transport and its own
// ClientSession (revision, capabilities, log level, in-flight requests).
//
// Two eras on every connection: a request whose `_meta` names a protocol version is served
// statelessly by the 2026-07-28 rules (its own capabilities and log level, `resultType` on every
// result, no ping or logging/setLevel); any other request follows the legacy revision its
// connection negotiated with initialize (and is refused before it). A modern tools/call whose
// code asks the client is answered input_required and parked; its retry resumes it
// (input_required.hpp), from any connection.
//
// Threads: a connection's reading thread runs the handlers, which never wait on a tool: blocking
// tool work goes to a growing pool of request threads shared by every connection. Answers,
// progress and notifications go out through the connection's Peer from any thread.
// Lock order: mutex_ is a leaf (never held while calling a tool, a peer or the registry).
// Every request gets exactly one answer, except one that is cancelled. Nothing throws out of the
// handlers: every failure becomes a JSON-RPC error or an error result.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/jsonrpc/peer.hpp"
#include "python_mcp/mcp/client_session.hpp"
#include "python_mcp/mcp/input_required.hpp"  // RequestEra
#include "python_mcp/mcp/protocol_versions.hpp"
#include "python_mcp/mcp/resource_provider.hpp"
#include "python_mcp/mcp/task.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/elastic_pool.hpp"

namespace pymcp::mcp {

struct ServerOptions {
    std::string name = "python-mcp";
    std::string title = "Python (embedded CPython with persistent sessions)";
    std::string version = PYMCP_VERSION;
    std::string instructions;
    size_t max_request_threads = 512;
    // Modern results' cache hints (ttlMs; cacheScope is "private": nothing is shared across
    // authorisation contexts).
    std::chrono::milliseconds discover_ttl{std::chrono::hours(1)};
    std::chrono::milliseconds tools_list_ttl{std::chrono::minutes(1)};
    jsonrpc::ParseLimits parse_limits;
    // Resources (resources/list, resources/read): declared and served only when set.
    std::shared_ptr<ResourceProvider> resources;
    // Merged into every listed tool's _meta (keys a tool sets itself win), e.g. host hints
    // such as {"anthropic/maxResultSizeChars": N}. Null: nothing added.
    json tool_meta;
    // 2026-07-28: how long a call parked on an input_required result waits for the client's
    // retry (a question's own time-out may be shorter); then it is cancelled.
    std::chrono::milliseconds input_wait{std::chrono::minutes(10)};
};

class Server {
public:
    // A connected client: the Peer its transport's run() drives, and its session.
    class Connection {
    public:
        jsonrpc::Peer& peer() { return *peer_; }
        ClientSession& session() { return *session_; }
        // Keeps `owner` (the transport, for one that is shared-owned) alive as long as the
        // connection: its Peer refers to the transport.
        void hold(std::shared_ptr<void> owner) { owner_ = std::move(owner); }

    private:
        friend class Server;
        std::shared_ptr<void> owner_;  // declared first: destroyed after the peer
        std::shared_ptr<jsonrpc::Peer> peer_;
        std::shared_ptr<ClientSession> session_;
    };

    Server(ToolRegistry& registry, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the method table to a new client on `transport`; run the transport with
    // connection->peer() as its handler. The transport must outlive the connection.
    std::shared_ptr<Connection> connect(jsonrpc::Transport& transport);

    // The 2025-11-25 tasks utility: tasks/* go to `backend`, and clients that negotiated
    // 2025-11-25 are offered the `tasks` capability and each tool's execution.taskSupport. Call
    // before connect(); without it no client sees anything of tasks.
    void set_task_backend(std::shared_ptr<TaskBackend> backend) { tasks_ = std::move(backend); }

    // Cancels every request in flight (they get no answer) and refuses new ones.
    void begin_shutdown();
    // The client's input ended (stdin EOF): open subscriptions/listen requests get their closing
    // result now. They are not calls that could finish, so waiting for running calls must not
    // wait for them (the client cannot cancel them any more).
    void end_of_input();
    // Waits until no request of any connection is running; false on time-out.
    bool wait_idle(std::chrono::milliseconds timeout);
    size_t in_flight() const;
    // Tests: the request pool, to make its thread starts fail.
    ElasticPool& request_pool_for_testing() { return pool_; }

private:
    void bind(Connection& connection);
    void bind_modern(Connection& connection);
    void bind_tasks(Connection& connection);
    // Whether this request's client speaks the tasks utility (legacy era, 2025-11-25, a backend).
    bool tasks_for(const ClientSession& session, const RequestEra& era) const;
    // tools, logging; resources when a provider serves them; tasks when `with_tasks`.
    json capabilities(bool with_tasks) const;
    // Reads params.task for a tools/call of `name`: nullopt for a plain call; RpcError -32601 for
    // a task asked of a tool that forbids it (or a plain call of one that requires it).
    std::optional<TaskRequest> task_of(const std::string& name, const json& params, bool tasks) const;
    void on_task_request(const ClientSession& session, const std::string& method, const json& params,
                         const jsonrpc::Responder& reply);
    RequestEra era_of(const ClientSession& session, const json& params) const;
    json finish(const RequestEra& era, json result) const;
    json on_initialize(ClientSession& session, const json& params) const;
    json on_discover() const;
    json on_tools_list(const ClientSession& session, const RequestEra& era) const;
    void on_tools_call(const std::shared_ptr<ClientSession>& session, const RequestEra& era, const json& params,
                       const jsonrpc::Responder& reply);
    // A modern tools/call: a new call on its own InputFlow, or a retry resuming a parked one.
    void on_modern_tools_call(const std::shared_ptr<ClientSession>& session, const RequestEra& era,
                              const std::string& name, json arguments, const json& params,
                              const jsonrpc::Responder& reply);
    void bind_resources(Connection& connection);
    json on_resources_list(const json& params) const;
    json on_resources_read(const json& params) const;
    void on_listen(const std::shared_ptr<ClientSession>& session, const json& params, const jsonrpc::Responder& reply);
    void announce_to_listeners();
    void close_listeners();
    bool run_blocking(std::function<void()> work);
    void announce_tools_changed();
    std::vector<std::shared_ptr<Connection>> connections() const;

    ToolRegistry& registry_;
    const ServerOptions options_;
    size_t registry_subscription_ = 0;
    std::atomic<bool> list_changed_pending_{false};
    std::atomic<bool> shutting_down_{false};

    // An open subscriptions/listen: answered only when the server ends it (shutdown).
    struct Listener {
        std::weak_ptr<ClientSession> session;
        jsonrpc::Responder reply;
        bool tools = false;  // toolsListChanged was asked for
    };

    mutable std::mutex mutex_;
    std::vector<std::weak_ptr<Connection>> connections_;  // GUARDED_BY(mutex_)
    std::vector<Listener> listeners_;                     // GUARDED_BY(mutex_)

    std::shared_ptr<TaskBackend> tasks_;  // set once before connect(); null: no tasks
    std::shared_ptr<InputLot> input_lot_;  // 2026-07-28 calls parked on input_required, by requestState

    ElasticPool pool_;  // last: its threads join before the members above go away
};

}  // namespace pymcp::mcp
