#include "python_mcp/tools/tool_call_host.hpp"

namespace pymcp::tools {

ToolCallHost::ToolCallHost(const mcp::ToolRegistry& registry, mcp::CallContext context,
                           std::shared_ptr<LiveOutput> live)
    : registry_(registry), context_(std::move(context)), live_(std::move(live)) {}

void ToolCallHost::output(engine::OutputStream, std::string_view text) {
    if (live_) live_->append(text);
}

void ToolCallHost::progress(double done, std::optional<double> total, const std::string& message) {
    context_.report_status(done, total, message);
}

pymcp::json ToolCallHost::call_tool(const std::string& name, pymcp::json arguments, const std::string& session,
                                    const CancellationToken& cancel) {
    try {
        return registry_.call(name, std::move(arguments), context_.nested(cancel, session));
    } catch (const mcp::UnknownToolError& e) {
        throw engine::HostError(e.what());
    } catch (const mcp::InvalidParamsError& e) {
        throw engine::HostError(e.what());
    }
}

pymcp::json ToolCallHost::list_tools() {
    pymcp::json tools = pymcp::json::array();
    for (const auto& def : registry_.list()) tools.push_back(def.to_json());  // with _meta
    return tools;
}

std::string ToolCallHost::wait_for_server(const std::string& server, const CancellationToken& cancel) {
    if (server.empty()) return {};
    try {
        // A name no tool has, under the server's prefix: the miss handler waits for the server.
        registry_.resolve(server + ".\x01", cancel);
    } catch (const mcp::UnknownToolError& e) {
        // "Unknown tool: '<server>.\x01': <reason>": only the reason means anything here.
        std::string what = e.what();
        auto colon = what.find("': ");
        return colon == std::string::npos ? what : what.substr(colon + 3);
    }
    return {};
}

namespace {

// Why the client cannot be sent `method`, or "" when it declared what the method needs. Form-mode
// elicitation: `elicitation` empty (before 2025-11-25 that meant form) or with `form`.
std::string missing_capability(const mcp::CallContext& context, const std::string& method) {
    if (!context.has_client()) return "this call was not made by an MCP client, so there is nobody to ask";
    const pymcp::json caps = context.client_capabilities();
    auto declared = [&](const char* name) { return caps.is_object() && caps.contains(name) && caps[name].is_object(); };
    if (method == "elicitation/create") {
        if (declared("elicitation") && (caps["elicitation"].empty() || caps["elicitation"].contains("form"))) return {};
        return "the MCP client did not declare the 'elicitation' capability (form mode), so it cannot ask the user";
    }
    if (method == "sampling/createMessage") {
        if (declared("sampling")) return {};
        return "the MCP client did not declare the 'sampling' capability, so it cannot sample its model";
    }
    if (method == "roots/list") {
        if (declared("roots")) return {};
        return "the MCP client did not declare the 'roots' capability";
    }
    return "'" + method + "' is not a request python-mcp sends to its client";
}

}  // namespace

pymcp::json ToolCallHost::ask_client(const std::string& method, pymcp::json params, const CancellationToken& cancel) {
    if (std::string why = missing_capability(context_, method); !why.empty()) throw engine::HostError(why);
    // ClientRequestError (refused, timed out, connection gone) is not a HostError: it was sent.
    return context_.ask_client(method, std::move(params), kAskTimeout, cancel);
}

void ToolCallHost::finish() {
    if (live_) live_->finish();
}

}  // namespace pymcp::tools
