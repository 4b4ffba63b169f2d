#pragma once
// Binding a call's values to its statements' placeholders.

#include <sqlite3.h>

#include <cstddef>
#include <string>

#include "python_mcp/tools/sqlite/request.hpp"

namespace pymcp::tools::sqlite {

// Hands each statement its values: positional ones in order from `params` (flat: the statements
// take them one after another; per element: each `sql` element has its own list), named ones
// from `bindings` by name, with or without the :, @ or $ prefix. One call's thread uses it; the
// request must outlive the statements it binds (strings are bound without copying). Every
// method throws mcp::ToolError when values are missing, left over or cannot be bound.
class Binder {
public:
    explicit Binder(const Request& request) : request_(request) {}

    void start_element(std::size_t element);
    void finish_element();  // per-element values: all used
    void finish();          // flat values: all used
    // `number` is the statement's 1-based number in the call, for messages.
    void bind(sqlite3_stmt* stmt, int number);

private:
    void bind_positional(sqlite3_stmt* stmt, int number, int needed);
    void bind_named(sqlite3_stmt* stmt, int number, int count);
    const json* lookup(const char* name) const;
    void check_all_used(const std::string& what) const;
    void bind_value(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which);
    int bind_structured(sqlite3_stmt* stmt, int i, const json& v, int number, const std::string& which);

    const Request& request_;
    const json* positional_ = nullptr;
    std::size_t next_ = 0;
    std::size_t element_ = 0;
};

}  // namespace pymcp::tools::sqlite
