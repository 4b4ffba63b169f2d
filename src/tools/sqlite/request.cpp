#include "python_mcp/tools/sqlite/request.hpp"

#include <algorithm>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace pymcp::tools::sqlite {

using mcp::ToolError;

namespace {

bool is_list_of_lists(const json& params, std::size_t elements) {
    if (elements < 2 || !params.is_array() || params.size() != elements) return false;
    return std::all_of(params.begin(), params.end(), [](const json& p) { return p.is_array() || p.is_null(); });
}

}  // namespace

Request::Request(const json& fields) : input(fields) {
    read_sql();
    read_values();
    if (auto db = get_string(input, "database")) database = *db;
    max_rows = get_integer(input, "max_rows");
    if (max_rows && *max_rows < 0) throw ToolError("'max_rows' must be 0 (no limit) or more");
    read_only = get_bool(input, "read_only").value_or(false);
}

void Request::read_sql() {
    auto it = input.find("sql");
    if (it == input.end() || it->is_null())
        throw ToolError("'sql' is required: a statement, or a list of statements run in one transaction "
                        "(operation 'readme' explains the tool)");
    if (it->is_string()) {
        sql.push_back(it->get<std::string>());
    } else if (it->is_array() && !it->empty()) {
        for (std::size_t i = 0; i < it->size(); ++i) {
            if (!(*it)[i].is_string()) throw ToolError("'sql' item " + std::to_string(i) + " must be a string");
            sql.push_back((*it)[i].get<std::string>());
        }
    } else {
        throw ToolError("'sql' must be a string or a non-empty list of strings");
    }
}

void Request::read_values() {
    auto p = input.find("params");
    auto b = input.find("bindings");
    if (b != input.end() && !b->is_null()) {
        if (!b->is_object()) throw ToolError("'bindings' must be an object of named values, e.g. {\"name\": 1}");
        bindings = &*b;
    }
    if (p == input.end() || p->is_null()) return;
    if (p->is_object()) {
        // Named values given as `params` (Python's sqlite3 takes a dict there too).
        if (bindings) throw ToolError("named values go in 'bindings' or in 'params', not both");
        bindings = &*p;
    } else if (p->is_array()) {
        params = &*p;
        params_per_element = is_list_of_lists(*p, sql.size());
    } else {
        throw ToolError("'params' must be a list of values (or an object of named values)");
    }
}

}  // namespace pymcp::tools::sqlite
