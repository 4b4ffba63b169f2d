#pragma once
// The MCP server's protocol core: lifecycle, version negotiation, the method table, concurrent
// tool calls with cancellation, batches (2025-03-26 only) and notifications to the client.
//
// Threads: handle_line() is called by the one reader thread and never waits on a tool; tools/call
// runs on a growing pool of request threads; responses and notifications go to the MessageSink
// (thread-safe) from any of them. Lock order: mutex_ is a leaf (never held while calling a tool,
// the sink or the registry). Every request gets exactly one answer, except one that is cancelled.
// Does not throw out of handle_line(): every failure becomes a JSON-RPC error or a log line.

#include "python_mcp/support/json.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/jsonrpc/message_writer.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/elastic_pool.hpp"

namespace pymcp::mcp {

// The revisions this server speaks, newest first.
extern const char* const kSupportedProtocolVersions[4];

struct ServerOptions {
    std::string name = "python-mcp";
    std::string title = "Python (embedded CPython with persistent sessions)";
    std::string version = PYMCP_VERSION;
    std::string instructions;
    size_t max_request_threads = 512;
    jsonrpc::ParseLimits parse_limits;
};

class Server {
public:
    Server(ToolRegistry& registry, jsonrpc::MessageSink& sink, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void handle_line(std::string_view line);
    // The reader skipped a line longer than `limit` bytes; `prefix` is its start (the answer
    // carries the request's id when the prefix shows it).
    void handle_overlong_line(size_t limit, std::string_view prefix = {});

    // Cancels every request in flight (they get no answer) and refuses new tool calls.
    void begin_shutdown();
    // Waits until no tool call is running; false on time-out.
    bool wait_idle(std::chrono::milliseconds timeout);

    std::string protocol_version() const;
    bool initialized() const { return initialized_.load(); }
    size_t in_flight() const;
    // Tests: the request pool, to make its thread starts fail.
    ElasticPool& request_pool_for_testing() { return pool_; }

private:
    class Channel;
    class Batch;
    using Reply = std::function<void(json)>;  // null: no answer (cancelled)

    void handle_message(const json& message, const Reply& reply);
    void handle_request(const json& message, const Reply& reply);
    void handle_notification(const json& message);
    void handle_batch(const json& batch);

    json on_initialize(const json& params);
    json on_tools_list(const json& params) const;
    json on_set_level(const json& params);
    void start_tool_call(const json& id, const json& params, const Reply& reply);

    void send(const json& message);

    ToolRegistry& registry_;
    jsonrpc::MessageSink& sink_;
    const ServerOptions options_;
    std::shared_ptr<Channel> channel_;
    size_t registry_subscription_ = 0;

    std::atomic<bool> initialized_{false};
    std::atomic<bool> client_ready_{false};  // notifications/initialized received
    std::atomic<bool> shutting_down_{false};
    std::atomic<bool> list_changed_pending_{false};

    struct InFlight {
        uint64_t cookie;
        CancellationSource cancel;
    };
    mutable std::mutex mutex_;
    std::condition_variable idle_;
    std::string protocol_version_;              // GUARDED_BY(mutex_)
    std::map<std::string, InFlight> in_flight_;  // GUARDED_BY(mutex_), by id_key
    uint64_t next_cookie_ = 1;                   // GUARDED_BY(mutex_)
    size_t running_calls_ = 0;                   // GUARDED_BY(mutex_)

    ElasticPool pool_;  // last: its threads join before the members above go away
};

}  // namespace pymcp::mcp
