#include "python_mcp/client/downstream.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "python_mcp/client/mcp_client.hpp"
#include "python_mcp/client/subprocess.hpp"
#include "python_mcp/support/time_format.hpp"

namespace pymcp::client {

namespace {

using clock = std::chrono::steady_clock;
using json = pymcp::json;

enum class State { Disabled, Starting, Running, Down, Stopped };

// JSON-RPC error codes for answers to a server's requests (the jsonrpc layer's values).
constexpr int jsonrpc_method_not_found = -32601;
constexpr int jsonrpc_internal_error = -32603;

// How long a request forwarded to our client may wait for its answer (a person may be slow).
constexpr std::chrono::minutes kForwardTimeout{10};

// The longest remaining backoff a call waits out before asking for a restart.
constexpr std::chrono::milliseconds kMaxBackoffWait{1000};

const char* state_name(State s) {
    switch (s) {
        case State::Disabled: return "disabled";
        case State::Starting: return "starting";
        case State::Running: return "running";
        case State::Down: return "down";
        case State::Stopped: return "stopped";
    }
    return "?";
}

std::string quoted_command(const DownstreamServerConfig& c) {
    std::string s = c.command;
    for (const auto& a : c.args) s += " " + a;
    return s;
}

}  // namespace

// One configured server. Shared by the manager, its keeper thread, and the registry entries of
// its tools (so a handler stays valid whatever outlives what).
struct Slot : std::enable_shared_from_this<Slot> {
    DownstreamServerConfig config;
    DownstreamOptions options;
    mcp::ToolRegistry* registry = nullptr;
    std::optional<std::pair<unsigned long, unsigned long>> address_space_limit;  // for the children
    CancellationSource stop;  // cancelled by shutdown(): ends any handshake in progress

    mutable std::mutex mutex;
    std::condition_variable changed;  // any change below
    State state = State::Disabled;                  // GUARDED_BY(mutex)
    std::shared_ptr<McpClient> client;              // GUARDED_BY(mutex)
    uint64_t client_id = 0;                         // GUARDED_BY(mutex); which client `client` is
    bool client_closed = false;                     // GUARDED_BY(mutex); its connection ended
    bool start_requested = false;                   // GUARDED_BY(mutex)
    bool refresh_requested = false;                 // GUARDED_BY(mutex)
    bool stopping = false;                          // GUARDED_BY(mutex)
    std::chrono::milliseconds stop_grace{2000};     // GUARDED_BY(mutex)
    std::string last_error;                         // GUARDED_BY(mutex)
    int failures = 0;                               // GUARDED_BY(mutex); consecutive
    clock::time_point next_attempt{};               // GUARDED_BY(mutex); backoff
    uint64_t attempts = 0;                          // GUARDED_BY(mutex); start attempts finished
    uint64_t starts = 0;                            // GUARDED_BY(mutex); successful starts
    size_t tool_count = 0;                          // GUARDED_BY(mutex)
    pid_t pid = -1;                                 // GUARDED_BY(mutex)
    std::string protocol_version;                   // GUARDED_BY(mutex)
    json server_info;                               // GUARDED_BY(mutex)

    // The calls in flight on this server, newest last, so its requests to us (elicitation,
    // sampling, roots) reach the client of the call they belong to (see forward()).
    std::list<std::pair<uint64_t, mcp::CallContext>> in_flight;  // GUARDED_BY(mutex)
    uint64_t next_call = 0;                                       // GUARDED_BY(mutex)

    // Keeper thread only.
    std::map<std::string, json> registered;  // downstream name -> tool as registered
    std::thread keeper;

    std::string label() const { return "server '" + config.name + "'"; }

    clock::duration backoff(int n) const {
        auto d = std::chrono::duration_cast<clock::duration>(options.backoff_initial);
        for (int i = 1; i < n && d < options.backoff_max; ++i) d *= 2;
        return std::min(d, std::chrono::duration_cast<clock::duration>(options.backoff_max));
    }

    // Requires mutex. Records a failure and schedules the earliest restart.
    void record_failure(const std::string& error) {
        last_error = error;
        ++failures;
        next_attempt = clock::now() + backoff(failures);
    }

    // ---- caller side -------------------------------------------------------------------------

