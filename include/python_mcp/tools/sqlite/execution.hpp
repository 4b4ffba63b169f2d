#pragma once
// Running one call's statements on one connection.

#include <sqlite3.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "python_mcp/support/json.hpp"
#include "python_mcp/tools/sqlite/binder.hpp"
#include "python_mcp/tools/sqlite/connection.hpp"
#include "python_mcp/tools/sqlite/request.hpp"
#include "python_mcp/tools/sqlite/result_set.hpp"
#include "python_mcp/tools/sqlite/transaction.hpp"

namespace pymcp::tools::sqlite {

// A prepared statement, finalized or handed back to the connection's cache when done.
class Statement {
public:
    Statement(Connection& c, sqlite3_stmt* stmt, std::string cache_key)
        : connection_(c), stmt_(stmt), cache_key_(std::move(cache_key)) {}
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    sqlite3_stmt* get() const { return stmt_; }

private:
    Connection& connection_;
    sqlite3_stmt* stmt_;
    std::string cache_key_;  // empty: not cacheable
};

// One call's statements on one connection, in the call's thread. Several statements run in one
// transaction (see Transaction); any failure rolls everything back before the error leaves.
// run() returns the CallToolResult and throws mcp::ToolError (SQL errors, bad values,
// "cancelled"); it may be called once.
class Execution {
public:
    Execution(Connection& c, const Request& request, std::size_t max_rows)
        : connection_(c), db_(c.db), request_(request), max_rows_(max_rows), binder_(request),
          transaction_(c, request.read_only) {}

    json run();
    int statements() const { return statements_; }

private:
    void run_all();
    void run_element(std::size_t element);
    void run_statement(sqlite3_stmt* stmt, std::string_view text, const char* tail, const char* end,
                       std::size_t element);
    void begin_immediate(int number, std::string_view text);
    void collect_rows(sqlite3_stmt* stmt, int number, std::string_view text);
    void step_to_end(sqlite3_stmt* stmt, int number, std::string_view text);
    [[noreturn]] void fail(int number, std::string_view text);

    Connection& connection_;
    sqlite3* db_;
    const Request& request_;
    const std::size_t max_rows_;  // 0: no limit
    Binder binder_;
    Transaction transaction_;
    int statements_ = 0;
    std::optional<ResultSet> result_;
    long long rows_affected_ = 0;
};

}  // namespace pymcp::tools::sqlite
