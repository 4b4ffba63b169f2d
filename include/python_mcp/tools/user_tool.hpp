#pragma once
// The built-in `user` tool: asks the person behind the MCP client, through elicitation
// (elicitation/create, form mode). Operations after the original tool: show_popup (a message the
// user acknowledges), collect_api_key (one string field) and ask (a form the caller describes).
// Where the client cannot elicit, show_popup returns its text as content and says it was not
// shown; the other operations fail with a result saying the client cannot ask the user.
//
// Stateless after construction: any number of threads may call at once. Each call blocks its
// thread until the user answers, the call's `timeout` passes or the call is cancelled.
// call() throws mcp::ToolError for everything the caller should read (bad arguments, a client
// that cannot ask, a declined API key, a time-out, "cancelled"); other exceptions mean a bug or
// std::bad_alloc. The tool must outlive every call in flight (register_in() captures `this`).

#include <chrono>
#include <string>
#include <string_view>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_args.hpp"

namespace pymcp::tools {

struct UserToolOptions {
    UnlockGate gate;
    // A person answers slowly: the default wait for an answer, and the most a call may ask for.
    std::chrono::milliseconds default_timeout{std::chrono::seconds(300)};
    std::chrono::milliseconds max_timeout{std::chrono::hours(1)};
};

class UserTool {
public:
    explicit UserTool(UserToolOptions options);

    // name "user", description, inputSchema, annotations.
    mcp::ToolDefinition definition() const;
    // Returns a CallToolResult; throws mcp::ToolError (see above).
    mcp::json call(const mcp::json& arguments, mcp::CallContext& context) const;
    void register_in(mcp::ToolRegistry& registry);
    // The tool's documentation (also what operation "readme" returns).
    std::string readme() const;

private:
    UserToolOptions options_;
};

// Readable text from HTML for a client that shows plain text: scripts and styles dropped, block
// elements on their own lines, list items with "- ", the common entities decoded, runs of blank
// space collapsed. Not an HTML parser: it never fails, whatever it is given.
std::string html_to_text(std::string_view html);

// Throws mcp::ToolError naming the problem unless `schema` is what form-mode elicitation allows:
// {"type": "object", "properties": {name: primitive}, "required": [names]?} where a primitive is
// a string (optionally with enum/oneOf, format email|uri|date|date-time), number, integer, boolean,
// or an array of enumerated strings (multi-select).
void check_requested_schema(const mcp::json& schema);

}  // namespace pymcp::tools