    // The running client, starting (or restarting) the server if it is down; waits at most
    // start_timeout and until `cancel`. Throws mcp::ToolError.
    std::shared_ptr<McpClient> acquire(const CancellationToken& cancel) {
        auto deadline = clock::now() + options.start_timeout;
        auto cancelled = std::make_shared<std::atomic<bool>>(false);
        std::weak_ptr<Slot> weak = weak_from_this();
        CancelRegistration registration = cancel.on_cancel([weak, cancelled] {
            if (auto s = weak.lock()) {
                std::lock_guard lock(s->mutex);
                cancelled->store(true);
                s->changed.notify_all();
            }
        });
        std::shared_ptr<McpClient> result;
        std::string failure;
        {
            std::unique_lock lock(mutex);
            bool waiting_for_attempt = state == State::Starting;
            uint64_t attempts_seen = attempts;
            for (;;) {
                if (stopping || state == State::Stopped) {
                    failure = label() + " is shut down";
                    break;
                }
                if (state == State::Disabled) {
                    failure = label() + " is disabled in the configuration";
                    break;
                }
                if (state == State::Running && client && !client_closed && !client->closed()) {
                    result = client;
                    break;
                }
                if (state == State::Down) {
                    if (waiting_for_attempt && attempts > attempts_seen) {
                        failure = label() + " is not running: " + last_error;
                        break;
                    }
                    if (!waiting_for_attempt) {
                        // A short backoff (a crash just now) is waited out; a long one (a server
                        // that keeps failing) fails the call at once rather than stalling it.
                        if (next_attempt > deadline || next_attempt - clock::now() > kMaxBackoffWait) {
                            failure = label() + " is down (" + last_error + "); the next restart is allowed in " +
                                      seconds_text(next_attempt - clock::now());
                            break;
                        }
                        start_requested = true;
                        waiting_for_attempt = true;
                        attempts_seen = attempts;
                        changed.notify_all();
                    }
                }
                if (state == State::Starting) waiting_for_attempt = true;
                if (cancelled->load() || cancel.cancelled()) {
                    failure = "cancelled";
                    break;
                }
                if (changed.wait_until(lock, deadline) == std::cv_status::timeout && clock::now() >= deadline) {
                    if (state == State::Running && client && !client_closed && !client->closed()) continue;
                    failure = label() + " did not start within " + seconds_text(options.start_timeout);
                    break;
                }
            }
        }
        registration.reset();  // no lock held: the callback takes `mutex`
        if (!result) throw mcp::ToolError(failure);
        return result;
    }

    // Keeps a call in `in_flight` while it lasts.
    class InFlight {
    public:
        InFlight(Slot& slot, const mcp::CallContext& context) : slot_(slot) {
            std::lock_guard lock(slot_.mutex);
            id_ = ++slot_.next_call;
            slot_.in_flight.emplace_back(id_, context);
        }
        ~InFlight() {
            std::lock_guard lock(slot_.mutex);
            slot_.in_flight.remove_if([&](const auto& entry) { return entry.first == id_; });
        }
        InFlight(const InFlight&) = delete;
        InFlight& operator=(const InFlight&) = delete;

    private:
        Slot& slot_;
        uint64_t id_ = 0;
    };

    // A request of the server's (elicitation/create, sampling/createMessage, roots/list), on a
    // thread of its own: sent on to the client of the newest call in flight on this server,
    // when that client declared the capability. stdio carries no link from a server's request to
    // the call it serves; the newest call is the one that usually triggered it (with one client
    // on stdio, every call in flight has the same client anyway). Throws ServerRequestError.
    json forward(const std::string& method, const json& params, const CancellationToken& cancel) {
        std::optional<mcp::CallContext> context;
        {
            std::lock_guard lock(mutex);
            if (!in_flight.empty()) context = in_flight.back().second;
        }
        if (!context || !context->has_client())
            throw ServerRequestError(jsonrpc_method_not_found, "python-mcp forwards " + method +
                                         " to its own client only while a tool call of that client to this server is "
                                         "in flight, and none is");
        const char* needed = method == "roots/list" ? "roots" : method == "sampling/createMessage" ? "sampling" : "elicitation";
        json caps = context->client_capabilities();
        if (!caps.is_object() || !caps.contains(needed))
            throw ServerRequestError(jsonrpc_method_not_found, std::string("python-mcp's client did not declare the '") +
                                                                   needed + "' capability, so it cannot answer " + method);
        // Ends when the server cancels its request, or the call it serves is cancelled.
        CancellationSource both(cancel);
        CancelRegistration link = context->cancellation().on_cancel([both] { both.cancel("the tool call was cancelled"); });
        try {
            return context->ask_client(method, params, kForwardTimeout, both.token());
        } catch (const mcp::ClientRequestError& e) {
            throw ServerRequestError(jsonrpc_internal_error, e.what());
        }
    }

