#pragma once
// The python tool's ExecutionHost: what code running for one tools/call may ask of the outside,
// served from that call's CallContext and the tool registry.
//   call_tool       -> registry.call(name, arguments, context.nested(cancel, session)); a call
//                      the registry rejects (unknown tool, invalid params) -> HostError
//   list_tools      -> every tool in the registry, as tools/list shows it, with _meta
//   wait_for_server -> registry.resolve() on the server's name (its miss handler waits)
//   progress        -> notifications/progress (CallContext::report_status)
//   output          -> live output (LiveOutput), when the request carried a progressToken
//   ask_client      -> CallContext::ask_client (elicitation/create, sampling/createMessage,
//                      roots/list to the request's client), bounded by the execution's token and
//                      kAskTimeout; HostError, with nothing sent, when the call has no client or
//                      the client did not declare the capability (elicitation: form mode)
//
// Thread-safe: the context is only read (its progress state and channel are thread-safe), the
// registry is thread-safe, LiveOutput has its own locks. Holds no lock while calling a tool.
// finish() flushes live output; the tool calls it before it answers. The registry must outlive
// the host (a background thread of the code may still print or call after the answer).

#include <chrono>
#include <memory>

#include "python_mcp/engine/execution_host.hpp"
#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/live_output.hpp"

namespace pymcp::tools {

class ToolCallHost final : public engine::ExecutionHost {
public:
    // `live` may be null (no progressToken: nothing is sent while the code runs).
    ToolCallHost(const mcp::ToolRegistry& registry, mcp::CallContext context, std::shared_ptr<LiveOutput> live);

    void output(engine::OutputStream stream, std::string_view text) override;
    void progress(double done, std::optional<double> total, const std::string& message) override;
    pymcp::json call_tool(const std::string& name, pymcp::json arguments, const std::string& session,
                          const CancellationToken& cancel) override;
    pymcp::json list_tools() override;
    std::string wait_for_server(const std::string& server, const CancellationToken& cancel) override;
    pymcp::json ask_client(const std::string& method, pymcp::json params, const CancellationToken& cancel) override;

    // The longest a request to the client may wait for its answer: a person may be slow, but one
    // who walked away must not hold the session forever (the execution's time-out pauses meanwhile).
    static constexpr std::chrono::minutes kAskTimeout{10};

    // Sends the live output that waits; later output is not sent. Call before answering.
    void finish();

private:
    const mcp::ToolRegistry& registry_;
    const mcp::CallContext context_;
    const std::shared_ptr<LiveOutput> live_;
};

}  // namespace pymcp::tools
