#include "python_mcp/tools/sqlite/transaction.hpp"

#include <spdlog/spdlog.h>

#include <string>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/json_text.hpp"
#include "python_mcp/tools/sqlite/sql_text.hpp"

namespace pymcp::tools::sqlite {

void Transaction::open_if_needed(bool several, std::string_view first_statement) {
    const char* p = first_statement.data();
    if (!several || starts_with_keyword(p, p + first_statement.size(), "BEGIN")) return;
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads first and
    // writes later can fail with SQLITE_BUSY_SNAPSHOT under WAL, with no busy wait.
    exec_control(read_only_ ? "BEGIN" : "BEGIN IMMEDIATE");
    wrapped_ = true;
}

void Transaction::finish() {
    if (connection_.cancelled()) throw_cancelled();
    if (wrapped_ && !sqlite3_get_autocommit(connection_.db)) exec_control("COMMIT");
    if (!sqlite3_get_autocommit(connection_.db))
        throw mcp::ToolError("the SQL left a transaction open (BEGIN without COMMIT), so it was rolled back; "
                             "each call must finish the transactions it starts");
}

// In WAL mode a deferred transaction that has read and then writes must upgrade its read lock,
// and SQLite answers SQLITE_BUSY (or SQLITE_BUSY_SNAPSHOT) at once when another connection
// writes or has written since: the busy handler is not called for an upgrade. A user's own
// `BEGIN; SELECT ...; UPDATE ...; COMMIT` then failed within milliseconds with "database is
// locked" whenever two sessions wrote one file. BEGIN IMMEDIATE takes the write lock first,
// through the busy handler (the 5 s wait the readme promises), so the transaction cannot fail at
// an upgrade. It is what the tool's own transactions use; a read-only call keeps the plain BEGIN
// (it cannot write, and its readers must not wait for writers). Retrying a user's transaction on
// SQLITE_BUSY was the other way: it re-runs statements whose rows the caller sees, and under
// contention the retries can starve each other.
bool Transaction::begins_immediately_instead(std::string_view statement) const {
    if (read_only_) return false;
    const char* p = statement.data();
    const char* const end = p + statement.size();
    if (!starts_with_keyword(p, end, "BEGIN")) return false;
    p = skip_blank(p + 5, end);
    return !starts_with_keyword(p, end, "IMMEDIATE") && !starts_with_keyword(p, end, "EXCLUSIVE");
}

void Transaction::rollback_if_open() noexcept {
    connection_.cancel = nullptr;  // a cancelled call's ROLLBACK must not be interrupted too
    if (sqlite3_get_autocommit(connection_.db)) return;
    char* error = nullptr;
    if (sqlite3_exec(connection_.db, "ROLLBACK", nullptr, nullptr, &error) != SQLITE_OK)
        spdlog::warn("sqlite: ROLLBACK failed: {}", error ? error : "?");
    sqlite3_free(error);
}

void Transaction::exec_control(const char* sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(connection_.db, sql, nullptr, nullptr, &error);
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    if (rc == SQLITE_OK) return;
    if (connection_.cancelled()) throw_cancelled();
    throw mcp::ToolError(std::string(sql) + " failed: " + sanitize_utf8(message));
}

}  // namespace pymcp::tools::sqlite
