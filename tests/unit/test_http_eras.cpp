// The 2026-07-28 era beside the legacy one, on the same connection type (mcp::Server over the
// in-memory transport, McpTestClient): server/discover, per-request _meta, resultType,
// subscriptions/listen, logging per request, and the legacy methods the modern era lacks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/protocol_versions.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp::mcp {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using pymcp::testing::McpTestClient;

const bool kQuietLogs = [] {
    spdlog::set_level(spdlog::level::warn);
    return true;
}();

ToolDefinition def(const std::string& name) {
    ToolDefinition d;
    d.name = name;
    d.description = "test tool " + name;
    return d;
}

json modern_meta(json extra = json::object()) {
    json meta{{kMetaProtocolVersion, "2026-07-28"},
              {kMetaClientCapabilities, json::object()},
              {kMetaClientInfo, {{"name", "t"}, {"version", "1"}}}};
    meta.update(extra);
    return meta;
}

bool answers(const json& m, const json& id) {
    return m.is_object() && m.contains("id") && m["id"] == id && (m.contains("result") || m.contains("error"));
}

class ErasTest : public ::testing::Test {
protected:
    void SetUp() override {
        registry_.add(def("echo"), blocking_handler([](const json& args, CallContext&) { return tool_result(args.dump(), args); }));
        registry_.add(def("chatty"), blocking_handler([](const json&, CallContext& ctx) {
            ctx.log("debug", "a debug line");
            ctx.log("warning", "a warning line");
            ctx.report_progress(1, 2);
            return tool_result("done");
        }));
        server_ = std::make_unique<Server>(registry_, ServerOptions{});
        client_ = std::make_unique<McpTestClient>(*server_);
    }
    void TearDown() override {
        client_.reset();
        server_.reset();
    }

    json roundtrip(const json& id, const std::string& method, json params) {
        size_t from = client_->size();
        client_->send(jsonrpc::make_request(id, method, std::move(params)));
        auto r = client_->wait_for([&](const json& m) { return answers(m, id); }, 5000ms, from);
        if (!r) ADD_FAILURE() << "no answer to " << method;
        return r.value_or(json::object());
    }
    int code(const json& r) { return r.contains("error") ? r["error"]["code"].get<int>() : 0; }

    ToolRegistry registry_;
    std::unique_ptr<Server> server_;
    std::unique_ptr<McpTestClient> client_;
};

