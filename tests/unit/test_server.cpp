// The MCP protocol core (mcp::Server) driven over an in-memory transport by McpTestClient, which
// records every message the server sends, with a registry of small test tools.

#include "python_mcp/mcp/server.hpp"

#include <gmock/gmock.h>
#include <spdlog/spdlog.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/cancellation.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp::mcp {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using pymcp::testing::eventually;
using Clock = std::chrono::steady_clock;

// The server logs each initialize at info; keep the test output readable.
const bool kQuietLogs = [] {
    spdlog::set_level(spdlog::level::warn);
    return true;
}();

bool is_response_to(const json& m, const json& id) {
    return m.is_object() && m.contains("id") && m["id"] == id && m["id"].is_string() == id.is_string() &&
           (m.contains("result") || m.contains("error"));
}

bool is_notification(const json& m, const std::string& method) {
    return m.is_object() && !m.contains("id") && m.value("method", "") == method;
}

using pymcp::testing::McpTestClient;

// Most test tools compute their result on the calling thread.
void add_tool(ToolRegistry& registry, ToolDefinition definition, BlockingToolHandler handler) {
    registry.add(std::move(definition), blocking_handler(std::move(handler)));
}

ToolDefinition def(const std::string& name, bool exposed = true) {
    ToolDefinition d;
    d.name = name;
    d.description = "test tool " + name;
    d.exposed = exposed;
    return d;
}

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        add_tool(registry_, def("echo"), [this](const json& args, CallContext&) {
            ++echo_calls_;
            return tool_result(args.dump(), args);
        });
        add_tool(registry_, def("fail"), [](const json&, CallContext&) -> json { throw ToolError("it broke on purpose"); });
        add_tool(registry_, def("boom"), [](const json&, CallContext&) -> json { throw std::runtime_error("kaboom"); });
        add_tool(registry_, def("hidden", false), [](const json&, CallContext&) { return tool_result("secret"); });
        // Runs until the test opens the gate or the call is cancelled (at most 10 s).
        add_tool(registry_, def("slow"), [this](const json&, CallContext& ctx) {
            ++slow_started_;
            auto deadline = Clock::now() + 10s;
            bool cancelled = false;
            while (Clock::now() < deadline && !gate_.cancelled()) {
                if (ctx.cancellation().wait_for(2ms)) {
                    cancelled = true;
                    break;
                }
            }
            if (cancelled) ++slow_saw_cancel_;
            ++slow_finished_;
            return tool_result(cancelled ? "cancelled" : "done");
        });
        add_tool(registry_, def("logger"), [](const json&, CallContext& ctx) {
            ctx.log("debug", "dbg-line");
            ctx.log("info", "info-line");
            ctx.log("error", "error-line");
            return tool_result("logged");
        });
        add_tool(registry_, def("progress"), [](const json&, CallContext& ctx) {
            ctx.report_progress(1, 2, "half");
            ctx.report_progress(1, 2, "again");  // not increasing: dropped
            ctx.report_progress(2, 2);
            return tool_result("progressed");
        });
        start();
    }
    void TearDown() override {
        gate_.cancel();
        stop();
    }
    void start(ServerOptions options = {}, size_t max_message_bytes = 0) {
        stop();
        server_ = std::make_unique<Server>(registry_, std::move(options));
        client_ = std::make_unique<McpTestClient>(*server_, max_message_bytes);
    }
    void stop() {
        client_.reset();
        server_.reset();
    }
    McpTestClient& sink() { return *client_; }
    ClientSession& session() { return client_->session(); }

    // Sends, then waits until the server has read it (and sent whatever it answers at once).
    void line(const json& message) {
        client_->send(message);
        client_->sync();
    }
    void raw(const std::string& text) {
        client_->send_text(text);
        client_->sync();
    }

    json request(const json& id, const std::string& method, json params = nullptr) {
        return jsonrpc::make_request(id, method, std::move(params));
    }
    json call_request(const json& id, const std::string& tool, json arguments = json::object()) {
        return request(id, "tools/call", json{{"name", tool}, {"arguments", std::move(arguments)}});
    }

    // Sends a request and waits for its answer.
    json roundtrip(const json& message, std::chrono::milliseconds timeout = 5000ms) {
        size_t from = sink().size();
        line(message);
        auto r = sink().wait_for([&](const json& m) { return is_response_to(m, message["id"]); }, timeout, from);
        if (!r) {
            ADD_FAILURE() << "no answer to " << message.dump();
            return json::object();
        }
        return *r;
    }

    json initialize(const std::string& version = "2025-11-25", bool ready = true) {
        json r = roundtrip(request("init", "initialize",
                                   json{{"protocolVersion", version},
                                        {"capabilities", json::object()},
                                        {"clientInfo", {{"name", "test"}, {"version", "1"}}}}));
        if (ready) line(jsonrpc::make_notification("notifications/initialized", nullptr));
        return r;
    }


    ToolRegistry registry_;
    std::unique_ptr<Server> server_;
    std::unique_ptr<McpTestClient> client_;
    CancellationSource gate_;
    std::atomic<int> echo_calls_{0};
    std::atomic<int> slow_started_{0};
    std::atomic<int> slow_finished_{0};
    std::atomic<int> slow_saw_cancel_{0};
};

