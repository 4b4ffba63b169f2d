#include "python_mcp/mcp/tool_call.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

#include "python_mcp/mcp/tool_registry.hpp"

namespace pymcp::mcp {

struct ToolCall::State {
    std::string tool;
    json arguments;
    CallContext context;
    ToolReply reply;
    BlockingRunner runner;
    std::atomic<bool> answered{false};

    bool claim() {
        if (!answered.exchange(true)) return true;
        spdlog::warn("tool '{}' answered a call twice; the second answer was dropped", tool);
        return false;
    }

    ~State() {
        if (answered.load()) return;
        spdlog::error("tool '{}' never answered a call; answering with an error", tool);
        try {
            if (reply.result) reply.result(error_result("Tool '" + tool + "' failed: it never answered this call"));
        } catch (...) {
        }
    }
};

ToolCall::ToolCall(std::string tool, json arguments, CallContext context, ToolReply reply, BlockingRunner runner)
    : state_(std::make_shared<State>()) {
    state_->tool = std::move(tool);
    state_->arguments = std::move(arguments);
    state_->context = std::move(context);
    state_->reply = std::move(reply);
    state_->runner = std::move(runner);
}

const std::string& ToolCall::tool() const { return state_->tool; }
const json& ToolCall::arguments() const { return state_->arguments; }
CallContext& ToolCall::context() const { return state_->context; }
bool ToolCall::answered() const { return state_->answered.load(); }

void ToolCall::done(json result) const {
    if (state_->claim()) state_->reply.result(std::move(result));
}

void ToolCall::reject(int code, const std::string& message) const {
    if (state_->claim()) state_->reply.reject(code, message);
}

void ToolCall::fail(const std::string& message) const { done(error_result(message)); }

void ToolCall::map_exception(std::exception_ptr error) const {
    try {
        std::rethrow_exception(error);
    } catch (const ToolError& e) {
        done(!e.result().is_null() ? e.result() : error_result(e.what()));
    } catch (const InvalidParamsError& e) {
        reject(-32602, std::string("Invalid params: ") + e.what());
    } catch (const UnknownToolError& e) {
        fail(e.what());  // a tool whose own nested call named an unknown tool: its failure
    } catch (const std::exception& e) {
        fail("Tool '" + tool() + "' failed: " + e.what());
    } catch (...) {
        fail("Tool '" + tool() + "' failed");
    }
}

bool ToolCall::offload(std::function<void()> work) const {
    try {
        return state_->runner && state_->runner(std::move(work));
    } catch (const std::exception& e) {
        spdlog::error("cannot run tool '{}': {}", tool(), e.what());
        return false;
    }
}

void ToolCall::run_blocking(std::function<json(const ToolCall&)> work) const {
    ToolCall self = *this;
    bool started = offload([self, work = std::move(work)] {
        try {
            self.done(work(self));
        } catch (...) {
            self.map_exception(std::current_exception());
        }
    });
    // Not started means never will: the answer says so, and the work went with the task.
    if (!started) reject_unrun();
}

void ToolCall::reject_unrun() const {
    reject(-32603, "Internal error: the server cannot start a thread for tool '" + tool() +
                       "' right now; the call did not run");
}

std::function<void(ToolCall)> blocking_handler(BlockingToolHandler handler) {
    return [handler = std::move(handler)](ToolCall call) {
        call.run_blocking([handler](const ToolCall& c) { return handler(c.arguments(), c.context()); });
    };
}

}  // namespace pymcp::mcp