    json call(const std::string& tool, const json& arguments, mcp::CallContext& context) {
        auto c = acquire(context.cancellation());
        InFlight registered_call(*this, context);
        std::string what = "call to '" + config.name + "." + tool + "' failed: ";
        try {
            json result = c->call_tool(tool, arguments, options.call_timeout, context.cancellation(),
                                       [&context](const ProgressUpdate& u) {
                                           context.report_progress(u.progress, u.total, u.message);
                                       });
            {
                std::lock_guard lock(mutex);
                failures = 0;  // it answers: the next failure restarts it at once (after backoff_initial)
            }
            if (!result.contains("content") || !result["content"].is_array()) result["content"] = json::array();
            return result;
        } catch (const ClientError& e) {
            switch (e.kind()) {
                case ClientError::Kind::Cancelled:
                    throw mcp::ToolError("cancelled");
                case ClientError::Kind::Timeout:
                    throw mcp::ToolError(what + e.what());
                case ClientError::Kind::Closed: {
                    bool stopping_now;
                    {
                        std::lock_guard lock(mutex);
                        stopping_now = stopping;
                    }
                    throw mcp::ToolError(what + e.what() + (stopping_now ? "" : "; it is restarted on the next call"));
                }
                case ClientError::Kind::Rpc: {
                    {
                        std::lock_guard lock(mutex);
                        failures = 0;
                    }
                    throw mcp::ToolError(what + label() + " answered with JSON-RPC error " + std::to_string(e.code()) +
                                         ": " + e.what());
                }
                case ClientError::Kind::Protocol:
                    throw mcp::ToolError(what + e.what());
            }
            throw;
        }
    }

    // ---- keeper side -------------------------------------------------------------------------

    mcp::ToolDefinition definition(const std::string& tool, const json& t) const {
        mcp::ToolDefinition d;
        d.name = config.name + "." + tool;
        if (auto it = t.find("title"); it != t.end() && it->is_string()) d.title = *it;
        if (auto it = t.find("description"); it != t.end() && it->is_string()) d.description = *it;
        if (auto it = t.find("inputSchema"); it != t.end() && it->is_object()) d.input_schema = *it;
        if (auto it = t.find("outputSchema"); it != t.end() && it->is_object()) d.output_schema = *it;
        if (auto it = t.find("annotations"); it != t.end() && it->is_object()) d.annotations = *it;
        if (auto it = t.find("icons"); it != t.end() && it->is_array()) d.icons = *it;
        json meta = json::object();
        if (auto it = t.find("_meta"); it != t.end() && it->is_object()) meta = *it;
        meta["server"] = config.name;
        meta["tool"] = tool;
        d.meta = std::move(meta);
        d.exposed = options.expose;
        return d;
    }

    // Brings the registry in line with `tools`: removes what went, adds what is new or changed,
    // leaves the rest alone (no list_changed noise, no window in which a tool is missing), all as
    // one registry update: one lock, one change notification, so 2,000 tools take milliseconds.
    // Exact names, not remove_prefix: server "a" must not take server "a.b"'s tools with it.
    void register_tools(const std::vector<json>& tools) {
        std::map<std::string, json> fresh;  // downstream name -> tool; the last of a repeated name
        std::vector<std::string> order;     // the server's order, which the registry keeps
        for (const auto& t : tools) {
            auto name = t.is_object() ? t.find("name") : t.end();
            if (!t.is_object() || name == t.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
                spdlog::warn("[{}] ignoring a tool without a name: {}", config.name, t.dump().substr(0, 200));
                continue;
            }
            auto [it, added] = fresh.insert_or_assign(name->get<std::string>(), t);
            if (added) order.push_back(it->first);
            else spdlog::warn("[{}] lists tool '{}' twice; using the last", config.name, it->first);
        }
        std::vector<std::string> gone;
        for (const auto& [name, _] : registered)
            if (!fresh.count(name)) gone.push_back(config.name + "." + name);
        std::vector<mcp::ToolRegistry::Addition> changed_tools;
        auto self = shared_from_this();
        for (const auto& name : order) {
            const json& t = fresh[name];
            auto old = registered.find(name);
            if (old != registered.end() && old->second == t) continue;
            changed_tools.push_back({definition(name, t),
                                     mcp::blocking_handler([self, tool = name](const json& arguments,
                                                                               mcp::CallContext& context) {
                                         return self->call(tool, arguments, context);
                                     })});
        }
        registry->update(gone, std::move(changed_tools));
        registered = std::move(fresh);
        std::lock_guard lock(mutex);
        tool_count = registered.size();
    }