int error_code(const json& response) {
    if (!response.contains("error")) return 0;
    return response["error"]["code"].get<int>();
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

TEST_F(ServerTest, InitializeEchoesEachSupportedVersion) {
    for (const char* version : {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) {
        SCOPED_TRACE(version);
        start();
        json r = initialize(version);
        ASSERT_TRUE(r.contains("result")) << r.dump();
        EXPECT_EQ(r["result"]["protocolVersion"], version);
        EXPECT_EQ(session().protocol_version(), version);
        EXPECT_TRUE(session().initialized());
        EXPECT_EQ(r["result"]["serverInfo"]["name"], "python-mcp");
        EXPECT_TRUE(r["result"]["serverInfo"]["version"].is_string());
        EXPECT_TRUE(r["result"]["capabilities"]["tools"]["listChanged"].get<bool>());
        EXPECT_TRUE(r["result"]["capabilities"].contains("logging"));
    }
}

TEST_F(ServerTest, UnknownVersionGetsTheLatest) {
    json r = initialize("1999-01-01");
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_EQ(r["result"]["protocolVersion"], kLegacyProtocolVersions[0]);
    EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25");
    EXPECT_EQ(session().protocol_version(), "2025-11-25");
}

TEST_F(ServerTest, InitializeWithoutVersionIsInvalidParams) {
    json r = roundtrip(request(1, "initialize", json::object()));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    EXPECT_FALSE(session().initialized());
    r = roundtrip(request(2, "initialize", json{{"protocolVersion", 20250618}}));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    // A proper one still works afterwards.
    EXPECT_TRUE(initialize().contains("result"));
}

TEST_F(ServerTest, SecondInitializeIsRefused) {
    initialize();
    json r = roundtrip(request(2, "initialize", json{{"protocolVersion", "2025-06-18"}}));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_EQ(session().protocol_version(), "2025-11-25");
}

TEST_F(ServerTest, InstructionsAndTitleInServerInfo) {
    ServerOptions options;
    options.instructions = "use the tools";
    start(options);
    json r = initialize("2025-06-18");
    EXPECT_EQ(r["result"]["instructions"], "use the tools");
    EXPECT_TRUE(r["result"]["serverInfo"].contains("title"));
}

TEST_F(ServerTest, RequestsBeforeInitializeAreAnsweredAtOnce) {
    // Unknown methods get "method not found"; server/discover (2026-07-28) without its _meta is
    // an invalid modern request (test_http_eras.cpp covers it with its _meta).
    json r = roundtrip(request(1, "no/such/method", json::object()), 200ms);
    EXPECT_EQ(error_code(r), jsonrpc::kMethodNotFound);
    r = roundtrip(request(1, "server/discover", json::object()), 200ms);
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    // Known methods: "not initialized".
    for (const char* method : {"tools/list", "tools/call", "logging/setLevel"}) {
        SCOPED_TRACE(method);
        r = roundtrip(request(method, method, json::object()), 200ms);
        EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
        EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("initialize"));
    }
    EXPECT_EQ(echo_calls_.load(), 0);
    // ping works before initialize, and initialize works after the refusals.
    r = roundtrip(request(2, "ping"));
    EXPECT_EQ(r["result"], json::object());
    EXPECT_TRUE(initialize().contains("result"));
    r = roundtrip(request(3, "tools/list", json::object()));
    EXPECT_TRUE(r.contains("result"));
}

TEST_F(ServerTest, Ping) {
    initialize();
    json r = roundtrip(request(42, "ping"));
    EXPECT_EQ(r, json::parse(R"({"jsonrpc":"2.0","id":42,"result":{}})"));
    r = roundtrip(request("p", "ping", json::object()));
    EXPECT_EQ(r["result"], json::object());
    EXPECT_EQ(r["id"], "p");
}

TEST_F(ServerTest, UnknownMethodAfterInitialize) {
    initialize();
    json r = roundtrip(request(1, "resources/list", json::object()));
    EXPECT_EQ(error_code(r), jsonrpc::kMethodNotFound);
    EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("resources/list"));
}