TEST_F(ErasTest, DiscoverAnswersWithVersionsCapabilitiesCacheHintsAndServerInfo) {
    json r = roundtrip("discover-1", "server/discover", json{{"_meta", modern_meta()}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    const json& res = r["result"];
    EXPECT_EQ(res["resultType"], "complete");
    EXPECT_EQ(res["supportedVersions"][0], "2026-07-28");
    for (auto v : kLegacyProtocolVersions)
        EXPECT_NE(std::find(res["supportedVersions"].begin(), res["supportedVersions"].end(), std::string(v)),
                  res["supportedVersions"].end());
    EXPECT_TRUE(res["capabilities"]["tools"].is_object());
    EXPECT_TRUE(res["ttlMs"].is_number_integer());
    EXPECT_GE(res["ttlMs"].get<long long>(), 0);
    EXPECT_TRUE(res["cacheScope"] == "private" || res["cacheScope"] == "public");
    EXPECT_EQ(res["_meta"][kMetaServerInfo]["name"], "python-mcp");
    EXPECT_TRUE(res["_meta"][kMetaServerInfo]["version"].is_string());
    // Stateless: nothing was negotiated, so a legacy request is still refused.
    EXPECT_FALSE(client_->session().initialized());
    EXPECT_EQ(code(roundtrip(2, "tools/list", json::object())), jsonrpc::kInvalidRequest);
}

TEST_F(ErasTest, ModernRequestsNeedASupportedVersionAndCapabilities) {
    json r = roundtrip(1, "tools/list", json{{"_meta", modern_meta({{kMetaProtocolVersion, "1900-01-01"}})}});
    EXPECT_EQ(code(r), kUnsupportedProtocolVersion);
    EXPECT_EQ(r["error"]["data"]["requested"], "1900-01-01");
    EXPECT_EQ(r["error"]["data"]["supported"][0], "2026-07-28");
    // A legacy revision named per request is not a modern request either.
    EXPECT_EQ(code(roundtrip(2, "tools/list", json{{"_meta", modern_meta({{kMetaProtocolVersion, "2025-11-25"}})}})),
              kUnsupportedProtocolVersion);
    json no_caps = modern_meta();
    no_caps.erase(kMetaClientCapabilities);
    r = roundtrip(3, "tools/list", json{{"_meta", no_caps}});
    EXPECT_EQ(code(r), jsonrpc::kInvalidParams);
    EXPECT_THAT(r["error"]["message"].get<std::string>(), HasSubstr("clientCapabilities"));
    EXPECT_EQ(code(roundtrip(4, "server/discover", json::object())), jsonrpc::kInvalidParams);
    EXPECT_EQ(code(roundtrip(5, "tools/list", json{{"_meta", modern_meta({{kMetaLogLevel, "loud"}})}})),
              jsonrpc::kInvalidParams);
}

TEST_F(ErasTest, ModernResultsCarryResultTypeAndListsCacheHints) {
    json list = roundtrip(1, "tools/list", json{{"_meta", modern_meta()}});
    ASSERT_TRUE(list.contains("result")) << list.dump();
    EXPECT_EQ(list["result"]["resultType"], "complete");
    EXPECT_TRUE(list["result"]["ttlMs"].is_number_integer());
    EXPECT_EQ(list["result"]["cacheScope"], "private");
    EXPECT_EQ(list["result"]["tools"].size(), 2u);
    json call = roundtrip(2, "tools/call", json{{"name", "echo"}, {"arguments", {{"x", 1}}}, {"_meta", modern_meta()}});
    ASSERT_TRUE(call.contains("result")) << call.dump();
    EXPECT_EQ(call["result"]["resultType"], "complete");
    EXPECT_EQ(call["result"]["structuredContent"]["x"], 1);
    EXPECT_EQ(code(roundtrip(3, "tools/call", json{{"name", "nope"}, {"_meta", modern_meta()}})), jsonrpc::kInvalidParams);
}

TEST_F(ErasTest, ModernEraHasNoPingNorSetLevel) {
    EXPECT_EQ(code(roundtrip(1, "ping", json{{"_meta", modern_meta()}})), jsonrpc::kMethodNotFound);
    EXPECT_EQ(code(roundtrip(2, "logging/setLevel", json{{"level", "debug"}, {"_meta", modern_meta()}})),
              jsonrpc::kMethodNotFound);
}

TEST_F(ErasTest, ModernLogMessagesOnlyAtTheRequestsLevel) {
    auto logs = [&] { return client_->count([](const json& m) { return m.value("method", "") == "notifications/message"; }); };
    roundtrip(1, "tools/call", json{{"name", "chatty"}, {"_meta", modern_meta()}});
    EXPECT_EQ(logs(), 0u);  // no logLevel: no log messages
    roundtrip(2, "tools/call", json{{"name", "chatty"}, {"_meta", modern_meta({{kMetaLogLevel, "warning"}})}});
    EXPECT_EQ(logs(), 1u);
    roundtrip(3, "tools/call", json{{"name", "chatty"}, {"_meta", modern_meta({{kMetaLogLevel, "debug"}, {"progressToken", "p"}})}});
    EXPECT_EQ(logs(), 3u);
    EXPECT_EQ(client_->count([](const json& m) { return m.value("method", "") == "notifications/progress"; }), 1u);
}

TEST_F(ErasTest, ListenIsAcknowledgedThenGetsToolListChangesWithItsSubscriptionId) {
    size_t from = client_->size();
    client_->send(jsonrpc::make_request("sub-1", "subscriptions/listen",
                                        json{{"notifications", {{"toolsListChanged", true}, {"promptsListChanged", true}}},
                                             {"_meta", modern_meta()}}));
    auto ack = client_->wait_for([](const json& m) { return m.value("method", "") == "notifications/subscriptions/acknowledged"; },
                                 5000ms, from);
    ASSERT_TRUE(ack);
    EXPECT_EQ((*ack)["params"]["notifications"], json({{"toolsListChanged", true}}));  // no prompts here
    EXPECT_EQ((*ack)["params"]["_meta"][kMetaSubscriptionId], "sub-1");
    registry_.add(def("later"), blocking_handler([](const json&, CallContext&) { return tool_result("x"); }));
    auto changed = client_->wait_for([](const json& m) { return m.value("method", "") == "notifications/tools/list_changed"; },
                                     5000ms, from);
    ASSERT_TRUE(changed);
    EXPECT_EQ((*changed)["params"]["_meta"][kMetaSubscriptionId], "sub-1");
    EXPECT_FALSE(client_->wait_for([](const json& m) { return answers(m, "sub-1"); }, 50ms, from));
    // Shutdown ends the subscription with its closing result.
    server_->begin_shutdown();
    auto closed = client_->wait_for([](const json& m) { return answers(m, "sub-1"); }, 5000ms, from);
    ASSERT_TRUE(closed);
    EXPECT_EQ((*closed)["result"]["resultType"], "complete");
    EXPECT_EQ((*closed)["result"]["_meta"][kMetaSubscriptionId], "sub-1");
}

TEST_F(ErasTest, ListenIsModernOnlyAndCancelledByTheClient) {
    client_->initialize();
    EXPECT_EQ(code(roundtrip(1, "subscriptions/listen", json{{"notifications", json::object()}})), jsonrpc::kMethodNotFound);
    EXPECT_EQ(code(roundtrip(2, "subscriptions/listen", json{{"_meta", modern_meta()}})), jsonrpc::kInvalidParams);
    client_->send(jsonrpc::make_request(3, "subscriptions/listen",
                                        json{{"notifications", {{"toolsListChanged", true}}}, {"_meta", modern_meta()}}));
    ASSERT_TRUE(client_->wait_for([](const json& m) { return m.value("method", "") == "notifications/subscriptions/acknowledged"; }));
    client_->send(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", 3}}));
    client_->sync();
    size_t from = client_->size();
    registry_.add(def("later"), blocking_handler([](const json&, CallContext&) { return tool_result("x"); }));
    // The legacy session (initialized) still hears of the change; the cancelled listen does not.
    auto changed = client_->wait_for([](const json& m) { return m.value("method", "") == "notifications/tools/list_changed"; },
                                     5000ms, from);
    ASSERT_TRUE(changed);
    EXPECT_FALSE((*changed).contains("params") && (*changed)["params"].is_object() && (*changed)["params"].contains("_meta"));
    client_->sync();
    EXPECT_EQ(client_->count([](const json& m) { return m.value("method", "") == "notifications/tools/list_changed"; }), 1u);
}

TEST_F(ErasTest, LegacyEraIsUnchangedBesideTheModernOne) {
    // A modern probe first (as Claude Code does on stdio), then the legacy handshake.
    EXPECT_TRUE(roundtrip("probe", "server/discover", json{{"_meta", modern_meta()}}).contains("result"));
    json init = client_->initialize("2025-06-18");
    EXPECT_EQ(init["protocolVersion"], "2025-06-18");
    json list = roundtrip(1, "tools/list", json::object());
    EXPECT_FALSE(list["result"].contains("resultType"));
    EXPECT_FALSE(list["result"].contains("ttlMs"));
    json call = roundtrip(2, "tools/call", json{{"name", "echo"}, {"arguments", json::object()}});
    EXPECT_FALSE(call["result"].contains("resultType"));
    EXPECT_TRUE(roundtrip(3, "ping", json::object()).contains("result"));
    EXPECT_TRUE(roundtrip(4, "logging/setLevel", json{{"level", "debug"}}).contains("result"));
    // And a modern request on the same connection is still served by its own rules.
    EXPECT_EQ(roundtrip(5, "tools/list", json{{"_meta", modern_meta()}})["result"]["resultType"], "complete");
}

}  // namespace
}  // namespace pymcp::mcp
