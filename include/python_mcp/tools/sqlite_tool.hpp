#pragma once
// The built-in `sqlite` tool: SQL on the system SQLite library, callable by the MCP client and by
// Python code (mcp.call) through the one tool registry. readme() is the user-facing manual.

#include <filesystem>
#include <memory>
#include <string>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace pymcp::tools {

struct SqliteToolOptions {
    std::filesystem::path data_dir;  // relative database names live here; created when missing
    UnlockGate gate;
    int busy_timeout_ms = 5000;  // how long a statement waits for another connection's lock
};

// One instance per server. Runs SQL for any number of threads at once (protocol workers, Python
// sessions calling mcp.call). Connections are cached per database file in small pools (WAL mode,
// so readers and one writer proceed together); the shared `:memory:` database is one connection
// that calls take in turn. A connection belongs to one call at a time and never runs SQL with a
// lock of ours held.
// Lock order: the table of pools, released before any pool's own mutex; nothing else nests.
// call() throws mcp::ToolError for everything the caller should read (bad arguments, SQL errors,
// cancellation: "cancelled"); other exceptions mean a bug or std::bad_alloc. The constructor
// throws std::runtime_error when the SQLite library was built without thread support.
// The tool must outlive every call in flight: register_in() hands the registry a handler that
// points at it.
class SqliteTool {
public:
    // Rows a call straight from the client returns when it names no max_rows: enough to look at,
    // small enough to keep the model's context. Calls from Python code get every row.
    static constexpr long long kClientDefaultMaxRows = 1000;

    explicit SqliteTool(SqliteToolOptions options);
    ~SqliteTool();
    SqliteTool(const SqliteTool&) = delete;
    SqliteTool& operator=(const SqliteTool&) = delete;

    // name "sqlite", description, inputSchema, outputSchema, annotations.
    mcp::ToolDefinition definition() const;
    // Returns a CallToolResult; throws mcp::ToolError (see above).
    mcp::json call(const mcp::json& arguments, mcp::CallContext& context);
    void register_in(mcp::ToolRegistry& registry);
    // The tool's full documentation (also what operation "readme" returns).
    std::string readme() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pymcp::tools