// ---------------------------------------------------------------------------------------------
// Framing and envelope errors

TEST_F(ServerTest, ParseErrorsAndInvalidRequests) {
    initialize();
    size_t before = sink().size();
    raw("{not json");
    ASSERT_EQ(sink().size(), before + 1);
    json r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kParseError);
    EXPECT_TRUE(r["id"].is_null());

    raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\"}");
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kParseError);
    EXPECT_TRUE(r["id"].is_null());

    raw(std::string(100000, '[') + std::string(100000, ']'));
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kParseError);

    // Invalid envelope with a usable id: the id is echoed.
    raw(R"({"jsonrpc":"1.0","id":7,"method":"ping"})");
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_EQ(r["id"], 7);
    // ... and with an unusable one: id null.
    raw(R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})");
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_TRUE(r["id"].is_null());
    raw("42");
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_TRUE(r["id"].is_null());
    EXPECT_EQ(sink().size(), before + 6);
}

TEST_F(ServerTest, BlankLinesAreIgnored) {
    initialize();
    size_t before = sink().size();
    raw("");
    raw("   \t\r");
    EXPECT_EQ(sink().size(), before);
}

TEST_F(ServerTest, OverlongLineGetsOneErrorWithItsIdWhenReadable) {
    start({}, 1000);
    initialize();
    size_t before = sink().size();
    raw(R"({"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"echo","arguments":{"x":")" +
        std::string(5000, 'a') + "\"}}}");
    ASSERT_EQ(sink().size(), before + 1);
    json r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_EQ(r["id"], 77);
    EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("1000"));
    EXPECT_EQ(echo_calls_.load(), 0);
    raw(std::string(5000, '['));  // no id to be had
    r = sink().messages().back();
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
    EXPECT_TRUE(r["id"].is_null());
}

