#pragma once
// The transaction around one call's statements.

#include <string_view>

#include "python_mcp/tools/sqlite/connection.hpp"

namespace pymcp::tools::sqlite {

// Several statements in one call run in one transaction that this class opens and commits,
// unless the SQL opens its own with BEGIN; either way a call must end every transaction it
// starts, and any failure rolls everything back. One call's thread uses it. open_if_needed()
// and finish() throw mcp::ToolError (SQLite's message, or "cancelled").
class Transaction {
public:
    Transaction(Connection& c, bool read_only) : connection_(c), read_only_(read_only) {}

    // Before the call's first statement. `several`: more statements follow it.
    void open_if_needed(bool several, std::string_view first_statement);
    // After the last statement: commits what open_if_needed() opened; throws when the SQL left
    // its own transaction open (the caller then rolls it back).
    void finish();
    // True when `statement` is the user's own BEGIN or BEGIN DEFERRED and the call may write:
    // the caller runs BEGIN IMMEDIATE in its place (see the .cpp for why).
    bool begins_immediately_instead(std::string_view statement) const;
    void rollback_if_open() noexcept;
    // True when this class opened the transaction (messages say it was rolled back).
    bool wrapped() const { return wrapped_; }

private:
    void exec_control(const char* sql);

    Connection& connection_;
    const bool read_only_;
    bool wrapped_ = false;
};

}  // namespace pymcp::tools::sqlite
