#pragma once
// What running code may ask of the outside: the engine's only way out. The python tool gives
// each execution a host made from its ToolCall (the request's progress token, cancellation and
// the tool registry); a worker process would give a host that forwards each call over its pipe.
// Every call carries plain data (text, numbers, JSON), so it can be serialised.
//
// Threads: called from the thread running the code, and from threads that code started, while
// the execution runs; for output, also after it (a background thread's late prints). The GIL is
// not held when a host method may block (call_tool, ask). Implementations are thread-safe and
// must not call back into the engine. call_tool() throws HostError for a rejected call; nothing
// else throws except std::bad_alloc.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::engine {

enum class OutputStream { Stdout, Stderr };

// The outside refused a request outright (an unknown tool, invalid arguments, no client to ask):
// unlike a tool's error result, nothing ran.
class HostError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ExecutionHost {
public:
    virtual ~ExecutionHost() = default;

    // Text the code wrote, as it was written (the outcome still has all of it, cut to
    // max_output). Called often and with small pieces: keep it cheap and never block.
    virtual void output(OutputStream stream, std::string_view text) {
        (void)stream;
        (void)text;
    }
    // mcp.progress(done, total, message).
    virtual void progress(double done, std::optional<double> total, const std::string& message) {
        (void)done;
        (void)total;
        (void)message;
    }
    // mcp.call(name, arguments) from code running in `session` (the calling session, for the
    // chain that refuses a session waiting on itself): the CallToolResult. Blocks until the tool
    // answers or `cancel` fires.
    virtual pymcp::json call_tool(const std::string& name, pymcp::json arguments, const std::string& session,
                                  const CancellationToken& cancel) = 0;
    // The tools code can call, as tools/list shows them plus `_meta` (downstream tools carry
    // {server, tool} there).
    virtual pymcp::json list_tools() = 0;
    // A configured downstream server that is still starting: waits for it (bounded, cut short by
    // `cancel`). Returns why it cannot be had, or "" when its tools may be there now.
    virtual std::string wait_for_server(const std::string& server, const CancellationToken& cancel) = 0;
    // Sends `method` (elicitation/create, sampling/createMessage) to the client of the request running this code and returns the client's result. Blocks until it answers or `cancel` fires. Throws HostError when there is no client that declared the needed capability.
    virtual pymcp::json ask_client(const std::string& method, pymcp::json params, const CancellationToken& cancel) { (void)method; (void)params; (void)cancel; throw HostError("no client to ask"); }
};

}  // namespace pymcp::engine