TEST_F(ServerTest, NotificationsAndClientResponsesGetNoAnswer) {
    initialize();
    size_t before = sink().size();
    line(jsonrpc::make_notification("notifications/unknown", json::object()));
    line(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", 12345}}));
    line(jsonrpc::make_notification("notifications/cancelled", json::object()));
    line(jsonrpc::make_notification("notifications/initialized", nullptr));
    line(jsonrpc::make_notification("tools/list", json::object()));  // a request method sent as a notification
    line(jsonrpc::make_result(99, json::object()));
    line(jsonrpc::make_error(98, -1, "client side error"));
    json r = roundtrip(request(5, "ping"));
    EXPECT_TRUE(r.contains("result"));
    auto all = sink().messages();
    ASSERT_EQ(all.size(), before + 1) << all.back().dump();
    EXPECT_TRUE(is_response_to(all.back(), 5));
}

// ---------------------------------------------------------------------------------------------
// tools/list

TEST_F(ServerTest, ToolsListInInsertionOrderWithoutHiddenTools) {
    initialize();
    add_tool(registry_, def("zzz_last_added"), [](const json&, CallContext&) { return tool_result("z"); });
    add_tool(registry_, def("aaa_added_after"), [](const json&, CallContext&) { return tool_result("a"); });
    // Replacing keeps the place.
    add_tool(registry_, def("echo"), [](const json&, CallContext&) { return tool_result("replaced"); });
    json r = roundtrip(request(1, "tools/list", json::object()));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    std::vector<std::string> names;
    for (const auto& t : r["result"]["tools"]) {
        names.push_back(t["name"]);
        EXPECT_TRUE(t["inputSchema"].is_object());
        EXPECT_EQ(t["inputSchema"]["type"], "object");
    }
    EXPECT_EQ(names, (std::vector<std::string>{"echo", "fail", "boom", "slow", "logger", "progress",
                                               "zzz_last_added", "aaa_added_after"}));
    EXPECT_FALSE(r["result"].contains("nextCursor"));
    // Stable across calls.
    json again = roundtrip(request(2, "tools/list"));
    EXPECT_EQ(again["result"], r["result"]);
}

// ---------------------------------------------------------------------------------------------
// tools/call

TEST_F(ServerTest, CallReturnsTheToolResult) {
    initialize();
    json r = roundtrip(call_request(1, "echo", json{{"x", 1}}));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_EQ(r["result"]["structuredContent"], json({{"x", 1}}));
    EXPECT_FALSE(r["result"]["isError"].get<bool>());
    // Missing and null arguments are an empty object.
    r = roundtrip(request(2, "tools/call", json{{"name", "echo"}}));
    EXPECT_EQ(r["result"]["structuredContent"], json::object());
    r = roundtrip(request(3, "tools/call", json{{"name", "echo"}, {"arguments", nullptr}}));
    EXPECT_EQ(r["result"]["structuredContent"], json::object());
}

TEST_F(ServerTest, UnknownOrHiddenToolIsInvalidParams) {
    initialize();
    json r = roundtrip(call_request(1, "no_such_tool"));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("no_such_tool"));
    r = roundtrip(call_request(2, "hidden"));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
}

TEST_F(ServerTest, MalformedCallsAreInvalidParams) {
    initialize();
    for (const json& args : {json("text"), json(1), json::array({1}), json(true)}) {
        SCOPED_TRACE(args.dump());
        json r = roundtrip(request(1, "tools/call", json{{"name", "echo"}, {"arguments", args}}));
        EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    }
    json r = roundtrip(request(2, "tools/call", json::object()));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    r = roundtrip(request(3, "tools/call", json{{"name", 5}}));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    r = roundtrip(request(4, "tools/call", json::array({"echo"})));
    EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams);
    EXPECT_EQ(echo_calls_.load(), 0);
}

TEST_F(ServerTest, ToolFailuresAreIsErrorResults) {
    initialize();
    json r = roundtrip(call_request(1, "fail"));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_TRUE(r["result"]["isError"].get<bool>());
    EXPECT_EQ(r["result"]["content"][0]["type"], "text");
    EXPECT_THAT(r["result"]["content"][0]["text"].get<std::string>(), HasSubstr("it broke on purpose"));
    r = roundtrip(call_request(2, "boom"));
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_TRUE(r["result"]["isError"].get<bool>());
    EXPECT_THAT(r["result"]["content"][0]["text"].get<std::string>(), HasSubstr("kaboom"));
}

TEST_F(ServerTest, ASlowToolDoesNotBlockPingOrOtherCalls) {
    initialize();
    auto start = Clock::now();
    line(call_request(1, "slow"));
    EXPECT_LT(Clock::now() - start, 500ms) << "the reader waited for the tool";
    ASSERT_TRUE(eventually([&] { return slow_started_ == 1; }));
    json r = roundtrip(request(2, "ping"), 1000ms);
    EXPECT_TRUE(r.contains("result"));
    r = roundtrip(call_request(3, "echo", json{{"a", 1}}), 1000ms);
    EXPECT_TRUE(r.contains("result"));
    EXPECT_EQ(slow_finished_.load(), 0);
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 1u; }, 1000ms)) << server_->in_flight();
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 1); }), 0u);
    gate_.cancel();
    auto slow = sink().wait_for([](const json& m) { return is_response_to(m, 1); });
    ASSERT_TRUE(slow);
    EXPECT_EQ((*slow)["result"]["content"][0]["text"], "done");
}

