#pragma once
// The fields of one sqlite `execute` call, checked.

#include <optional>
#include <string>
#include <vector>

#include "python_mcp/support/json.hpp"

namespace pymcp::tools::sqlite {

// Built in place and never moved: statements bind pointers into `input`, which must outlive it.
// The constructor throws mcp::ToolError for a missing or ill-typed field.
struct Request {
    explicit Request(const json& fields);
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    const json& input;             // the call's fields: statements bind their strings without copying
    std::vector<std::string> sql;  // one entry per list element (each may hold several statements)
    bool sql_is_list = false;      // `sql` was given as a list (even of one string)
    const json* params = nullptr;  // positional values: flat, or one list per `sql` element
    bool params_per_element = false;
    const json* bindings = nullptr;  // named values
    std::string database = ":memory:";
    std::optional<long long> max_rows;
    bool read_only = false;

private:
    void read_sql();
    void read_values();
};

}  // namespace pymcp::tools::sqlite
