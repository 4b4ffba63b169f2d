// The `user` tool over a real Server and an in-memory client (McpTestClient) that answers
// elicitation/create the way each test needs: accept, decline, cancel, never; and a client without
// the elicitation capability.

#include "python_mcp/tools/user_tool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/jsonrpc/message.hpp"
#include "python_mcp/mcp/server.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace {

using namespace pymcp;
using json = pymcp::json;
using ::testing::HasSubstr;
using ::testing::Not;
using pymcp::testing::McpTestClient;

std::string all_text(const json& result) {
    std::string out;
    for (const auto& c : result.value("content", json::array()))
        if (c.value("type", "") == "text") out += c.value("text", "") + "\n";
    return out;
}

class UserToolTest : public ::testing::Test {
protected:
    // answer(params) -> the elicitation result; unset: the client never answers.
    void start(json capabilities, std::function<json(const json&)> answer, tools::UserToolOptions options = {}) {
        tool_ = std::make_unique<tools::UserTool>(options);
        tool_->register_in(registry_);
        server_ = std::make_unique<mcp::Server>(registry_, mcp::ServerOptions{});
        client_ = std::make_unique<McpTestClient>(*server_);
        client_->peer().on_request("elicitation/create", [this, answer](const json& params, jsonrpc::Responder reply) {
            {
                std::lock_guard lock(mutex_);
                asked_.push_back(params);
            }
            if (answer) reply.result(answer(params));
            else held_.push_back(reply);  // the reading thread only; released in TearDown
        });
        client_->initialize("2025-11-25", std::move(capabilities));
    }
    void TearDown() override {
        client_.reset();
        server_.reset();
    }
    json call(const json& arguments) {
        jsonrpc::CallOptions options;
        options.timeout = std::chrono::seconds(30);
        return client_->peer().call("tools/call", json{{"name", "user"}, {"arguments", arguments}}, options);
    }
    std::vector<json> asked() {
        std::lock_guard lock(mutex_);
        return asked_;
    }

    json elicitation() const { return json{{"elicitation", json::object()}}; }

    mcp::ToolRegistry registry_;
    std::unique_ptr<tools::UserTool> tool_;
    std::unique_ptr<mcp::Server> server_;
    std::unique_ptr<McpTestClient> client_;
    std::mutex mutex_;
    std::vector<json> asked_;
    std::vector<jsonrpc::Responder> held_;
};

TEST_F(UserToolTest, AskSendsDefaultFormAndReturnsAcceptedContent) {
    start(elicitation(), [](const json&) { return json{{"action", "accept"}, {"content", {{"answer", "42"}}}}; });
    json r = call(json{{"input", {{"operation", "ask"}, {"message", "The answer?"}}}});
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"], (json{{"action", "accept"}, {"content", {{"answer", "42"}}}}));
    ASSERT_EQ(asked().size(), 1u);
    const json p = asked()[0];
    EXPECT_EQ(p["message"], "The answer?");
    EXPECT_FALSE(p.contains("mode"));  // missing means form; older clients know no mode
    EXPECT_EQ(p["requestedSchema"]["type"], "object");
    EXPECT_EQ(p["requestedSchema"]["properties"]["answer"]["type"], "string");
}

TEST_F(UserToolTest, AskPassesItsSchemaAndReportsDeclineAndCancelAsActions) {
    std::string action = "decline";
    start(elicitation(), [&](const json&) { return json{{"action", action}}; });
    json schema{{"type", "object"},
                {"properties", {{"n", {{"type", "integer"}}}, {"ok", {{"type", "boolean"}}}}},
                {"required", {"n"}}};
    json r = call(json{{"operation", "ask"}, {"message", "Numbers"}, {"schema", schema}});  // fields unwrapped
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"]["action"], "decline");
    EXPECT_EQ(asked().at(0)["requestedSchema"], schema);
    action = "cancel";
    r = call(json{{"operation", "ask"}, {"message", "Again"}});
    EXPECT_EQ(r["structuredContent"]["action"], "cancel");
}

