#include "python_mcp/tools/sqlite/binder.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/sqlite/base64.hpp"

namespace pymcp::tools::sqlite {

using mcp::ToolError;

void Binder::start_element(std::size_t element) {
    if (request_.params_per_element) {
        const json& list = (*request_.params)[element];
        positional_ = list.is_null() ? nullptr : &list;
        next_ = 0;
    } else if (element == 0) {
        positional_ = request_.params;
    }
    element_ = element;
}

void Binder::finish_element() {
    if (request_.params_per_element) check_all_used("params[" + std::to_string(element_) + "]");
}

void Binder::finish() {
    if (!request_.params_per_element) check_all_used("'params'");
}

void Binder::bind(sqlite3_stmt* stmt, int number) {
    const int count = sqlite3_bind_parameter_count(stmt);
    int positional = 0;
    bool named = false;
    for (int i = 1; i <= count; ++i) {
        const char* name = sqlite3_bind_parameter_name(stmt, i);
        // Unnamed slots below a ?NNN are positional too: SQLite numbers them.
        if (!name || name[0] == '?') positional = i;
        else named = true;
    }
    if (positional && named)
        throw ToolError("statement " + std::to_string(number) +
                        " mixes positional (?) and named (:name) parameters; use one kind");
    if (positional) bind_positional(stmt, number, positional);
    if (named) bind_named(stmt, number, count);
}

void Binder::bind_positional(sqlite3_stmt* stmt, int number, int needed) {
    std::size_t have = positional_ ? positional_->size() - std::min(next_, positional_->size()) : 0;
    if (have < std::size_t(needed))
        throw ToolError("statement " + std::to_string(number) + " has " + std::to_string(needed) +
                        " positional parameter(s) but " + (have ? "only " : "") + std::to_string(have) +
                        " value(s) are left in 'params'");
    for (int i = 1; i <= needed; ++i)
        bind_value(stmt, i, (*positional_)[next_ + i - 1], number, "parameter " + std::to_string(i));
    next_ += std::size_t(needed);
}

void Binder::bind_named(sqlite3_stmt* stmt, int number, int count) {
    for (int i = 1; i <= count; ++i) {
        const char* name = sqlite3_bind_parameter_name(stmt, i);
        const json* value = lookup(name);
        if (!value)
            throw ToolError("statement " + std::to_string(number) + " needs a value for " + name + ": add \"" +
                            (name + 1) + "\" to 'bindings'");
        bind_value(stmt, i, *value, number, name);
    }
}

const json* Binder::lookup(const char* name) const {
    if (!request_.bindings) return nullptr;
    auto it = request_.bindings->find(name);
    if (it == request_.bindings->end()) it = request_.bindings->find(name + 1);
    return it == request_.bindings->end() ? nullptr : &*it;
}

void Binder::check_all_used(const std::string& what) const {
    if (!positional_ || next_ >= positional_->size()) return;
    throw ToolError(what + " has " + std::to_string(positional_->size()) + " value(s) but the SQL uses only " +
                    std::to_string(next_));
}

void Binder::bind_value(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which) {
    int rc;
    switch (v.type()) {
        case json::value_t::null: rc = sqlite3_bind_null(stmt, i); break;
        case json::value_t::boolean: rc = sqlite3_bind_int64(stmt, i, v.get<bool>() ? 1 : 0); break;
        case json::value_t::number_integer: rc = sqlite3_bind_int64(stmt, i, v.get<int64_t>()); break;
        case json::value_t::number_unsigned: {
            uint64_t u = v.get<uint64_t>();
            rc = u <= uint64_t(INT64_MAX) ? sqlite3_bind_int64(stmt, i, int64_t(u))
                                          : sqlite3_bind_double(stmt, i, double(u));
            break;
        }
        case json::value_t::number_float: rc = sqlite3_bind_double(stmt, i, v.get<double>()); break;
        case json::value_t::string: {
            // The request outlives the statement's use, and keep_statement() clears bindings.
            const auto& s = v.get_ref<const std::string&>();
            rc = sqlite3_bind_text64(stmt, i, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
            break;
        }
        default: rc = bind_structured(stmt, i, v, number, which);
    }
    if (rc != SQLITE_OK)
        throw ToolError("statement " + std::to_string(number) + ": cannot bind " + which + ": " +
                        sqlite3_errmsg(sqlite3_db_handle(stmt)));
}

// {"$blob": "<base64>"} is a BLOB; any other object or list is bound as its JSON text, ready
// for SQLite's JSON functions.
int Binder::bind_structured(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which) {
    if (v.is_object() && v.size() == 1 && v.contains("$blob")) {
        const json& b = v["$blob"];
        std::optional<std::string> bytes =
            b.is_string() ? decode_base64(b.get_ref<const std::string&>()) : std::nullopt;
        if (!bytes)
            throw ToolError("statement " + std::to_string(number) + ": " + which +
                            " has a \"$blob\" that is not base64 text");
        return sqlite3_bind_blob64(stmt, i, bytes->data(), bytes->size(), SQLITE_TRANSIENT);
    }
    std::string text = v.dump();
    return sqlite3_bind_text64(stmt, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

}  // namespace pymcp::tools::sqlite
