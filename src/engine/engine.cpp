#include "python_mcp/engine/engine.hpp"

#include <future>

namespace pymcp::engine {

ExecOutcome Engine::execute(const ExecRequest& request, std::shared_ptr<ExecutionHost> host) {
    std::promise<ExecOutcome> promise;
    auto future = promise.get_future();
    submit(request, std::move(host), [&promise](ExecOutcome o) { promise.set_value(std::move(o)); });
    return future.get();
}

}  // namespace pymcp::engine
