// The sqlite tool's facade: checks a call's operation and gate, then runs its request on a
// pooled connection. The parts live beside this file (include/python_mcp/tools/sqlite/):
// request (arguments), location (database names), connection and pool, binder (values),
// execution and transaction (running SQL), result_set (rows to JSON), definition and readme.
#include "python_mcp/tools/sqlite_tool.hpp"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "python_mcp/support/paths.hpp"
#include "python_mcp/tools/sqlite/connection.hpp"
#include "python_mcp/tools/sqlite/definition.hpp"
#include "python_mcp/tools/sqlite/execution.hpp"
#include "python_mcp/tools/sqlite/pool.hpp"
#include "python_mcp/tools/sqlite/readme.hpp"
#include "python_mcp/tools/sqlite/request.hpp"
#include "python_mcp/tools/sqlite/sql_text.hpp"

namespace pymcp::tools {

using mcp::json;
using mcp::ToolError;

namespace {

SqliteToolOptions with_defaults(SqliteToolOptions options) {
    if (options.data_dir.empty()) options.data_dir = default_data_root() / "databases";
    return options;
}

json empty_structured() {
    return json{{"columns", json::array()}, {"rows", json::array()}, {"rows_affected", 0},
                {"last_insert_rowid", 0}, {"truncated", false}};
}

}  // namespace

// Immutable after construction except for the pool table, which is thread-safe.
struct SqliteTool::Impl {
    explicit Impl(SqliteToolOptions o)
        : options(with_defaults(std::move(o))),
          readme(sqlite::build_readme(options)),
          pools(options.data_dir, options.busy_timeout_ms) {}

    const SqliteToolOptions options;
    const std::string readme;
    sqlite::PoolTable pools;
};

namespace {

// Fails before anything is allocated when the library cannot serve several threads.
SqliteToolOptions require_threadsafe(SqliteToolOptions options) {
    if (!sqlite3_threadsafe()) throw std::runtime_error("the SQLite library was built without thread support");
    return options;
}

}  // namespace

SqliteTool::SqliteTool(SqliteToolOptions options)
    : impl_(std::make_unique<Impl>(require_threadsafe(std::move(options)))) {}

SqliteTool::~SqliteTool() = default;

std::string SqliteTool::readme() const { return impl_->readme; }

mcp::ToolDefinition SqliteTool::definition() const { return sqlite::tool_definition(); }

void SqliteTool::register_in(mcp::ToolRegistry& registry) {
    registry.add(definition(), mcp::blocking_handler([this](const json& arguments, mcp::CallContext& context) {
                     return call(arguments, context);
                 }));
}

json SqliteTool::call(const json& arguments, mcp::CallContext& context) {
    ToolInput fields(arguments);
    const json& input = fields.fields();
    if (!input.is_object()) throw ToolError("the arguments must be an object such as {\"sql\": \"SELECT 1\"}");
    const std::string operation = get_string(input, "operation").value_or("execute");
    if (operation == "readme") return mcp::tool_result(impl_->readme, empty_structured());
    if (operation != "execute")
        throw ToolError("unknown operation '" + sqlite::printable(operation) +
                        "': use 'readme' for the documentation, or omit 'operation' to run 'sql'");
    impl_->options.gate.check(input, impl_->readme);

    sqlite::Request request(input);
    // Python code asked for the data to process it; the model's context is what the cap protects.
    const long long max_rows =
        request.max_rows.value_or(context.caller_session().empty() ? kClientDefaultMaxRows : 0);
    const CancellationToken& cancel = context.cancellation();
    if (cancel.cancelled()) sqlite::throw_cancelled();

    const auto started = std::chrono::steady_clock::now();
    sqlite::Lease lease(impl_->pools.pool_for(request.database), cancel);
    sqlite::Execution execution(lease.connection(), request, std::size_t(max_rows));
    json result = execution.run();
    spdlog::debug("sqlite: {} statement(s) on {} in {:.2f} ms", execution.statements(), request.database,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    return result;
}

}  // namespace pymcp::tools
