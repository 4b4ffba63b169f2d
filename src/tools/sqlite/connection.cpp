#include "python_mcp/tools/sqlite/connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/sqlite/sql_text.hpp"

namespace pymcp::tools::sqlite {

namespace {

constexpr std::size_t kStatementCacheSize = 64;  // per connection; whole single-statement SQL only
constexpr int kProgressEveryOps = 1000;          // VM instructions between cancellation checks

// Waits for another connection's lock in short sleeps that end at once when the call is
// cancelled (sqlite3_busy_timeout would sleep through a cancellation).
int on_busy(void* arg, int attempt) {
    auto* c = static_cast<Connection*>(arg);
    if (attempt == 0) c->busy_waited_ms = 0;
    int left = c->busy_timeout_ms - c->busy_waited_ms;
    if (left <= 0) return 0;
    int delay = std::min({1 << std::min(attempt, 4), 20, left});
    bool cancelled = false;
    if (c->cancel) cancelled = c->cancel->wait_for(std::chrono::milliseconds(delay));
    else std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    c->busy_waited_ms += delay;
    return cancelled ? 0 : 1;
}

int on_progress(void* arg) { return static_cast<Connection*>(arg)->cancelled() ? 1 : 0; }

void run_pragma(sqlite3* db, const char* sql, const std::string& path) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK)
        spdlog::debug("sqlite: {} failed on {}: {}", sql, path, error ? error : "?");
    sqlite3_free(error);
}

}  // namespace

void throw_cancelled() { throw mcp::ToolError("cancelled"); }

Connection::~Connection() {
    drop_statements();
    sqlite3_close_v2(db);
}

void Connection::drop_statements() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    statements.clear();
}

sqlite3_stmt* Connection::take_statement(const std::string& sql) {
    auto it = statements.find(sql);
    if (it == statements.end()) return nullptr;
    sqlite3_stmt* stmt = it->second;
    statements.erase(it);
    return stmt;
}

void Connection::keep_statement(const std::string& sql, sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);  // drops the SQLITE_STATIC pointers into the finished request
    if (statements.size() >= kStatementCacheSize) drop_statements();
    if (!statements.emplace(sql, stmt).second) sqlite3_finalize(stmt);
}

std::unique_ptr<Connection> open_connection(const std::string& path, int flags, bool wal, int busy_timeout_ms) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close_v2(db);
        throw mcp::ToolError("cannot open database '" + printable(path) + "': " + message);
    }
    auto c = std::make_unique<Connection>();
    c->db = db;
    c->busy_timeout_ms = busy_timeout_ms;
    sqlite3_extended_result_codes(db, 1);
    // Keeps SQL from corrupting the file on purpose (writable_schema and the like).
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, static_cast<int*>(nullptr));
    sqlite3_busy_handler(db, &on_busy, c.get());
    sqlite3_progress_handler(db, kProgressEveryOps, &on_progress, c.get());
    if (wal) {
        // WAL lets readers run beside the one writer; NORMAL sync is safe with WAL (a power cut
        // may lose the last commits, never corrupts) and spares an fsync per call.
        run_pragma(db, "PRAGMA journal_mode=WAL", path);
        run_pragma(db, "PRAGMA synchronous=NORMAL", path);
    }
    spdlog::debug("sqlite: opened a connection to {}", path);
    return c;
}

}  // namespace pymcp::tools::sqlite
