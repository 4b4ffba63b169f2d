#include "python_mcp/tools/sqlite/execution.hpp"

#include <spdlog/spdlog.h>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/json_text.hpp"
#include "python_mcp/tools/sqlite/sql_text.hpp"

namespace pymcp::tools::sqlite {

namespace {

constexpr std::size_t kCacheableSqlBytes = 4096;

}  // namespace

Statement::~Statement() {
    if (cache_key_.empty()) sqlite3_finalize(stmt_);
    else connection_.keep_statement(cache_key_, stmt_);
}

json Execution::run() {
    sqlite3_set_last_insert_rowid(db_, 0);  // the pooled connection may remember another call's
    try {
        run_all();
    } catch (...) {
        transaction_.rollback_if_open();
        throw;
    }
    return build_call_result(result_, rows_affected_, sqlite3_last_insert_rowid(db_));
}

void Execution::run_all() {
    for (std::size_t i = 0; i < request_.sql.size(); ++i) {
        binder_.start_element(i);
        run_element(i);
        binder_.finish_element();
    }
    if (statements_ == 0) throw mcp::ToolError("'sql' holds no statement (only blanks or comments)");
    binder_.finish();
    transaction_.finish();
}

void Execution::run_element(std::size_t element) {
    const std::string& sql = request_.sql[element];
    const char* const end = sql.data() + sql.size();
    const char* p = skip_blank(sql.data(), end);
    // Repeated single statements (bulk inserts from a loop) skip the parser.
    const bool cacheable = request_.sql.size() == 1 && sql.size() <= kCacheableSqlBytes;
    if (cacheable) {
        if (sqlite3_stmt* cached = connection_.take_statement(sql)) {
            Statement stmt(connection_, cached, sql);
            run_statement(stmt.get(), std::string_view(p, std::size_t(end - p)), end, end, element);
            return;
        }
    }
    while (p < end) {
        sqlite3_stmt* raw = nullptr;
        const char* tail = nullptr;
        int rc = sqlite3_prepare_v2(db_, p, int(end - p), &raw, &tail);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(raw);
            fail(statements_ + 1, std::string_view(p, std::size_t(end - p)));
        }
        if (!raw) break;  // only blanks were left
        const char* next = skip_blank(tail, end);
        bool whole = cacheable && next == end && p == skip_blank(sql.data(), end);
        Statement stmt(connection_, raw, whole ? sql : std::string());
        run_statement(stmt.get(), std::string_view(p, std::size_t(tail - p)), tail, end, element);
        p = next;
    }
}

void Execution::run_statement(sqlite3_stmt* stmt, std::string_view text, const char* tail, const char* end,
                              std::size_t element) {
    const int number = ++statements_;
    if (request_.read_only && !sqlite3_stmt_readonly(stmt))
        throw mcp::ToolError("read_only is set and statement " + std::to_string(number) +
                             " would change the database: " + snippet(text));
    if (number == 1)
        transaction_.open_if_needed(element + 1 < request_.sql.size() || skip_blank(tail, end) != end, text);
    if (transaction_.begins_immediately_instead(text)) return begin_immediate(number, text);
    binder_.bind(stmt, number);
    const long long changes_before = sqlite3_total_changes64(db_);
    if (sqlite3_column_count(stmt) > 0) collect_rows(stmt, number, text);
    else step_to_end(stmt, number, text);
    // sqlite3_changes64 keeps the count of the last INSERT/UPDATE/DELETE, stale after any
    // other statement: trust it only when this statement changed something.
    if (sqlite3_total_changes64(db_) != changes_before) rows_affected_ += sqlite3_changes64(db_);
}

// Runs in place of the user's deferred BEGIN (Transaction::begins_immediately_instead); errors
// name the user's statement.
void Execution::begin_immediate(int number, std::string_view text) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "BEGIN IMMEDIATE", -1, &raw, nullptr) != SQLITE_OK) {
        sqlite3_finalize(raw);
        fail(number, text);
    }
    Statement stmt(connection_, raw, std::string());
    step_to_end(stmt.get(), number, text);
}

void Execution::collect_rows(sqlite3_stmt* stmt, int number, std::string_view text) {
    ResultSet rows(stmt, max_rows_);
    const bool read_only = sqlite3_stmt_readonly(stmt);
    for (;;) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            if (!rows.full()) {
                rows.add_row(stmt);
                continue;
            }
            rows.mark_truncated();
            if (read_only) break;  // nothing left to apply: stop reading
            continue;              // a writing statement must run to its end
        }
        if (rc == SQLITE_DONE) break;
        fail(number, text);
    }
    result_.emplace(std::move(rows));
}

void Execution::step_to_end(sqlite3_stmt* stmt, int number, std::string_view text) {
    for (;;) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) return;
        if (rc != SQLITE_ROW) fail(number, text);
    }
}

void Execution::fail(int number, std::string_view text) {
    if (connection_.cancelled()) throw_cancelled();
    std::string message = sanitize_utf8(sqlite3_errmsg(db_));
    const bool wrapped = transaction_.wrapped();
    std::string where = statements_ > 1 || request_.sql.size() > 1 || wrapped
                            ? "statement " + std::to_string(number) + " (" + snippet(text) + ")"
                            : "'" + snippet(text) + "'";
    std::string undo = wrapped ? "; the transaction was rolled back, nothing was applied" : "";
    spdlog::debug("sqlite: error in {}: {}", where, message);
    throw mcp::ToolError("SQL error in " + where + ": " + message + undo);
}

}  // namespace pymcp::tools::sqlite
