// When no thread can be started (pthread_create fails with EAGAIN, or a stack does not fit
// under --memory-limit): ElasticPool either keeps the task for a thread it already has or
// refuses it without queueing it, and the server answers every request exactly once, with an
// error only for work that did not and will not run.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/elastic_pool.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp {
namespace {

using namespace std::chrono_literals;
using pymcp::testing::eventually;

const bool kQuietLogs = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
}();

std::thread failing_spawn(std::function<void()>) {
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "thread");
}

TEST(PoolRefusal, WithNoThreadThePostThrowsAndTheTaskNeverRuns) {
    std::atomic<int> ran{0};
    {
        ElasticPool pool("t", 8);
        pool.set_spawner_for_testing(failing_spawn);
        EXPECT_THROW(pool.post([&] { ++ran; }), PoolError);
        EXPECT_EQ(pool.thread_count(), 0u);
        // Threads can be started again: a later task runs, the refused one still does not.
        pool.set_spawner_for_testing(nullptr);
        std::promise<void> later;
        pool.post([&] { later.set_value(); });
        ASSERT_EQ(later.get_future().wait_for(5s), std::future_status::ready);
    }  // the destructor drains the queue: the refused task would run here if it had stayed
    EXPECT_EQ(ran.load(), 0);
}

TEST(PoolRefusal, WithABusyThreadTheTaskWaitsForItInsteadOfFailing) {
    ElasticPool pool("t", 8);
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<bool> first_running{false};
    pool.post([&] {
        first_running = true;
        released.wait();
    });
    ASSERT_TRUE(eventually([&] { return first_running.load(); }));
    pool.set_spawner_for_testing(failing_spawn);
    std::promise<void> second;
    EXPECT_NO_THROW(pool.post([&] { second.set_value(); }));
    EXPECT_EQ(pool.thread_count(), 1u);
    release.set_value();
    EXPECT_EQ(second.get_future().wait_for(5s), std::future_status::ready);
}

TEST(PoolRefusal, ServerAnswersARefusedToolCallOnceAndTheToolNeverRuns) {
    mcp::ToolRegistry registry;
    std::atomic<int> calls{0};
    mcp::ToolDefinition def;
    def.name = "count";
    def.description = "counts its calls";
    registry.add(def, mcp::blocking_handler([&](const json&, mcp::CallContext&) {
                     ++calls;
                     return mcp::tool_result("counted");
                 }));
    std::vector<json> answers;
    {
        mcp::Server server(registry, mcp::ServerOptions{});
        testing::McpTestClient client(server);
        client.initialize();
        auto call = jsonrpc::make_request(7, "tools/call", json{{"name", "count"}, {"arguments", json::object()}});
        server.request_pool_for_testing().set_spawner_for_testing(failing_spawn);
        client.send(call);
        client.sync();
        EXPECT_TRUE(eventually([&] { return server.in_flight() == 0u; })) << server.in_flight();  // answered and forgotten, not left in flight
        // The id is free again: the same request is accepted once threads can start.
        server.request_pool_for_testing().set_spawner_for_testing(nullptr);
        client.send(call);
        ASSERT_TRUE(eventually([&] { return calls.load() == 1 && server.in_flight() == 0; }));
        client.sync();
        for (const auto& m : client.messages())
            if (m.contains("id") && m["id"] == 7) answers.push_back(m);
    }
    ASSERT_EQ(answers.size(), 2u);  // one per request
    ASSERT_TRUE(answers[0].contains("error")) << answers[0].dump();
    EXPECT_EQ(answers[0]["error"]["code"], -32603);
    EXPECT_NE(answers[0]["error"]["message"].get<std::string>().find("did not run"), std::string::npos);
    EXPECT_TRUE(answers[1].contains("result")) << answers[1].dump();
    EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace pymcp