TEST_F(ServerTest, ManyCallsRunConcurrently) {
    initialize();
    for (int i = 0; i < 20; ++i) line(call_request(i, "slow"));
    EXPECT_TRUE(eventually([&] { return slow_started_ == 20; }, 3000ms)) << slow_started_.load() << " started";
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 20u; })) << server_->in_flight();
    gate_.cancel();
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(sink().wait_for([i](const json& m) { return is_response_to(m, i); })) << i;
    EXPECT_TRUE(server_->wait_idle(2000ms));
}

TEST_F(ServerTest, CancelledRequestGetsNoResponseAndTheToolSeesItsToken) {
    initialize();
    line(call_request(7, "slow"));
    ASSERT_TRUE(eventually([&] { return slow_started_ == 1; }));
    // A cancellation naming "7" (a string) is a different request: nothing happens.
    line(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", "7"}}));
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(slow_saw_cancel_.load(), 0);
    line(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", 7}, {"reason", "user pressed stop"}}));
    ASSERT_TRUE(eventually([&] { return slow_finished_ == 1; }, 2000ms));
    EXPECT_EQ(slow_saw_cancel_.load(), 1);
    EXPECT_TRUE(server_->wait_idle(2000ms));
    json r = roundtrip(request(8, "ping"));
    EXPECT_TRUE(r.contains("result"));
    EXPECT_EQ(sink().count([](const json& m) { return m.is_object() && m.contains("id") && m["id"] == 7; }), 0u);
    // The id is free again.
    gate_.cancel();
    r = roundtrip(call_request(7, "echo"));
    EXPECT_TRUE(r.contains("result"));
}

TEST_F(ServerTest, IdsCanBeReusedAfterCompletion) {
    initialize();
    for (int i = 0; i < 3; ++i) {
        size_t from = sink().size();
        line(call_request(5, "echo", json{{"round", i}}));
        auto r = sink().wait_for([](const json& m) { return is_response_to(m, 5); }, 5000ms, from);
        ASSERT_TRUE(r);
        EXPECT_EQ((*r)["result"]["structuredContent"]["round"], i);
    }
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 5); }), 3u);
}

TEST_F(ServerTest, DuplicateInFlightIdIsRefused) {
    initialize();
    line(call_request(9, "slow"));
    ASSERT_TRUE(eventually([&] { return slow_started_ == 1; }));
    json dup = roundtrip(call_request(9, "echo"), 1000ms);
    EXPECT_EQ(error_code(dup), jsonrpc::kInvalidRequest);
    EXPECT_EQ(dup["id"], 9);
    EXPECT_EQ(echo_calls_.load(), 0);
    // 9 and "9" are different requests.
    json other = roundtrip(call_request("9", "echo"), 1000ms);
    EXPECT_TRUE(other.contains("result"));
    gate_.cancel();
    auto first = sink().wait_for([](const json& m) { return is_response_to(m, 9) && m.contains("result"); });
    ASSERT_TRUE(first);
    EXPECT_EQ((*first)["result"]["content"][0]["text"], "done");
}

// ---------------------------------------------------------------------------------------------
// Batches

TEST_F(ServerTest, BatchUnder20250326IsAnsweredAsOneArray) {
    initialize("2025-03-26");
    size_t before = sink().size();
    json batch = json::array({request(1, "ping"),
                              jsonrpc::make_notification("notifications/whatever", nullptr),
                              call_request(2, "echo", json{{"b", true}}),
                              request(3, "no/such/method", json::object()),
                              json(5)});
    line(batch);
    auto answer = sink().wait_for([](const json& m) { return m.is_array(); }, 5000ms, before);
    ASSERT_TRUE(answer);
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(sink().size(), before + 1) << "responses of a batch must come as one array, nothing else";
    ASSERT_EQ(answer->size(), 4u) << answer->dump();
    auto find = [&](const json& id) -> json {
        for (const auto& r : *answer)
            if (r.contains("id") && r["id"] == id) return r;
        return json();
    };
    EXPECT_EQ(find(1)["result"], json::object());
    EXPECT_EQ(find(2)["result"]["structuredContent"], json({{"b", true}}));
    EXPECT_EQ(error_code(find(3)), jsonrpc::kMethodNotFound);
    json invalid = find(nullptr);
    EXPECT_EQ(error_code(invalid), jsonrpc::kInvalidRequest);
}

