#include "python_mcp/tools/sqlite/request.hpp"

#include <algorithm>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace pymcp::tools::sqlite {

using mcp::ToolError;

namespace {

bool is_list_or_null(const json& p) { return p.is_array() || p.is_null(); }

// With a list of SQL strings, `params` whose items are all lists (null for none) holds one list
// per string, also for a list of one string ([["x", 1]] for ["SELECT ?, ?"]). Values that are
// not all lists are flat, as for a single string. Only nulls: per string when the counts match
// (older callers wrote [null, null]), else flat ([null] binds one NULL).
bool per_element_params(const json& params, std::size_t elements) {
    if (params.empty() || !std::all_of(params.begin(), params.end(), is_list_or_null)) return false;
    const bool any_list = std::any_of(params.begin(), params.end(), [](const json& p) { return p.is_array(); });
    if (!any_list) return elements >= 2 && params.size() == elements;
    if (params.size() != elements)
        throw ToolError("'params' is a list of lists, one list per 'sql' item, but it has " +
                        std::to_string(params.size()) + " list(s) for " + std::to_string(elements) +
                        " 'sql' item(s). Give one list (or null) per item, or flat values that the statements take in order.");
    return true;
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
        sql_is_list = true;
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
        // Per string only when `sql` is a list: a single string's values are always flat.
        params_per_element = sql_is_list && per_element_params(*p, sql.size());
    } else {
        throw ToolError("'params' must be a list of values (or an object of named values)");
    }
}

}  // namespace pymcp::tools::sqlite