    void unregister_tools() {
        std::vector<std::string> names;
        for (const auto& [name, _] : registered) names.push_back(config.name + "." + name);
        registry->update(names, {});
        registered.clear();
        std::lock_guard lock(mutex);
        tool_count = 0;
    }

    // Spawn, handshake, list, register. Returns "" on success, else the error. No lock held.
    std::string start_once() {
        auto began = clock::now();
        auto deadline = began + options.start_timeout;
        spdlog::info("[{}] starting: {}", config.name, quoted_command(config));
        SpawnOptions spawn;
        spawn.command = config.command;
        spawn.args = config.args;
        spawn.env = config.env;
        spawn.cwd = config.cwd;
        spawn.address_space_limit = address_space_limit;
        Subprocess process;
        try {
            process = Subprocess::spawn(spawn);
        } catch (const SpawnError& e) {
            return "cannot start " + label() + ": " + e.what();
        }

        std::weak_ptr<Slot> weak = weak_from_this();
        uint64_t id;
        {
            std::lock_guard lock(mutex);
            id = ++client_id;
        }
        McpClientOptions copts;
        copts.name = config.name;
        copts.max_line_bytes = options.max_message_bytes;
        copts.on_tools_changed = [weak, id] {
            if (auto s = weak.lock()) {
                std::lock_guard lock(s->mutex);
                if (s->client_id != id) return;
                s->refresh_requested = true;
                s->changed.notify_all();
            }
        };
        // We may forward what the server asks of its client (see forward()), so we declare it all:
        // whether our own client can answer is known only per call.
        copts.capabilities = json{{"elicitation", json::object()}, {"roots", json::object()}, {"sampling", json::object()}};
        copts.on_server_request = [weak](const std::string& method, const json& params, const CancellationToken& cancel) {
            auto s = weak.lock();
            if (!s) throw ServerRequestError(jsonrpc_internal_error, "python-mcp is shutting down");
            return s->forward(method, params, cancel);
        };
        copts.on_closed = [weak, id](const std::string& reason) {
            if (auto s = weak.lock()) {
                std::lock_guard lock(s->mutex);
                if (s->client_id != id || !s->client) return;
                s->client_closed = true;
                s->last_error = reason;
                s->changed.notify_all();
            }
        };
        auto c = std::make_shared<McpClient>(std::move(process), std::move(copts));
        {
            std::lock_guard lock(mutex);
            pid = c->pid();
        }
        std::string error;
        std::vector<json> tools;
        try {
            json client_info{{"name", "python-mcp"}, {"title", "python-mcp"}, {"version", PYMCP_VERSION}};
            c->initialize(client_info, deadline, stop.token());
            tools = c->list_tools(deadline, stop.token());
        } catch (const ClientError& e) {
            switch (e.kind()) {
                case ClientError::Kind::Timeout:
                    error = label() + " did not finish starting within " + seconds_text(options.start_timeout);
                    break;
                case ClientError::Kind::Cancelled:
                    error = label() + " was stopped while starting";
                    break;
                case ClientError::Kind::Rpc:
                    error = label() + " failed to start: it answered with JSON-RPC error " + std::to_string(e.code()) +
                            ": " + e.what();
                    break;
                default:
                    error = label() + " failed to start: " + e.what();
            }
        }
        if (!error.empty()) {
            // What the server said on stderr explains most failed starts; a connection that
            // ended has it in its reason already.
            if (error.find("; stderr: ") == std::string::npos) error += stderr_excerpt(c->recent_stderr());
            c->close(std::chrono::milliseconds(500), error);
            std::lock_guard lock(mutex);
            pid = -1;
            return error;
        }
        register_tools(tools);
        {
            std::lock_guard lock(mutex);
            client = c;
            client_closed = c->closed();
            if (client_closed) last_error = c->close_reason();
            protocol_version = c->protocol_version();
            server_info = c->server_info();
        }
        spdlog::info("[{}] ready in {} ms: {} tools, protocol {}, {} {}", config.name,
                     std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count(), tools.size(),
                     c->protocol_version(), c->server_info().value("name", std::string("?")),
                     c->server_info().value("version", std::string("")));
        return {};
    }