TEST_F(ServerTest, BatchOfOnlyNotificationsSendsNothing) {
    initialize("2025-03-26");
    size_t before = sink().size();
    line(json::array({jsonrpc::make_notification("notifications/a", nullptr),
                      jsonrpc::make_notification("notifications/b", nullptr)}));
    json r = roundtrip(request(1, "ping"));
    EXPECT_TRUE(r.contains("result"));
    EXPECT_EQ(sink().size(), before + 1);
}

TEST_F(ServerTest, BatchRefusedUnderOtherVersionsAndNotExecuted) {
    for (const char* version : {"2025-11-25", "2025-06-18"}) {
        SCOPED_TRACE(version);
        start();
        initialize(version);
        size_t before = sink().size();
        line(json::array({call_request(1, "echo"), request(2, "ping")}));
        std::this_thread::sleep_for(20ms);
        auto all = sink().messages();
        ASSERT_EQ(all.size(), before + 1);
        EXPECT_TRUE(all.back().is_object());
        EXPECT_EQ(error_code(all.back()), jsonrpc::kInvalidRequest);
        EXPECT_TRUE(all.back()["id"].is_null());
        EXPECT_EQ(echo_calls_.load(), 0);
    }
}

TEST_F(ServerTest, EmptyBatchIsInvalidRequest) {
    for (const char* version : {"2025-03-26", "2025-11-25"}) {
        SCOPED_TRACE(version);
        start();
        initialize(version);
        size_t before = sink().size();
        raw("[]");
        ASSERT_EQ(sink().size(), before + 1);
        json r = sink().messages().back();
        EXPECT_TRUE(r.is_object());
        EXPECT_EQ(error_code(r), jsonrpc::kInvalidRequest);
        EXPECT_TRUE(r["id"].is_null());
    }
}

// ---------------------------------------------------------------------------------------------
// Logging, progress, list_changed

TEST_F(ServerTest, SetLevelValidation) {
    initialize();
    for (const char* level : {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}) {
        json r = roundtrip(request(1, "logging/setLevel", json{{"level", level}}));
        EXPECT_EQ(r["result"], json::object()) << level;
    }
    for (const json& bad : {json{{"level", "verbose"}}, json{{"level", 3}}, json{{"level", "INFO"}}, json::object()}) {
        json r = roundtrip(request(2, "logging/setLevel", bad));
        EXPECT_EQ(error_code(r), jsonrpc::kInvalidParams) << bad.dump();
    }
}

std::vector<std::string> logged(const McpTestClient& sink, size_t from) {
    std::vector<std::string> out;
    auto all = sink.messages();
    for (size_t i = from; i < all.size(); ++i)
        if (is_notification(all[i], "notifications/message")) out.push_back(all[i]["params"]["data"]);
    return out;
}

TEST_F(ServerTest, LogMessagesFollowTheClientsLevel) {
    initialize();
    size_t from = sink().size();
    json r = roundtrip(call_request(1, "logger"));
    EXPECT_TRUE(r.contains("result"));
    EXPECT_EQ(logged(sink(), from), (std::vector<std::string>{"info-line", "error-line"}));  // default: info

    roundtrip(request(2, "logging/setLevel", json{{"level", "error"}}));
    from = sink().size();
    roundtrip(call_request(3, "logger"));
    EXPECT_EQ(logged(sink(), from), (std::vector<std::string>{"error-line"}));

    roundtrip(request(4, "logging/setLevel", json{{"level", "debug"}}));
    from = sink().size();
    roundtrip(call_request(5, "logger"));
    EXPECT_EQ(logged(sink(), from), (std::vector<std::string>{"dbg-line", "info-line", "error-line"}));
    auto all = sink().messages();
    for (size_t i = from; i < all.size(); ++i)
        if (is_notification(all[i], "notifications/message")) {
            EXPECT_TRUE(all[i]["params"]["level"].is_string());
            EXPECT_TRUE(all[i]["params"].contains("logger"));
        }
}

