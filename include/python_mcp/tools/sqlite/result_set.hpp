#pragma once
// Rows to JSON, and the CallToolResult of a call.

#include <sqlite3.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/support/json.hpp"

namespace pymcp::tools::sqlite {

// The rows of one statement, written straight into both result forms as they are stepped: the
// JSON text of row objects (content[0].text) and the arrays of structuredContent. Going through
// a json object per row and dump() would cost several times more. One call's thread uses it.
class ResultSet {
public:
    ResultSet(sqlite3_stmt* stmt, std::size_t limit);  // limit 0: no limit

    bool full() const { return limit_ && count_ >= limit_; }
    void mark_truncated() { truncated_ = true; }
    bool truncated() const { return truncated_; }
    std::size_t count() const { return count_; }

    void add_row(sqlite3_stmt* stmt);
    std::string take_text();
    json take_rows() { return std::move(rows_); }
    json take_columns();

private:
    json read_cell(sqlite3_stmt* stmt, int c);

    std::size_t limit_;
    std::vector<std::string> keys_;  // `"name":` ready to paste, with the comma after the first
    std::vector<std::string> columns_;
    std::string text_;
    json rows_;
    std::size_t count_ = 0;
    bool truncated_ = false;
};

// The CallToolResult: the rows of `rows` when a statement returned rows, else the counts.
json build_call_result(std::optional<ResultSet>& rows, long long rows_affected, long long last_insert_rowid);

}  // namespace pymcp::tools::sqlite