    void refresh() {
        std::shared_ptr<McpClient> c;
        {
            std::lock_guard lock(mutex);
            c = client;
        }
        if (!c) return;
        try {
            auto tools = c->list_tools(clock::now() + options.start_timeout, stop.token());
            register_tools(tools);
            spdlog::debug("[{}] tools refreshed: {}", config.name, tools.size());
        } catch (const ClientError& e) {
            spdlog::warn("[{}] refreshing the tool list failed: {}", config.name, e.what());
        }
    }

    void keeper_loop() {
        std::unique_lock lock(mutex);
        for (;;) {
            changed.wait(lock, [&] { return stopping || client_closed || start_requested || refresh_requested; });
            if (stopping) break;
            if (client_closed) {
                // The connection ended: reap the child, mark the server down. The tools stay
                // registered; the next call restarts it.
                auto dead = std::move(client);
                client_closed = false;
                refresh_requested = false;
                pid = -1;
                ++client_id;
                std::string reason = last_error;
                state = State::Down;
                record_failure(reason);
                changed.notify_all();
                lock.unlock();
                spdlog::warn("[{}] down: {}", config.name, reason);
                if (dead) dead->close(std::chrono::milliseconds(1000), reason);
                lock.lock();
                continue;
            }
            if (start_requested) {
                start_requested = false;
                if (state == State::Running) continue;
                if (clock::now() < next_attempt) {
                    changed.wait_until(lock, next_attempt, [&] { return stopping; });
                    if (stopping) break;
                }
                state = State::Starting;
                bool restart = starts > 0 || attempts > 0;
                changed.notify_all();
                lock.unlock();
                if (restart) spdlog::info("[{}] restarting", config.name);
                std::string error = start_once();
                lock.lock();
                ++attempts;
                if (error.empty()) {
                    ++starts;
                    state = State::Running;
                    last_error.clear();
                } else {
                    state = State::Down;
                    record_failure(error);
                    spdlog::error("[{}] {}", config.name, error);
                }
                changed.notify_all();
                continue;
            }
            if (refresh_requested) {
                refresh_requested = false;
                if (state != State::Running) continue;
                lock.unlock();
                refresh();
                lock.lock();
            }
        }
        // Stopping: no new calls reach the server, the ones in flight fail, the child goes.
        state = State::Stopped;
        auto c = std::move(client);
        ++client_id;
        auto grace = stop_grace;
        changed.notify_all();
        lock.unlock();
        unregister_tools();
        if (c) {
            int status = c->close(grace, "python-mcp is shutting down");
            spdlog::debug("[{}] stopped ({})", config.name, describe_wait_status(status));
        }
        lock.lock();
        pid = -1;
        changed.notify_all();
    }
};

struct DownstreamManager::Shared {
    mcp::ToolRegistry* registry = nullptr;
    DownstreamOptions options;
    std::optional<std::pair<unsigned long, unsigned long>> address_space_limit;
    mutable std::shared_mutex mutex;
    std::vector<std::shared_ptr<Slot>> slots;  // GUARDED_BY(mutex)
    bool started = false;                      // GUARDED_BY(mutex)
    bool shut_down = false;                    // GUARDED_BY(mutex)

    std::vector<std::shared_ptr<Slot>> snapshot() const {
        std::shared_lock lock(mutex);
        return slots;
    }

    // The registry found no tool `name`: if it belongs to a configured server that is starting
    // or down, wait for (or ask for) a start; true when the registry should look again. A
    // server that cannot be had (disabled, shut down, failing to start) throws
    // UnknownToolError with the reason, which is what the caller (often Python code) sees.
    bool on_miss(const std::string& name, const CancellationToken& cancel) {
        bool again = false;
        std::string reason;
        for (const auto& s : snapshot()) {
            const std::string prefix = s->config.name + ".";
            if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
            {
                std::lock_guard lock(s->mutex);
                if (s->state == State::Disabled) {
                    reason = s->label() + " is disabled in the configuration";
                    continue;
                }
                if (s->state == State::Stopped || s->stopping) {
                    reason = s->label() + " is shut down";
                    continue;
                }
                if (s->state == State::Running && s->client && !s->client_closed) continue;
            }
            try {
                s->acquire(cancel);
                again = true;
            } catch (const mcp::ToolError& e) {
                spdlog::warn("call to '{}': {}", name, e.what());
                reason = e.what();
            }
        }
        if (!again && !reason.empty()) throw mcp::UnknownToolError("Unknown tool: '" + name + "': " + reason);
        return again;
    }
};

DownstreamManager::DownstreamManager(mcp::ToolRegistry& registry, DownstreamOptions options)
    : shared_(std::make_shared<Shared>()) {
    shared_->registry = &registry;
    shared_->options = options;
    // Children get the address-space limit in force now, before --memory-limit lowers ours.
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_AS, &limit) == 0) shared_->address_space_limit = std::make_pair(limit.rlim_cur, limit.rlim_max);
    std::weak_ptr<Shared> weak = shared_;
    registry.set_miss_handler([weak](const std::string& name, const CancellationToken& cancel) {
        auto shared = weak.lock();
        return shared ? shared->on_miss(name, cancel) : false;
    });
}