TEST_F(ServerTest, ProgressOnlyWithAProgressTokenAndIncreasing) {
    initialize();
    size_t from = sink().size();
    json r = roundtrip(request(1, "tools/call", json{{"name", "progress"}, {"arguments", json::object()},
                                                    {"_meta", {{"progressToken", "tok-1"}}}}));
    EXPECT_TRUE(r.contains("result"));
    auto all = sink().messages();
    std::vector<double> progress;
    for (size_t i = from; i < all.size(); ++i)
        if (is_notification(all[i], "notifications/progress")) {
            EXPECT_EQ(all[i]["params"]["progressToken"], "tok-1");
            progress.push_back(all[i]["params"]["progress"]);
        }
    EXPECT_EQ(progress, (std::vector<double>{1, 2}));

    from = sink().size();
    roundtrip(call_request(2, "progress"));
    EXPECT_EQ(sink().count([](const json& m) { return is_notification(m, "notifications/progress"); }), 2u);
}

TEST_F(ServerTest, ListChangedOnlyAfterInitializedNotification) {
    initialize("2025-11-25", /*ready=*/false);
    auto list_changed = [](const json& m) { return is_notification(m, "notifications/tools/list_changed"); };
    add_tool(registry_, def("early"), [](const json&, CallContext&) { return tool_result("e"); });
    std::this_thread::sleep_for(150ms);
    EXPECT_EQ(sink().count(list_changed), 0u);
    line(jsonrpc::make_notification("notifications/initialized", nullptr));
    add_tool(registry_, def("late"), [](const json&, CallContext&) { return tool_result("l"); });
    auto m = sink().wait_for(list_changed, 2000ms);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->contains("id"));
    EXPECT_EQ((*m)["jsonrpc"], "2.0");
    EXPECT_EQ(sink().count(list_changed), 1u);
    registry_.remove("late");
    EXPECT_TRUE(eventually([&] { return sink().count(list_changed) == 2; }, 2000ms));
    registry_.set_description("echo", "a new description");
    EXPECT_TRUE(eventually([&] { return sink().count(list_changed) == 3; }, 2000ms));
}

TEST_F(ServerTest, ListChangedBurstsAreCoalesced) {
    initialize();
    auto list_changed = [](const json& m) { return is_notification(m, "notifications/tools/list_changed"); };
    for (int i = 0; i < 30; ++i)
        add_tool(registry_, def("srv__tool" + std::to_string(i)), [](const json&, CallContext&) { return tool_result(""); });
    ASSERT_TRUE(sink().wait_for(list_changed, 2000ms));
    std::this_thread::sleep_for(200ms);
    EXPECT_GE(sink().count(list_changed), 1u);
    EXPECT_LE(sink().count(list_changed), 2u) << "30 quick changes should not make 30 notifications";
    // The notification comes after the changes: a tools/list now sees them all.
    json r = roundtrip(request(1, "tools/list"));
    EXPECT_EQ(r["result"]["tools"].size(), 6u + 30u);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

TEST_F(ServerTest, WaitIdle) {
    initialize();
    EXPECT_TRUE(server_->wait_idle(10ms));
    line(call_request(1, "slow"));
    ASSERT_TRUE(eventually([&] { return slow_started_ == 1; }));
    EXPECT_FALSE(server_->wait_idle(50ms));
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 1u; })) << server_->in_flight();
    gate_.cancel();
    EXPECT_TRUE(server_->wait_idle(5000ms));
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 0u; })) << server_->in_flight();
    EXPECT_TRUE(sink().wait_for([](const json& m) { return is_response_to(m, 1); }, 1000ms));
}

TEST_F(ServerTest, BeginShutdownCancelsInFlightCallsAndRefusesNewOnes) {
    initialize();
    line(call_request(1, "slow"));
    line(call_request(2, "slow"));
    ASSERT_TRUE(eventually([&] { return slow_started_ == 2; }));
    auto start = Clock::now();
    server_->begin_shutdown();
    EXPECT_TRUE(server_->wait_idle(2000ms));
    EXPECT_LT(Clock::now() - start, 1000ms);
    EXPECT_EQ(slow_saw_cancel_.load(), 2);
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 1) || is_response_to(m, 2); }), 0u);
    json r = roundtrip(call_request(3, "echo"), 1000ms);
    EXPECT_TRUE(r.contains("error")) << r.dump();
    EXPECT_EQ(echo_calls_.load(), 0);
    // The protocol itself still answers.
    r = roundtrip(request(4, "ping"), 1000ms);
    EXPECT_TRUE(r.contains("result"));
}

