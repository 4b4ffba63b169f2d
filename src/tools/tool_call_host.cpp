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

void ToolCallHost::finish() {
    if (live_) live_->finish();
}

}  // namespace pymcp::tools
