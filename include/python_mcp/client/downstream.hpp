#pragma once
// The downstream MCP servers: started as child processes, their tools registered in the tool
// registry as "<server>.<tool>", calls forwarded to them, crashes noticed and restarted on the
// next call, everything stopped and reaped at shutdown.
//
// Threads: one keeper thread per enabled server, for the manager's whole life, does everything
// that changes a server: spawning (so PR_SET_PDEATHSIG is tied to a thread that outlives the
// child), the handshake, tools/list, registering and unregistering its tools, restarts (after the
// backoff) when a caller asks, refreshing on notifications/tools/list_changed, reaping a child
// that died, and the final stop. Each McpClient adds a reader and a stderr thread. Tool handlers
// and the registry's miss handler run on callers' threads: they only wait (bounded by
// start_timeout and the caller's cancellation) for a keeper to bring the server up, then talk to
// its client directly, so calls to one server run concurrently. status() may be called from any
// thread. start() and shutdown() are for the owner's thread.
// Lock order: a server's mutex is taken before nothing else; it is never held while calling the
// registry, a client's request methods or close(). The registry may outlive the manager: its
// entries and the miss handler hold only shared server state, and answer "shut down" after
// shutdown().
// Throws: nothing from this interface except std::bad_alloc; tool handlers throw mcp::ToolError.

#include "python_mcp/support/json.hpp"

#include <chrono>
#include <memory>
#include <vector>

#include "python_mcp/client/server_config.hpp"
#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::client {

struct DownstreamOptions {
    bool expose = false;                               // list the tools to our own client too
    std::chrono::milliseconds call_timeout{120000};    // per tools/call
    std::chrono::milliseconds start_timeout{30000};    // spawn to tools listed; also how long a call waits for a start
    std::chrono::milliseconds backoff_initial{500};    // delay before the restart after the first failure
    std::chrono::milliseconds backoff_max{30000};      // doubling up to this
    size_t max_message_bytes = 64u << 20;              // a longer line from a server breaks its connection
};

class DownstreamManager {
public:
    // Installs the registry's miss handler (its only slot). Records the address-space limit
    // (RLIMIT_AS) in force now: children get it back even if python-mcp lowers its own later
    // (--memory-limit), since Node cannot start under a few hundred MiB. Construct it before
    // lowering the limit, and lower only the soft limit, so the children may raise theirs.
    DownstreamManager(mcp::ToolRegistry& registry, DownstreamOptions options);
    ~DownstreamManager();  // shutdown(2 s) unless done
    DownstreamManager(const DownstreamManager&) = delete;
    DownstreamManager& operator=(const DownstreamManager&) = delete;

    // Returns at once; enabled servers start in the background. Call once. Disabled servers and
    // duplicate names show in status() but never start.
    void start(std::vector<DownstreamServerConfig> servers);
    // Unregisters every downstream tool, fails calls in flight, then stops all children at once:
    // stdin closed, `grace` later SIGTERM to each process group, `grace` later SIGKILL; reaps them
    // all and joins every thread. Takes at most about 2 x grace. Idempotent.
    void shutdown(std::chrono::milliseconds grace);

    // {"<server>": {"state": "starting|running|down|disabled|stopped", "pid": int|null,
    //  "tools": n, "last_error": str|null, "restarts": n, "failures": n, "command": str,
    //  "protocol_version": str|null, "server_info": {...}|null,
    //  "retry_in_ms": n (only when down: how long until a restart is allowed)}}
    pymcp::json status() const;
    // Waits until every enabled server has finished its first start attempt (up or failed);
    // false on time-out.
    bool wait_started(std::chrono::milliseconds timeout) const;

    struct Shared;

private:
    std::shared_ptr<Shared> shared_;
};

}  // namespace pymcp::client