// A tool that answers later (the python tool's `execute` path): the call holds no request
// thread and is answered when the ToolCall is.
TEST_F(ServerTest, DeferredToolIsAnsweredWhenDone) {
    std::mutex mutex;
    std::vector<ToolCall> pending;
    registry_.add(def("deferred"), [&](ToolCall call) {
        std::lock_guard lock(mutex);
        pending.push_back(call);
    });
    initialize();
    line(call_request(1, "deferred"));
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 1u; })) << server_->in_flight();
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 1); }), 0u);
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(pending.size(), 1u);
        pending[0].done(tool_result("deferred answer"));
        pending[0].done(tool_result("a second answer is dropped"));
    }
    auto r = sink().wait_for([](const json& m) { return is_response_to(m, 1); });
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)["result"]["content"][0]["text"], "deferred answer");
    EXPECT_TRUE(server_->wait_idle(1000ms));

    // Cancelled while pending: the token fires and the late answer is dropped.
    line(call_request(3, "deferred"));
    line(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", 3}}));
    {
        std::lock_guard lock(mutex);
        ASSERT_EQ(pending.size(), 2u);
        EXPECT_TRUE(pending[1].context().cancelled());
        pending[1].done(tool_result("too late"));
        pending.clear();
    }
    EXPECT_TRUE(server_->wait_idle(1000ms));
    roundtrip(request(4, "ping"));
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 3); }), 0u);
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 1); }), 1u);
}

// A handler that keeps the call and then throws: the exception is the one answer, and the call
// does not stay in flight (its id would be refused forever, wait_idle never true).
TEST_F(ServerTest, HandlerThrowingAfterKeepingTheCallLeavesNothingInFlight) {
    std::vector<ToolCall> kept;
    registry_.add(def("keep_and_throw"), [&](ToolCall call) {
        kept.push_back(call);  // handed on, e.g. to an engine that then refuses
        throw ToolError("refused after taking the call");
    });
    initialize();
    json r = roundtrip(call_request(1, "keep_and_throw"), 1000ms);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_TRUE(r["result"]["isError"].get<bool>());
    EXPECT_TRUE(server_->wait_idle(1000ms)) << "the failed call is still counted as running";
    kept.clear();
    EXPECT_TRUE(eventually([&] { return server_->in_flight() == 0u; })) << server_->in_flight();
    r = roundtrip(call_request(1, "echo"), 1000ms);
    EXPECT_TRUE(r.contains("result")) << "id 1 should be free again: " << r.dump();
    EXPECT_EQ(sink().count([](const json& m) { return is_response_to(m, 1); }), 2u);
}

// A handler that forgets its call: answered with an error result when the last copy goes.
TEST_F(ServerTest, ForgottenCallIsAnsweredWithAnError) {
    registry_.add(def("forget"), [](ToolCall) {});
    initialize();
    json r = roundtrip(call_request(1, "forget"), 1000ms);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_TRUE(r["result"]["isError"].get<bool>());
}

// No thread for blocking work: the call is answered once, with an error, and the work never runs.
TEST(ServerBlockingRunner, WorkThatCannotStartIsAnsweredOnceAndNeverRuns) {
    ToolRegistry registry;
    std::atomic<int> ran{0};
    add_tool(registry, def("work"), [&](const json&, CallContext&) {
        ++ran;
        return tool_result("ran");
    });
    std::vector<json> answers;
    ToolReply reply{[&](json r) { answers.push_back(std::move(r)); },
                    [&](int code, const std::string& m) { answers.push_back(json{{"code", code}, {"m", m}}); }};
    registry.dispatch(ToolCall("work", json::object(), CallContext{}, reply,
                               [](std::function<void()>) -> bool { throw std::system_error(EAGAIN, std::generic_category()); }));
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0]["code"], -32603);
    EXPECT_NE(answers[0]["m"].get<std::string>().find("did not run"), std::string::npos);
    EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace pymcp::mcp
