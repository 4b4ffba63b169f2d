#include "python_mcp/mcp/call_context.hpp"

namespace pymcp::mcp {

CallContext::CallContext(CancellationToken cancellation, json request_id, json progress_token,
                         std::shared_ptr<ClientChannel> channel)
    : cancellation_(std::move(cancellation)),
      request_id_(std::move(request_id)),
      progress_token_(std::move(progress_token)),
      channel_(std::move(channel)) {}

CallContext CallContext::nested(CancellationToken cancellation, std::string caller_session) const {
    CallContext child;
    child.cancellation_ = std::move(cancellation);
    child.request_id_ = request_id_;
    child.channel_ = channel_;
    child.parent_ = this;
    child.depth_ = depth_ + 1;
    child.caller_session_ = std::move(caller_session);
    return child;
}

bool CallContext::has_caller_session(const std::string& session) const {
    for (const CallContext* c = this; c; c = c->parent_)
        if (c->caller_session_ == session) return true;
    return false;
}

void CallContext::report_progress(double progress, double total, const std::string& message) {
    const CallContext* root = this;
    while (root->parent_) root = root->parent_;
    if (!channel_ || root->progress_token_.is_null() || progress <= last_progress_) return;
    last_progress_ = progress;
    json params{{"progressToken", root->progress_token_}, {"progress", progress}};
    if (total >= 0) params["total"] = total;
    if (!message.empty()) params["message"] = message;
    channel_->notify("notifications/progress", std::move(params));
}

void CallContext::log(const std::string& level, const json& data, const std::string& logger) const {
    if (!channel_ || !channel_->wants_log(level)) return;
    channel_->notify("notifications/message", json{{"level", level}, {"logger", logger}, {"data", data}});
}

}  // namespace pymcp::mcp
