// The 2025-11-25 tasks utility in the MCP layer (mcp::Server, the Python-free plumbing) over an
// in-memory transport, with the tools layer's JobTasks backend over a JobStore and a small test
// tool that runs as a task job (what the python tool does with its executions).

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/task.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/job_store.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp::mcp {
namespace {

using namespace std::chrono_literals;
using pymcp::testing::eventually;
using pymcp::testing::McpTestClient;
using tools::Job;
using tools::JobState;
using tools::JobStore;

const bool kQuietLogs = [] {
    spdlog::set_level(spdlog::level::warn);
    return true;
}();

bool is_response_to(const json& m, const json& id) {
    return m.is_object() && m.contains("id") && m["id"] == id && (m.contains("result") || m.contains("error"));
}

int error_code(const json& response) { return response.contains("error") ? response["error"]["code"].get<int>() : 0; }

class TasksTest : public ::testing::Test {
protected:
    void SetUp() override {
        ToolDefinition echo;
        echo.name = "echo";
        registry_.add(echo, blocking_handler([](const json& args, CallContext&) { return tool_result("echo", args); }));
        ToolDefinition work;
        work.name = "work";
        work.task_support = "optional";
        registry_.add(work, [this](ToolCall call) { run_work(call); });
        ToolDefinition must;
        must.name = "must";
        must.task_support = "required";
        registry_.add(must, [this](ToolCall call) { run_work(call); });
        start();
    }
    void TearDown() override {
        release_.cancel();
        for (auto& t : threads_) t.join();
        client_.reset();
        server_.reset();
    }
    void start(size_t page_size = 50) {
        client_.reset();
        server_ = std::make_unique<Server>(registry_, ServerOptions{});
        server_->set_task_backend(std::make_shared<tools::JobTasks>(jobs_, 250ms, page_size));
        client_ = std::make_unique<McpTestClient>(*server_);
    }

    // The test tool: a job that ends when the test releases it ("done: <args>"), or when it is
    // cancelled. As a task it answers with the CreateTaskResult at once; otherwise it waits.
    void run_work(const ToolCall& call) {
        CancellationSource cancel(call.context().cancellation());
        auto job = std::make_shared<Job>(jobs_->next_id(), "s", false, 1024, cancel);
        const auto& task = call.context().task();
        if (task) job->set_task(task->ttl.value_or(1h));
        jobs_->add(job);
        CancellationToken stop = cancel.token();
        CallContext context = call.context();
        threads_.emplace_back([this, job, stop, call, context, as_task = task.has_value()] {
            while (!release_.cancelled() && !stop.cancelled()) std::this_thread::sleep_for(1ms);
            JobState state = stop.cancelled() ? JobState::Cancelled : JobState::Succeeded;
            json result = tool_result(stop.cancelled() ? "cancelled" : "done: " + call.arguments().dump(), nullptr,
                                      stop.cancelled());
            job->finish(state, result);
            if (as_task)
                context.notify("notifications/tasks/status", tools::task_info(*job, {}).to_json());
            else
                call.done(result);
        });
        if (task) call.done(create_task_result(tools::task_info(*job, 250ms)));
    }

    json call(const std::string& method, json params, std::chrono::milliseconds timeout = 5000ms) {
        json id = "r" + std::to_string(++next_id_);
        size_t from = client_->size();
        client_->send(jsonrpc::make_request(id, method, std::move(params)));
        auto r = client_->wait_for([&](const json& m) { return is_response_to(m, id); }, timeout, from);
        if (!r) ADD_FAILURE() << "no answer to " << method;
        return r.value_or(json::object());
    }
    json initialize(const std::string& version) {
        json r = call("initialize", json{{"protocolVersion", version},
                                         {"capabilities", json::object()},
                                         {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
        client_->send(jsonrpc::make_notification("notifications/initialized", nullptr));
        return r;
    }
    json tool_list() { return call("tools/list", json::object())["result"]["tools"]; }
    json find_tool(const json& tools, const std::string& name) {
        for (const auto& t : tools)
            if (t["name"] == name) return t;
        return nullptr;
    }
    // A task of the work tool; its id.
    std::string start_task(json task = json::object()) {
        json r = call("tools/call", json{{"name", "work"}, {"arguments", {{"n", 1}}}, {"task", std::move(task)}});
        EXPECT_TRUE(r.contains("result")) << r.dump();
        return r["result"]["task"]["taskId"].get<std::string>();
    }

    ToolRegistry registry_;
    std::shared_ptr<JobStore> jobs_ = std::make_shared<JobStore>(100);
    std::unique_ptr<Server> server_;
    std::unique_ptr<McpTestClient> client_;
    CancellationSource release_;
    std::vector<std::thread> threads_;
    int next_id_ = 0;
};

TEST_F(TasksTest, A20251125ClientIsOfferedTasksAndEachToolsTaskSupport) {
    json r = initialize("2025-11-25");
    const json& tasks = r["result"]["capabilities"]["tasks"];
    EXPECT_TRUE(tasks["list"].is_object()) << r.dump();
    EXPECT_TRUE(tasks["cancel"].is_object());
    EXPECT_TRUE(tasks["requests"]["tools"]["call"].is_object());
    json tools = tool_list();
    EXPECT_EQ(find_tool(tools, "work")["execution"]["taskSupport"], "optional");
    EXPECT_EQ(find_tool(tools, "must")["execution"]["taskSupport"], "required");
    EXPECT_FALSE(find_tool(tools, "echo").contains("execution"));  // absent: forbidden
}

TEST_F(TasksTest, OlderRevisionsAndTheModernEraSeeNoTaskFields) {
    for (const char* version : {"2025-06-18", "2025-03-26", "2024-11-05"}) {
        SCOPED_TRACE(version);
        start();
        json r = initialize(version);
        EXPECT_FALSE(r["result"]["capabilities"].contains("tasks")) << r.dump();
        for (const auto& t : tool_list()) EXPECT_FALSE(t.contains("execution")) << t.dump();
        // params.task is ignored: the call is answered as a plain call (released at once).
        release_.cancel();
        json c = call("tools/call", json{{"name", "work"}, {"arguments", json::object()}, {"task", json::object()}});
        release_ = CancellationSource();
        EXPECT_FALSE(c["result"].contains("task")) << c.dump();
        EXPECT_EQ(c["result"]["content"][0]["text"], "done: {}");
        EXPECT_EQ(error_code(call("tasks/list", json::object())), -32601);
        EXPECT_EQ(error_code(call("tasks/get", json{{"taskId", "job-1"}})), -32601);
    }
    start();
    json meta{{kMetaProtocolVersion, "2026-07-28"}, {kMetaClientCapabilities, json::object()}};
    json d = call("server/discover", json{{"_meta", meta}});
    EXPECT_FALSE(d["result"]["capabilities"].contains("tasks")) << d.dump();
    json l = call("tools/list", json{{"_meta", meta}});
    for (const auto& t : l["result"]["tools"]) EXPECT_FALSE(t.contains("execution")) << t.dump();
    EXPECT_EQ(error_code(call("tasks/list", json{{"_meta", meta}})), -32601);
}

TEST_F(TasksTest, ATaskIsCreatedAtOncePolledAndItsResultCarriesTheRelatedTask) {
    initialize("2025-11-25");
    json r = call("tools/call", json{{"name", "work"}, {"arguments", {{"n", 1}}}, {"task", {{"ttl", 60000}}}});
    const json& task = r["result"]["task"];
    ASSERT_TRUE(task.is_object()) << r.dump();
    EXPECT_EQ(task["status"], "working");
    EXPECT_EQ(task["ttl"], 60000);
    EXPECT_EQ(task["pollInterval"], 250);
    EXPECT_TRUE(task["createdAt"].is_string());
    EXPECT_TRUE(task["lastUpdatedAt"].is_string());
    const std::string id = task["taskId"];
    EXPECT_EQ(jobs_->find(id)->id(), id);  // the task is a job of the store

    EXPECT_EQ(call("tasks/get", json{{"taskId", id}})["result"]["status"], "working");
    json list = call("tasks/list", json::object())["result"];
    ASSERT_EQ(list["tasks"].size(), 1u) << list.dump();
    EXPECT_EQ(list["tasks"][0]["taskId"], id);
    EXPECT_FALSE(list.contains("nextCursor"));

    // tasks/result blocks until the task ends.
    json rid = "blocking-result";
    size_t from = client_->size();
    client_->send(jsonrpc::make_request(rid, "tasks/result", json{{"taskId", id}}));
    client_->sync();
    EXPECT_FALSE(client_->wait_for([&](const json& m) { return is_response_to(m, rid); }, 50ms, from));
    release_.cancel();
    auto answer = client_->wait_for([&](const json& m) { return is_response_to(m, rid); }, 5000ms, from);
    ASSERT_TRUE(answer) << "tasks/result never answered";
    EXPECT_EQ((*answer)["result"]["content"][0]["text"], "done: {\"n\":1}");
    EXPECT_EQ((*answer)["result"]["_meta"][kMetaRelatedTask]["taskId"], id);
    json done = call("tasks/get", json{{"taskId", id}})["result"];
    EXPECT_EQ(done["status"], "completed");
    EXPECT_FALSE(done.contains("_meta"));
    auto note = client_->wait_for([&](const json& m) { return m.value("method", "") == "notifications/tasks/status"; });
    ASSERT_TRUE(note);
    EXPECT_EQ((*note)["params"]["taskId"], id);
    EXPECT_EQ((*note)["params"]["status"], "completed");
}

TEST_F(TasksTest, CancelStopsTheTaskAndIsRefusedOnceItEnded) {
    initialize("2025-11-25");
    std::string id = start_task();
    json c = call("tasks/cancel", json{{"taskId", id}});
    EXPECT_EQ(c["result"]["status"], "cancelled") << c.dump();
    EXPECT_EQ(jobs_->find(id)->state(), JobState::Cancelled);  // the job, as cancel_job sees it
    json again = call("tasks/cancel", json{{"taskId", id}});
    EXPECT_EQ(error_code(again), -32602);
    EXPECT_NE(again["error"]["message"].get<std::string>().find("terminal status 'cancelled'"), std::string::npos);
    json result = call("tasks/result", json{{"taskId", id}});
    EXPECT_TRUE(result["result"]["isError"].get<bool>()) << result.dump();
}

TEST_F(TasksTest, UnknownIdsCursorsAndPlainJobsAreInvalidParams) {
    initialize("2025-11-25");
    for (const char* method : {"tasks/get", "tasks/result", "tasks/cancel"}) {
        SCOPED_TRACE(method);
        EXPECT_EQ(error_code(call(method, json{{"taskId", "job-999"}})), -32602);
        EXPECT_EQ(error_code(call(method, json::object())), -32602);
    }
    EXPECT_EQ(error_code(call("tasks/list", json{{"cursor", "nonsense"}})), -32602);
    // A job made without the tasks utility (start_job, the wait budget) is not a task.
    auto plain = std::make_shared<Job>(jobs_->next_id(), "s", false, 64, CancellationSource());
    jobs_->add(plain);
    json g = call("tasks/get", json{{"taskId", plain->id()}});
    EXPECT_EQ(error_code(g), -32602);
    EXPECT_NE(g["error"]["message"].get<std::string>().find("not a task"), std::string::npos) << g.dump();
    EXPECT_EQ(call("tasks/list", json::object())["result"]["tasks"].size(), 0u);
}

TEST_F(TasksTest, TaskSupportIsEnforcedPerTool) {
    initialize("2025-11-25");
    json forbidden = call("tools/call", json{{"name", "echo"}, {"arguments", json::object()}, {"task", json::object()}});
    EXPECT_EQ(error_code(forbidden), -32601) << forbidden.dump();
    json required = call("tools/call", json{{"name", "must"}, {"arguments", json::object()}});
    EXPECT_EQ(error_code(required), -32601) << required.dump();
    json bad_ttl = call("tools/call", json{{"name", "work"}, {"arguments", json::object()}, {"task", {{"ttl", "x"}}}});
    EXPECT_EQ(error_code(bad_ttl), -32602);
    // A plain call of a tool that only allows tasks optionally stays a plain call.
    json plain = call("tools/call", json{{"name", "echo"}, {"arguments", json::object()}});
    EXPECT_EQ(plain["result"]["content"][0]["text"], "echo");
}

TEST_F(TasksTest, ListIsPaginatedWithOpaqueCursors) {
    start(/*page_size=*/2);
    initialize("2025-11-25");
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(start_task());
    std::vector<std::string> seen;
    json params = json::object();
    for (int page = 0; page < 5; ++page) {
        json r = call("tasks/list", params)["result"];
        for (const auto& t : r["tasks"]) seen.push_back(t["taskId"]);
        if (!r.contains("nextCursor")) break;
        params = json{{"cursor", r["nextCursor"]}};
    }
    EXPECT_EQ(seen, ids);
}

TEST_F(TasksTest, AFinishedTaskGoesWhenItsTtlHasPassed) {
    initialize("2025-11-25");
    std::string id = start_task(json{{"ttl", 200}});
    EXPECT_EQ(call("tasks/get", json{{"taskId", id}})["result"]["ttl"], 200);
    release_.cancel();
    ASSERT_TRUE(eventually([&] { return jobs_->find(id) && jobs_->find(id)->done(); }));
    EXPECT_TRUE(eventually([&] { return error_code(call("tasks/get", json{{"taskId", id}})) == -32602; }));
    EXPECT_EQ(jobs_->find(id), nullptr);
}

}  // namespace
}  // namespace pymcp::mcp
