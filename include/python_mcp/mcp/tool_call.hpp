#pragma once
// One call of a tool, in the one shape every tool handler takes: `void(ToolCall)`.
//
// A ToolCall carries the arguments, the CallContext (cancellation, progress, log messages and
// requests to the client, the chain of calling sessions) and the reply-once way to answer:
// done() with a CallToolResult, or reject() with a protocol error (unknown tool, invalid params).
// A handler either answers at once, hands the call to something that answers later (the python
// tool queues an execution and holds no thread), or runs blocking work with run_blocking(),
// which goes where its caller allows blocking: a request-pool thread for the protocol, the
// calling thread for mcp.call from Python (whose GIL is released meanwhile).
//
// ToolCall is a handle: copies share one answer slot, so it fits in std::function. Thread-safe.
// The first answer wins; later ones are logged and dropped; when the last copy goes away
// unanswered, the call is answered with an error result (a tool that forgot must not hang its
// caller). Nothing here throws except std::bad_alloc; exceptions from run_blocking() work are
// mapped to answers by map_exception().

#include <functional>
#include <memory>
#include <string>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::mcp {

// Where a call's answer goes. Exactly one of the two is called, once.
struct ToolReply {
    std::function<void(json result)> result;
    std::function<void(int code, const std::string& message)> reject;
};

// Runs blocking work somewhere; false when it cannot (no thread could be started), in which case
// the work did not and will not run.
using BlockingRunner = std::function<bool(std::function<void()> work)>;

class ToolCall {
public:
    ToolCall(std::string tool, json arguments, CallContext context, ToolReply reply, BlockingRunner runner);

    const std::string& tool() const;
    const json& arguments() const;
    CallContext& context() const;

    void done(json result) const;
    void reject(int code, const std::string& message) const;
    // done(error_result(message)).
    void fail(const std::string& message) const;
    bool answered() const;

    // Runs `work` (which answers the call itself) where blocking is allowed; false when no thread
    // can take it, in which case it never runs and the call is not answered yet.
    bool offload(std::function<void()> work) const;
    // Runs `work` where blocking is allowed and answers with what it returns (or its exception,
    // mapped). If no thread can run it, answers -32603 at once (reject_unrun) and `work` never
    // runs: a JSON-RPC error always means the call did not run.
    void run_blocking(std::function<json(const ToolCall&)> work) const;

    // -32603 "... the call did not run": no thread could take the call's work.
    void reject_unrun() const;

    // The answer an exception thrown by a tool stands for: ToolError -> its result,
    // InvalidParamsError -> -32602, anything else (an unknown tool named by the tool's own
    // nested call too) -> an error result.
    void map_exception(std::exception_ptr error) const;

    struct State;

private:
    std::shared_ptr<State> state_;
};

// Adapts a handler that computes its result on the calling thread (and may block).
using BlockingToolHandler = std::function<json(const json& arguments, CallContext& context)>;
std::function<void(ToolCall)> blocking_handler(BlockingToolHandler handler);

}  // namespace pymcp::mcp
