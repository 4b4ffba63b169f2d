#include "python_mcp/mcp/client_session.hpp"

#include "python_mcp/support/time_format.hpp"

namespace pymcp::mcp {

int log_level_rank(const std::string& level) {
    static const char* levels[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
    for (int i = 0; i < 8; ++i)
        if (level == levels[i]) return i;
    return -1;
}

namespace {

// The client capability a server-to-client request needs (MCP: elicitation, sampling, roots).
const char* capability_for(const std::string& method) {
    if (method.rfind("elicitation/", 0) == 0) return "elicitation";
    if (method.rfind("sampling/", 0) == 0) return "sampling";
    if (method.rfind("roots/", 0) == 0) return "roots";
    return nullptr;
}

}  // namespace

void ClientSession::notify(const std::string& method, json params) {
    if (auto peer = peer_.lock()) peer->notify(method, std::move(params));
}

void ClientSession::notify_on(const std::string& method, json params, jsonrpc::StreamId stream) {
    if (auto peer = peer_.lock()) peer->notify(method, std::move(params), stream);
}

bool ClientSession::wants_log(const std::string& level) const {
    int r = log_level_rank(level);
    return r >= 0 && r >= log_rank_.load();
}

json ClientSession::client_capabilities() const {
    std::lock_guard lock(mutex_);
    return capabilities_;
}

json ClientSession::request(const std::string& method, json params, std::chrono::milliseconds timeout,
                            const CancellationToken& cancel) {
    if (!ready_.load())
        throw ClientRequestError("the client has not finished initializing, so it cannot be asked anything yet");
    if (const char* needed = capability_for(method)) {
        json caps = client_capabilities();
        if (!caps.is_object() || !caps.contains(needed))
            throw ClientRequestError(std::string("the client did not declare the '") + needed +
                                     "' capability, so it cannot answer " + method);
    }
    jsonrpc::CallOptions options;
    options.timeout = timeout;
    options.cancel = cancel;
    options.progress_resets_timeout = false;
    options.cancel_reason = method + " timed out";
    auto peer = peer_.lock();
    if (!peer) throw ClientRequestError("the client connection ended before it could be asked " + method);
    try {
        return peer->call(method, std::move(params), options);
    } catch (const jsonrpc::CallError& e) {
        switch (e.kind()) {
            case jsonrpc::CallError::Kind::Timeout:
                throw ClientRequestError("the client did not answer " + method + " within " + seconds_text(timeout));
            case jsonrpc::CallError::Kind::Cancelled:
                throw ClientRequestError(method + " was cancelled: " + std::string(e.what()));
            case jsonrpc::CallError::Kind::Rpc:
                throw ClientRequestError("the client answered " + method + " with error " + std::to_string(e.code()) +
                                         ": " + e.what());
            case jsonrpc::CallError::Kind::Unreadable:
                throw ClientRequestError("the client's answer to " + method + " cannot be read: " + e.what());
            case jsonrpc::CallError::Kind::Closed:
                break;
        }
        throw ClientRequestError("the client connection ended before it answered " + method);
    }
}

void ClientSession::initialize(std::string protocol_version, json capabilities, json client_info) {
    {
        std::lock_guard lock(mutex_);
        protocol_version_ = std::move(protocol_version);
        capabilities_ = capabilities.is_object() ? std::move(capabilities) : json::object();
        client_info_ = client_info.is_object() ? std::move(client_info) : json::object();
    }
    initialized_ = true;
}

std::string ClientSession::protocol_version() const {
    std::lock_guard lock(mutex_);
    return protocol_version_;
}

json ClientSession::client_info() const {
    std::lock_guard lock(mutex_);
    return client_info_;
}

}  // namespace pymcp::mcp
