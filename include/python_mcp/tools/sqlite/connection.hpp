#pragma once
// One SQLite connection of the sqlite tool, with its statement cache and the handlers that make
// waits and long statements cancellable.

#include <sqlite3.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "python_mcp/support/cancellation.hpp"

namespace pymcp::tools::sqlite {

// Throws mcp::ToolError("cancelled"): what every cancelled call reports.
[[noreturn]] void throw_cancelled();

// One connection and what a call needs on it. Used by one thread at a time (a Pool hands it
// out); its busy and progress handlers run on that thread, inside sqlite3_step. Not copyable:
// the handlers hold its address.
struct Connection {
    sqlite3* db = nullptr;
    int busy_timeout_ms = 5000;
    int busy_waited_ms = 0;
    const CancellationToken* cancel = nullptr;  // the running call's token; null between calls
    std::unordered_map<std::string, sqlite3_stmt*> statements;  // idle cached statements by SQL

    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    bool cancelled() const { return cancel && cancel->cancelled(); }

    void drop_statements();
    // The cached statement for exactly this SQL, taken out of the cache; null when none.
    sqlite3_stmt* take_statement(const std::string& sql);
    // Resets `stmt` and caches it (the cache is emptied when full).
    void keep_statement(const std::string& sql, sqlite3_stmt* stmt);
};

// Opens and configures a connection (busy and progress handlers, defensive mode, WAL when
// `wal`). Throws mcp::ToolError when the database cannot be opened.
std::unique_ptr<Connection> open_connection(const std::string& path, int flags, bool wal, int busy_timeout_ms);

}  // namespace pymcp::tools::sqlite
