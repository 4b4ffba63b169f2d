#include "python_mcp/mcp/input_required.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "python_mcp/support/time_format.hpp"

namespace pymcp::mcp {

using jsonrpc::RpcError;

namespace {

// 128 random bits: the state is the only thing that names a parked call, so it must not be
// guessable (HTTP clients share nothing but what they name).
std::string new_state() {
    static thread_local std::random_device device;
    static const char* hex = "0123456789abcdef";
    std::string s = "pymcp-input-";
    for (int i = 0; i < 4; ++i) {
        unsigned v = device();
        for (int j = 0; j < 8; ++j, v >>= 4) s += hex[v & 15];
    }
    return s;
}

// The client capability a question needs (as ClientSession checks it in the legacy era).
const char* capability_for(const std::string& method) {
    if (method.rfind("elicitation/", 0) == 0) return "elicitation";
    if (method.rfind("sampling/", 0) == 0) return "sampling";
    if (method.rfind("roots/", 0) == 0) return "roots";
    return nullptr;
}

RpcError bad_state(const std::string& why) {
    return RpcError(jsonrpc::kInvalidParams, "Invalid params: requestState " + why);
}

}  // namespace

// --- InputLot --------------------------------------------------------------------------------

std::shared_ptr<InputFlow> InputLot::find(const std::string& state) const {
    std::lock_guard lock(mutex_);
    auto it = flows_.find(state);
    if (it == flows_.end())
        throw bad_state("is unknown, already used or expired (the call it belonged to has ended: make the call "
                        "again without requestState and inputResponses)");
    return it->second;
}

void InputLot::add(const std::string& state, std::shared_ptr<InputFlow> flow) {
    sweep();
    std::lock_guard lock(mutex_);
    flows_[state] = std::move(flow);
}

void InputLot::remove(const std::string& state) {
    std::lock_guard lock(mutex_);
    flows_.erase(state);
}

size_t InputLot::size() const {
    std::lock_guard lock(mutex_);
    return flows_.size();
}

// Drops flows whose final answer waited for a retry longer than the limit. Flows are asked
// without the lot's lock (lock order: a flow's mutex before the lot's).
void InputLot::sweep() {
    std::vector<std::pair<std::string, std::shared_ptr<InputFlow>>> all;
    {
        std::lock_guard lock(mutex_);
        all.assign(flows_.begin(), flows_.end());
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& [state, flow] : all)
        if (flow->expired(now)) remove(state);
}

void InputLot::cancel_all(const std::string& reason) {
    std::map<std::string, std::shared_ptr<InputFlow>> all;
    {
        std::lock_guard lock(mutex_);
        all.swap(flows_);
    }
    for (auto& [_, flow] : all) flow->cancel(reason);
}

// --- InputFlow: legs --------------------------------------------------------------------------

InputFlow::InputFlow(std::shared_ptr<InputLot> lot, std::string tool, json arguments, Finisher finish)
    : lot_(std::move(lot)), tool_(std::move(tool)), arguments_(std::move(arguments)), finish_(std::move(finish)) {}

InputFlow::~InputFlow() = default;

std::shared_ptr<InputFlow> InputFlow::start(std::shared_ptr<InputLot> lot, std::string tool, json arguments,
                                            InputLeg first, Finisher finish) {
    std::shared_ptr<InputFlow> flow(new InputFlow(std::move(lot), std::move(tool), std::move(arguments), std::move(finish)));
    flow->open_leg(std::move(first));
    return flow;
}

// Links the leg's cancellation (notifications/cancelled, its HTTP stream closing) to the call's,
// for as long as it is the open leg. Registered before taking mutex_: the callback runs at once
// when the leg is already cancelled, and cancelling wakes waiters that take mutex_.
void InputFlow::open_leg(InputLeg leg) {
    auto live = std::make_shared<std::atomic<bool>>(true);
    CancellationSource call = cancel_;
    // (The callback must not hold the leg's token: the token's state keeps its callbacks.)
    CancelRegistration link = leg.reply.cancellation().on_cancel([live, call] {
        if (live->load()) call.cancel("the client cancelled the call");
    });
    std::lock_guard lock(mutex_);
    if (leg_live_) *leg_live_ = false;
    leg_live_ = std::move(live);
    era_ = leg.era;
    leg_ = std::move(leg);
    links_.push_back(std::move(link));
}

void InputFlow::resume(const std::string& state, const std::string& tool, const json& arguments, InputLeg leg,
                       const json& responses) {
    if (tool != tool_ || arguments != arguments_)
        throw bad_state("belongs to another request: a retry must repeat the tool's name and arguments exactly");
    if (!responses.is_null() && !responses.is_object())
        throw RpcError(jsonrpc::kInvalidParams, "Invalid params: 'inputResponses' must be an object");
    {
        std::unique_lock lock(mutex_);
        if (state != state_ || done_) throw bad_state("is already used or expired");
        forget_state(lock);
    }
    open_leg(std::move(leg));
    std::unique_lock lock(mutex_);
    if (done_) {  // abandoned meanwhile (shutdown)
        InputLeg late = std::move(*leg_);
        leg_.reset();
        lock.unlock();
        return late.reply.error(jsonrpc::kInvalidParams, "Invalid params: requestState has expired (the call has ended)");
    }
    if (responses.is_object())
        for (auto& [key, q] : questions_)
            if (auto r = responses.find(key); !q.answer && r != responses.end() && r->is_object()) q.answer = *r;
    changed_.notify_all();
    if (final_) {
        Final answer = std::move(*final_);
        final_.reset();
        lock.unlock();
        return deliver(std::move(answer));
    }
    // The spec: a retry that lacks an answer the call needs is asked again, not refused.
    for (auto& [_, q] : questions_)
        if (!q.answer) return ask_on_leg(lock);
}

void InputFlow::ask_on_leg(std::unique_lock<std::mutex>& lock) {
    json requests = json::object();
    for (auto& [key, q] : questions_)
        if (!q.answer) requests[key] = json{{"method", q.method}, {"params", q.params}};
    InputLeg leg = std::move(*leg_);
    leg_.reset();
    *leg_live_ = false;
    closed_at_ = std::chrono::steady_clock::now();
    const std::string state = state_ = new_state();
    lock.unlock();
    // Known to the lot before the client can see it. Should the flow end in between, the state
    // is refused on use (it is no longer the flow's) and swept.
    lot_->add(state, shared_from_this());
    json result{{"resultType", "input_required"}, {"inputRequests", std::move(requests)}, {"requestState", state}};
    leg.reply.result(finish_(leg.era, std::move(result)));
    lock.lock();
}

void InputFlow::forget_state(std::unique_lock<std::mutex>&) {
    if (state_.empty()) return;
    lot_->remove(state_);
    state_.clear();
}

void InputFlow::complete(json result) { deliver(Final{false, std::move(result), 0, {}}); }

void InputFlow::reject(int code, const std::string& message) { deliver(Final{true, nullptr, code, message}); }

// The final answer goes to the open leg; with none open (a question is out), the next retry
// gets it.
void InputFlow::deliver(Final answer) {
    std::unique_lock lock(mutex_);
    if (done_) return;
    if (!leg_) {
        final_ = std::move(answer);
        return;
    }
    InputLeg leg = std::move(*leg_);
    leg_.reset();
    *leg_live_ = false;
    done_ = true;
    forget_state(lock);
    lock.unlock();
    if (answer.is_error) return leg.reply.error(answer.code, answer.message);
    leg.reply.result(finish_(leg.era, std::move(answer.result)));
}

bool InputFlow::expired(std::chrono::steady_clock::time_point now) const {
    std::lock_guard lock(mutex_);
    return done_ || (final_ && now - closed_at_ > lot_->limit());
}

void InputFlow::cancel(const std::string& reason) {
    {
        std::unique_lock lock(mutex_);
        if (done_) return;
        abandon(lock, reason);
    }
    cancel_.cancel(reason);
}

// The client will not come back: the call ends unanswered (cancelled, as a cancelled request).
void InputFlow::abandon(std::unique_lock<std::mutex>& lock, const std::string& reason) {
    done_ = true;
    final_.reset();
    forget_state(lock);
    spdlog::info("tools/call '{}' abandoned while waiting for input: {}", tool_, reason);
}

// --- InputFlow: the channel -----------------------------------------------------------------

void InputFlow::notify(const std::string& method, json params) {
    std::shared_ptr<ClientSession> session;
    jsonrpc::StreamId stream;
    {
        std::lock_guard lock(mutex_);
        if (!leg_) return;  // between legs nobody listens (an HTTP leg's stream has ended)
        if (method == "notifications/progress") {
            if (leg_->progress_token.is_null()) return;
            params["progressToken"] = leg_->progress_token;
        }
        session = leg_->session;
        stream = leg_->reply.stream();
    }
    session->notify_on(method, std::move(params), stream);
}

bool InputFlow::wants_log(const std::string& level) const {
    std::lock_guard lock(mutex_);
    int rank = log_level_rank(level);
    return era_.log_rank >= 0 && rank >= era_.log_rank;
}

json InputFlow::client_capabilities() const {
    std::lock_guard lock(mutex_);
    return era_.capabilities;
}

// A question of the running code: the open leg is answered with input_required, and the code
// waits (its time-out paused by the caller) until a retry brings the answer, the call is
// cancelled, or `timeout` (at most the lot's limit) passes without a retry, which abandons the
// call: a client that does not come back has gone.
json InputFlow::request(const std::string& method, json params, std::chrono::milliseconds timeout,
                        const CancellationToken& cancel) {
    if (const char* needed = capability_for(method); needed && !client_capabilities().contains(needed))
        throw ClientRequestError(std::string("the client did not declare the '") + needed +
                                 "' capability, so it cannot answer " + method);
    auto wake = [this] {
        std::lock_guard lock(mutex_);
        changed_.notify_all();
    };
    CancelRegistration on_cancel = cancel.on_cancel(wake);  // destroyed after `lock` below
    CancelRegistration on_call_cancel = cancel_.token().on_cancel(wake);
    std::unique_lock lock(mutex_);
    if (done_) throw ClientRequestError("the call has ended, so the client cannot be asked " + method);
    const std::string key = "input-" + std::to_string(++next_key_);
    questions_[key] = Question{method, std::move(params), std::nullopt};
    // With no leg open a round is out already: this question goes out when its retry comes.
    if (leg_) ask_on_leg(lock);
    const auto deadline = std::chrono::steady_clock::now() + std::min(timeout, lot_->limit());
    auto over = [&] { return questions_[key].answer || cancel.cancelled() || cancel_.cancelled() || done_; };
    const bool in_time = changed_.wait_until(lock, deadline, over);
    std::optional<json> answer = std::move(questions_[key].answer);
    questions_.erase(key);
    if (answer) return std::move(*answer);
    if (cancel.cancelled() || cancel_.cancelled())
        throw ClientRequestError(method + " was cancelled: " + (cancel.cancelled() ? cancel : cancel_.token()).reason());
    if (done_) throw ClientRequestError("the call ended before the client answered " + method);
    if (!in_time && !leg_) {
        const std::string why = "the client did not retry the call with an answer to " + method + " within " +
                                seconds_text(std::min(timeout, lot_->limit()));
        abandon(lock, why);
        lock.unlock();
        cancel_.cancel(why);
        throw ClientRequestError(why);
    }
    throw ClientRequestError("the client did not answer " + method + " within " + seconds_text(timeout));
}

}  // namespace pymcp::mcp
