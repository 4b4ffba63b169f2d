#include "python_mcp/mcp/call_context.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

namespace pymcp::mcp {

// Shared by a request's context and every context derived from it, so progress stays strictly
// increasing however many nested calls report it. Notifications are sent with the mutex held, so
// they reach the client in the order of their values.
struct CallContext::ProgressState {
    std::mutex mutex;
    double last = -1e300;
    bool any = false;
    std::optional<double> total;  // the last total sent
};

namespace {
// The smallest step live output adds to the last progress: invisible on a progress bar (a
// millionth of the value), yet strictly increasing even where 1e-6 is below a double's precision.
double step_after(double last) {
    double next = last + 1e-6 * std::max(1.0, std::abs(last));
    return next > last ? next : std::nextafter(last, HUGE_VAL);
}
}  // namespace

CallContext::CallContext(CancellationToken cancellation, json request_id, json progress_token,
                         std::shared_ptr<ClientChannel> channel)
    : cancellation_(std::move(cancellation)),
      request_id_(std::move(request_id)),
      progress_token_(std::move(progress_token)),
      channel_(std::move(channel)),
      progress_(std::make_shared<ProgressState>()) {}

CallContext CallContext::nested(CancellationToken cancellation, std::string caller_session) const {
    CallContext child = *this;
    child.cancellation_ = std::move(cancellation);
    child.depth_ = depth_ + 1;
    child.caller_sessions_.push_back(std::move(caller_session));
    child.task_.reset();  // a nested call answers its caller, never as a task
    return child;
}

bool CallContext::has_caller_session(const std::string& session) const {
    return std::find(caller_sessions_.begin(), caller_sessions_.end(), session) != caller_sessions_.end();
}

void CallContext::report_progress(double progress, double total, const std::string& message) {
    if (!channel_ || progress_token_.is_null() || !progress_) return;
    std::lock_guard lock(progress_->mutex);
    if (progress_->any && progress <= progress_->last) return;
    progress_->last = progress;
    progress_->any = true;
    json params{{"progressToken", progress_token_}, {"progress", progress}};
    if (total >= 0) {
        params["total"] = total;
        progress_->total = total;
    }
    if (!message.empty()) params["message"] = message;
    channel_->notify("notifications/progress", std::move(params));
}

void CallContext::report_status(std::optional<double> progress, std::optional<double> total,
                                const std::string& message) const {
    if (!channel_ || progress_token_.is_null() || !progress_) return;
    std::lock_guard lock(progress_->mutex);
    double value = !progress_->any                             ? progress.value_or(0)
                   : progress && *progress > progress_->last ? *progress
                                                             : step_after(progress_->last);
    progress_->last = value;
    progress_->any = true;
    if (total) progress_->total = total;
    json params{{"progressToken", progress_token_}, {"progress", value}};
    if (progress_->total) params["total"] = *progress_->total;
    if (!message.empty()) params["message"] = message;
    channel_->notify("notifications/progress", std::move(params));
}

json CallContext::ask_client(const std::string& method, json params, std::chrono::milliseconds timeout) const {
    if (!channel_) throw ClientRequestError("there is no client to ask: this call was not made by a client");
    return channel_->request(method, std::move(params), timeout, cancellation_);
}

json CallContext::ask_client(const std::string& method, json params, std::chrono::milliseconds timeout,
                             const CancellationToken& cancel) const {
    if (!channel_) throw ClientRequestError("there is no client to ask: this call was not made by a client");
    return channel_->request(method, std::move(params), timeout, cancel);
}

json CallContext::client_capabilities() const { return channel_ ? channel_->client_capabilities() : json::object(); }

void CallContext::notify(const std::string& method, json params) const {
    if (channel_) channel_->notify(method, std::move(params));
}

void CallContext::log(const std::string& level, const json& data, const std::string& logger) const {
    if (!channel_ || !channel_->wants_log(level)) return;
    channel_->notify("notifications/message", json{{"level", level}, {"logger", logger}, {"data", data}});
}

}  // namespace pymcp::mcp