TEST_F(UserToolTest, AskRefusesSchemasElicitationCannotCarry) {
    start(elicitation(), [](const json&) { return json{{"action", "accept"}}; });
    json nested{{"type", "object"}, {"properties", {{"a", {{"type", "object"}}}}}};
    json r = call(json{{"operation", "ask"}, {"message", "m"}, {"schema", nested}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("no nested objects"));
    json password{{"type", "object"}, {"properties", {{"p", {{"type", "string"}, {"format", "password"}}}}}};
    r = call(json{{"operation", "ask"}, {"message", "m"}, {"schema", password}});
    EXPECT_THAT(all_text(r), HasSubstr("'format' must be one of"));
    json bad_required{{"type", "object"}, {"properties", {{"a", {{"type", "string"}}}}}, {"required", {"b"}}};
    r = call(json{{"operation", "ask"}, {"message", "m"}, {"schema", bad_required}});
    EXPECT_THAT(all_text(r), HasSubstr("not one of the properties"));
    EXPECT_TRUE(asked().empty());  // nothing reached the user
}

TEST_F(UserToolTest, CollectApiKeyReturnsTheKeyOutsideTheText) {
    start(elicitation(), [](const json&) { return json{{"action", "accept"}, {"content", {{"api_key", "sk-123"}}}}; });
    json r = call(json{{"input", {{"operation", "collect_api_key"}, {"service_name", "OpenAI"}}}});
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"]["api_key"], "sk-123");
    EXPECT_THAT(all_text(r), Not(HasSubstr("sk-123")));
    const json schema = asked().at(0)["requestedSchema"];
    EXPECT_EQ(schema["required"], json::array({"api_key"}));
    EXPECT_THAT(asked().at(0)["message"].get<std::string>(), HasSubstr("OpenAI"));
}

TEST_F(UserToolTest, CollectApiKeyDeclinedOrCancelledIsAnError) {
    std::string action = "decline";
    start(elicitation(), [&](const json&) { return json{{"action", action}}; });
    json r = call(json{{"operation", "collect_api_key"}, {"service_name", "GitHub"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("declined"));
    action = "cancel";
    r = call(json{{"operation", "collect_api_key"}, {"service_name", "GitHub"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("cancelled"));
}

TEST_F(UserToolTest, ShowPopupSendsReadableTextAndAnEmptyForm) {
    start(elicitation(), [](const json&) { return json{{"action", "accept"}}; });
    json r = call(json{{"input",
                        {{"operation", "show_popup"}, {"title", "Done"},
                         {"html", "<h1>Processing Complete!</h1><p>Results &amp; more saved.</p>"}}}});
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"], (json{{"shown", true}, {"action", "accept"}}));
    const json p = asked().at(0);
    EXPECT_EQ(p["message"], "Done\n\nProcessing Complete!\n\nResults & more saved.");
    EXPECT_EQ(p["requestedSchema"], (json{{"type", "object"}, {"properties", json::object()}}));
}

TEST_F(UserToolTest, WithoutElicitationPopupReturnsItsTextAndTheOthersFail) {
    start(json::object(), [](const json&) { return json{{"action", "accept"}}; });
    json r = call(json{{"operation", "show_popup"}, {"html", "<p>Hi <b>there</b></p>"}});
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"]["shown"], false);
    EXPECT_THAT(all_text(r), HasSubstr("Not shown to the user"));
    EXPECT_THAT(all_text(r), HasSubstr("Hi there"));
    EXPECT_EQ(r["content"].back()["resource"]["mimeType"], "text/html");
    r = call(json{{"operation", "collect_api_key"}, {"service_name", "OpenAI"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("did not declare the 'elicitation' capability"));
    r = call(json{{"operation", "ask"}, {"message", "?"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("cannot ask the user"));
    EXPECT_TRUE(asked().empty());
}

TEST_F(UserToolTest, UrlOnlyElicitationCannotShowAForm) {
    start(json{{"elicitation", {{"url", json::object()}}}}, [](const json&) { return json{{"action", "accept"}}; });
    json r = call(json{{"operation", "ask"}, {"message", "?"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_TRUE(asked().empty());
}

TEST_F(UserToolTest, AUserWhoNeverAnswersTimesOut) {
    start(elicitation(), nullptr);
    json r = call(json{{"operation", "ask"}, {"message", "Still there?"}, {"timeout", 0.3}});
    EXPECT_TRUE(r.value("isError", false)) << r.dump();
    EXPECT_THAT(all_text(r), HasSubstr("did not answer elicitation/create within"));
    // The client was told to stop asking.
    EXPECT_TRUE(client_->wait_for([](const json& m) { return m.value("method", "") == "notifications/cancelled"; }));
}

TEST_F(UserToolTest, CancellingTheCallWithdrawsTheQuestion) {
    start(elicitation(), nullptr);
    client_->send(jsonrpc::make_request(
        json("call-1"), "tools/call", json{{"name", "user"}, {"arguments", {{"operation", "ask"}, {"message", "?"}}}}));
    auto question = client_->wait_for([](const json& m) { return m.value("method", "") == "elicitation/create"; });
    ASSERT_TRUE(question);
    client_->send(jsonrpc::make_notification("notifications/cancelled", json{{"requestId", "call-1"}}));
    auto withdrawn = client_->wait_for([&](const json& m) {
        return m.value("method", "") == "notifications/cancelled" && m["params"]["requestId"] == (*question)["id"];
    });
    EXPECT_TRUE(withdrawn);
}

TEST_F(UserToolTest, BadArgumentsAndTheUnlockGate) {
    tools::UserToolOptions options;
    options.gate = tools::UnlockGate{true, "a1b2c3d4"};
    start(elicitation(), [](const json&) { return json{{"action", "accept"}, {"content", {{"answer", "y"}}}}; }, options);
    json r = call(json{{"message", "no operation"}});
    EXPECT_THAT(all_text(r), HasSubstr("'operation' is required"));
    r = call(json{{"operation", "ask"}, {"message", "?"}});
    EXPECT_TRUE(r.value("isError", false));
    EXPECT_THAT(all_text(r), HasSubstr("\"a1b2c3d4\""));
    r = call(json{{"operation", "ask"}, {"message", "?"}, {"timeout", -1}, {"tool_unlock_token", "a1b2c3d4"}});
    EXPECT_THAT(all_text(r), HasSubstr("'timeout' must be"));
    r = call(json{{"input", {{"operation", "ask"}, {"message", "?"}, {"tool_unlock_token", "a1b2c3d4"}}}});
    EXPECT_FALSE(r.value("isError", false)) << r.dump();
    EXPECT_EQ(r["structuredContent"]["content"]["answer"], "y");
    r = call(json{{"operation", "readme"}});
    EXPECT_THAT(all_text(r), HasSubstr("collect_api_key"));
}

TEST(HtmlToText, DropsMarkupKeepsStructure) {
    EXPECT_EQ(tools::html_to_text("<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
                                  "<body><h1>Title</h1><ul><li>one</li><li>two &lt;3</li></ul>"
                                  "<p>a&nbsp;&#65;&#x42;  c</p></body></html>"),
              "Title\n\n- one\n- two <3\n\na AB c");
    EXPECT_EQ(tools::html_to_text("plain text"), "plain text");
    EXPECT_EQ(tools::html_to_text("broken <b"), "broken");
    EXPECT_EQ(tools::html_to_text("&bogus; & ok"), "&bogus; & ok");
}

}  // namespace
