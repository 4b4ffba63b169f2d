// LiveOutput (batched, bounded live output) and ToolCallHost (the python tool's ExecutionHost),
// without Python: a recording client channel stands in for the client.

#include "python_mcp/tools/live_output.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "python_mcp/mcp/call_context.hpp"
#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/tools/tool_call_host.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp::tools {
namespace {

using ::testing::HasSubstr;
using json = pymcp::json;
using namespace std::chrono_literals;
using pymcp::testing::eventually;
using Clock = std::chrono::steady_clock;

struct Sink {
    std::mutex mutex;
    std::vector<std::string> messages;
    LiveOutput::Send send() {
        return [this](const std::string& m) {
            std::lock_guard lock(mutex);
            messages.push_back(m);
        };
    }
    std::vector<std::string> all() {
        std::lock_guard lock(mutex);
        return messages;
    }
    size_t size() {
        std::lock_guard lock(mutex);
        return messages.size();
    }
};

std::shared_ptr<LiveOutput> make(DeadlineTimer& timer, Sink& sink, std::chrono::milliseconds interval,
                                 size_t max_message = 4096) {
    return std::make_shared<LiveOutput>(LiveOutputOptions{interval, max_message}, timer, sink.send());
}

TEST(LiveOutput, FirstTextGoesAtOnce) {
    DeadlineTimer timer;
    Sink sink;
    auto live = make(timer, sink, 10s);  // a long interval: only the first message can come soon
    live->append("hello\n");
    ASSERT_TRUE(eventually([&] { return sink.size() == 1; }));
    EXPECT_EQ(sink.all()[0], "hello\n");
}

TEST(LiveOutput, LaterTextWaitsForTheIntervalAndFinishFlushesIt) {
    DeadlineTimer timer;
    Sink sink;
    auto live = make(timer, sink, 10s);
    live->append("a");
    ASSERT_TRUE(eventually([&] { return sink.size() == 1; }));
    live->append("b");
    live->append("c");
    EXPECT_EQ(sink.size(), 1u);  // the timer flushes it 10 s later; finish() does now
    live->finish();
    ASSERT_EQ(sink.size(), 2u);
    EXPECT_EQ(sink.all()[1], "bc");
    live->append("after the end");
    live->finish();
    EXPECT_EQ(sink.size(), 2u);
}

TEST(LiveOutput, BatchesAFloodAtTheInterval) {
    DeadlineTimer timer;
    Sink sink;
    auto live = make(timer, sink, 50ms);
    std::string all;
    auto start = Clock::now();
    for (int i = 0; Clock::now() - start < 400ms; ++i) {
        std::string line = "line " + std::to_string(i) + "\n";
        all += line;
        live->append(line);
    }
    double elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    live->finish();
    size_t sent = sink.size();
    EXPECT_LE(sent, elapsed_ms / 50 + 3) << "more than one message per interval";
    EXPECT_GE(sent, 1u);
    EXPECT_EQ(live->messages_sent(), sent);
    // Nothing is lost or reordered below the size bound... unless the bound cut it (then the
    // message says how much). Either way each message starts where the previous one ended.
    std::string joined;
    for (const auto& m : sink.all()) {
        auto marker = m.find("\xE2\x80\xA6 ");
        joined += marker == std::string::npos ? m : m.substr(0, marker);
    }
    EXPECT_EQ(all.substr(0, 5), joined.substr(0, 5));
}

TEST(LiveOutput, EachMessageIsBoundedAndSaysHowMuchWasLeftOut) {
    DeadlineTimer timer;
    Sink sink;
    auto live = make(timer, sink, 10s, 16);
    live->append("0123456789abcdef");  // exactly the bound: sent whole, at once
    ASSERT_TRUE(eventually([&] { return sink.size() == 1; }));
    EXPECT_EQ(sink.all()[0], "0123456789abcdef");
    live->append(std::string(1000, 'x'));
    live->append(std::string(24, 'y'));
    live->finish();
    ASSERT_EQ(sink.size(), 2u);
    EXPECT_EQ(sink.all()[1], std::string(16, 'x') + "\n\xE2\x80\xA6 1008 more bytes");
}

TEST(LiveOutput, CutsOnACharacterBoundary) {
    // "é" is two bytes: a cut at 5 bytes of "aaaaé" would split it.
    std::string m = LiveOutput::bounded_message("aaaa\xC3\xA9zz", 5, 0);
    EXPECT_EQ(m, "aaaa\n\xE2\x80\xA6 4 more bytes");
    EXPECT_EQ(LiveOutput::bounded_message("short", 16, 0), "short");
    EXPECT_EQ(LiveOutput::bounded_message("short\n", 16, 10), "short\n\xE2\x80\xA6 10 more bytes");
}

TEST(LiveOutput, OutlivedByItsTimerCallbackSafely) {
    DeadlineTimer timer;
    Sink sink;
    {
        auto live = make(timer, sink, 30ms);
        live->append("a");
        ASSERT_TRUE(eventually([&] { return sink.size() == 1; }));
        live->append("b");  // scheduled for 30 ms later, then the LiveOutput goes away
    }
    // The callback finds nothing to flush (weak_ptr): no crash, nothing sent.
    std::atomic<bool> later{false};
    timer.schedule(Clock::now() + 60ms, [&] { later = true; });
    ASSERT_TRUE(eventually([&] { return later.load(); }));
    EXPECT_EQ(sink.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// ToolCallHost

class RecordingChannel final : public mcp::ClientChannel {
public:
    void notify(const std::string& method, json params) override {
        std::lock_guard lock(mutex);
        sent.push_back(json{{"method", method}, {"params", std::move(params)}});
    }
    bool wants_log(const std::string&) const override { return true; }
    std::vector<json> progress() {
        std::lock_guard lock(mutex);
        std::vector<json> out;
        for (const auto& m : sent)
            if (m["method"] == "notifications/progress") out.push_back(m["params"]);
        return out;
    }
    std::mutex mutex;
    std::vector<json> sent;
};

class ToolCallHostTest : public ::testing::Test {
protected:
    void SetUp() override {
        mcp::ToolDefinition echo;
        echo.name = "echo";
        registry_.add(echo, mcp::blocking_handler([this](const json& args, mcp::CallContext& ctx) {
            seen_depth_ = ctx.depth();
            seen_caller_ = ctx.caller_session();
            return mcp::tool_result("echo", args);
        }));
        mcp::ToolDefinition remote;
        remote.name = "srv.tool";
        remote.meta = json{{"server", "srv"}, {"tool", "tool"}};
        registry_.add(remote, mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("r"); }));
        registry_.set_miss_handler([](const std::string& name, const CancellationToken&) -> bool {
            if (name.rfind("broken.", 0) == 0)
                throw mcp::UnknownToolError("Unknown tool: '" + name + "': server 'broken' failed to start");
            return false;
        });
    }
    mcp::CallContext context(json token) {
        return mcp::CallContext(cancel_.token(), 1, std::move(token), channel_);
    }

    mcp::ToolRegistry registry_;
    CancellationSource cancel_;
    std::shared_ptr<RecordingChannel> channel_ = std::make_shared<RecordingChannel>();
    int seen_depth_ = -1;
    std::string seen_caller_;
};

TEST_F(ToolCallHostTest, CallToolGoesThroughTheRegistryWithANestedContext) {
    ToolCallHost host(registry_, context("t"), nullptr);
    CancellationSource inner;
    json r = host.call_tool("echo", json{{"x", 1}}, "s1", inner.token());
    EXPECT_EQ(r["structuredContent"]["x"], 1);
    EXPECT_EQ(seen_depth_, 1);
    EXPECT_EQ(seen_caller_, "s1");
}

TEST_F(ToolCallHostTest, RejectedCallsAreHostErrors) {
    ToolCallHost host(registry_, context(nullptr), nullptr);
    EXPECT_THROW(host.call_tool("nope", json::object(), "s", CancellationToken()), engine::HostError);
    EXPECT_THROW(host.call_tool("echo", json::array(), "s", CancellationToken()), engine::HostError);
}

TEST_F(ToolCallHostTest, ListToolsCarriesMeta) {
    ToolCallHost host(registry_, context(nullptr), nullptr);
    json tools = host.list_tools();
    ASSERT_EQ(tools.size(), 2u);
    EXPECT_EQ(tools[0]["name"], "echo");
    EXPECT_FALSE(tools[0].contains("_meta"));
    EXPECT_EQ(tools[1]["_meta"]["server"], "srv");
    EXPECT_EQ(tools[1]["inputSchema"]["type"], "object");
}

TEST_F(ToolCallHostTest, WaitForServerGivesTheReason) {
    ToolCallHost host(registry_, context(nullptr), nullptr);
    EXPECT_EQ(host.wait_for_server("broken", CancellationToken()), "server 'broken' failed to start");
    EXPECT_EQ(host.wait_for_server("fine", CancellationToken()), "");
}

TEST_F(ToolCallHostTest, ProgressAndOutputShareOneIncreasingValue) {
    DeadlineTimer timer;
    auto ctx = context("tok");
    auto live = std::make_shared<LiveOutput>(LiveOutputOptions{}, timer, [ctx](const std::string& text) {
        ctx.report_status(std::nullopt, std::nullopt, text);
    });
    ToolCallHost host(registry_, ctx, live);
    host.progress(2, 10, "two");
    host.output(engine::OutputStream::Stdout, "printed\n");
    ASSERT_TRUE(eventually([&] { return channel_->progress().size() == 2; }));
    host.progress(1, std::nullopt, "lower");  // below the last value: sent just above it
    host.output(engine::OutputStream::Stderr, "more\n");
    host.finish();
    auto notes = channel_->progress();
    ASSERT_EQ(notes.size(), 4u);
    EXPECT_EQ(notes[0]["progress"], 2);
    EXPECT_EQ(notes[0]["total"], 10);
    EXPECT_EQ(notes[0]["message"], "two");
    EXPECT_GT(notes[1]["progress"].get<double>(), 2);
    EXPECT_LT(notes[1]["progress"].get<double>(), 2.001);
    EXPECT_EQ(notes[1]["total"], 10);  // the bar stays where the user left it
    EXPECT_EQ(notes[1]["message"], "printed\n");
    EXPECT_EQ(notes[2]["message"], "lower");
    EXPECT_EQ(notes[3]["message"], "more\n");
    for (size_t i = 1; i < notes.size(); ++i)
        EXPECT_GT(notes[i]["progress"].get<double>(), notes[i - 1]["progress"].get<double>());
    for (const auto& n : notes) EXPECT_EQ(n["progressToken"], "tok");
}

TEST_F(ToolCallHostTest, NothingIsSentWithoutAToken) {
    ToolCallHost host(registry_, context(nullptr), nullptr);
    host.progress(1, 2, "x");
    host.output(engine::OutputStream::Stdout, "y");
    host.finish();
    EXPECT_TRUE(channel_->progress().empty());
}

// Through a real server and client (in memory): a python-like tool whose handler streams live
// output reaches the client as progress notifications before its result.
TEST_F(ToolCallHostTest, LiveOutputReachesAClientBeforeTheResult) {
    DeadlineTimer timer;
    mcp::ToolDefinition streamer;
    streamer.name = "streamer";
    registry_.add(streamer, mcp::blocking_handler([&](const json&, mcp::CallContext& ctx) {
        auto live = std::make_shared<LiveOutput>(LiveOutputOptions{}, timer, [ctx](const std::string& text) {
            ctx.report_status(std::nullopt, std::nullopt, text);
        });
        ToolCallHost host(registry_, ctx, live);
        for (int i = 0; i < 3; ++i) host.output(engine::OutputStream::Stdout, "line " + std::to_string(i) + "\n");
        host.finish();
        return mcp::tool_result("done");
    }));
    mcp::Server server(registry_, mcp::ServerOptions{});
    pymcp::testing::McpTestClient client(server);
    client.initialize();
    client.send(json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"},
                     {"params", {{"name", "streamer"}, {"arguments", json::object()}, {"_meta", {{"progressToken", "p"}}}}}});
    auto answer = client.wait_for([](const json& m) { return m.value("id", json()) == 5; });
    ASSERT_TRUE(answer);
    std::string text;
    bool before = true;
    for (const auto& m : client.messages()) {
        if (m.value("id", json()) == 5) before = false;
        if (m.value("method", "") == "notifications/progress") {
            EXPECT_TRUE(before) << "progress after the result";
            text += m["params"]["message"].get<std::string>();
        }
    }
    EXPECT_EQ(text, "line 0\nline 1\nline 2\n");
}

}  // namespace
}  // namespace pymcp::tools