DownstreamManager::~DownstreamManager() { shutdown(std::chrono::seconds(2)); }

void DownstreamManager::start(std::vector<DownstreamServerConfig> servers) {
    std::unique_lock lock(shared_->mutex);
    if (shared_->started || shared_->shut_down) {
        spdlog::error("DownstreamManager::start called twice or after shutdown; ignored");
        return;
    }
    shared_->started = true;
    std::set<std::string> names;
    for (auto& config : servers) {
        auto slot = std::make_shared<Slot>();
        slot->options = shared_->options;
        slot->registry = shared_->registry;
        slot->address_space_limit = shared_->address_space_limit;
        bool duplicate = !names.insert(config.name).second;
        slot->config = std::move(config);
        if (duplicate) {
            spdlog::error("downstream server '{}' is configured twice; only the first is used", slot->config.name);
            continue;
        }
        if (shared_->options.expose &&
            slot->config.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
                std::string::npos)
            spdlog::warn("downstream server name '{}' has characters MCP tool names may not contain "
                         "([A-Za-z0-9_.-]); clients may reject its exposed tools",
                         slot->config.name);
        if (slot->config.disabled) {
            slot->state = State::Disabled;
            spdlog::info("[{}] disabled in the configuration", slot->config.name);
        } else {
            slot->state = State::Starting;
            slot->start_requested = true;
            slot->keeper = std::thread([s = slot.get()] { s->keeper_loop(); });
        }
        shared_->slots.push_back(std::move(slot));
    }
}

void DownstreamManager::shutdown(std::chrono::milliseconds grace) {
    std::vector<std::shared_ptr<Slot>> slots;
    {
        std::unique_lock lock(shared_->mutex);
        if (shared_->shut_down) return;
        shared_->shut_down = true;
        slots = shared_->slots;
    }
    auto began = clock::now();
    for (const auto& s : slots) {
        {
            std::lock_guard lock(s->mutex);
            s->stopping = true;
            s->stop_grace = grace;
            if (s->state == State::Disabled) s->state = State::Stopped;
            s->changed.notify_all();
        }
        s->stop.cancel("python-mcp is shutting down");
    }
    for (const auto& s : slots)
        if (s->keeper.joinable()) s->keeper.join();
    if (!slots.empty())
        spdlog::info("downstream servers stopped in {} ms",
                     std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count());
}

json DownstreamManager::status() const {
    json out = json::object();
    for (const auto& s : shared_->snapshot()) {
        std::lock_guard lock(s->mutex);
        json j{{"state", state_name(s->state)},
               {"pid", s->pid > 0 ? json(s->pid) : json()},
               {"tools", s->tool_count},
               {"last_error", s->last_error.empty() ? json() : json(s->last_error)},
               {"restarts", s->starts > 0 ? s->starts - 1 : 0},
               {"failures", s->failures},
               {"command", quoted_command(s->config)},
               {"protocol_version", s->protocol_version.empty() ? json() : json(s->protocol_version)},
               {"server_info", s->server_info}};
        if (s->state == State::Down) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(s->next_attempt - clock::now()).count();
            j["retry_in_ms"] = std::max<long long>(0, left);
        }
        out[s->config.name] = std::move(j);
    }
    return out;
}

bool DownstreamManager::wait_started(std::chrono::milliseconds timeout) const {
    auto deadline = clock::now() + timeout;
    for (const auto& s : shared_->snapshot()) {
        std::unique_lock lock(s->mutex);
        if (s->state == State::Disabled) continue;
        if (!s->changed.wait_until(lock, deadline, [&] { return s->attempts > 0 || s->state == State::Stopped; }))
            return false;
    }
    return true;
}

}  // namespace pymcp::client
