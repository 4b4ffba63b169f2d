// DownstreamManager against real MCP servers (server-everything, server-filesystem and
// server-memory from tests/interop/node_modules, pinned) and against a small scripted server
// (Python) for what the real ones cannot be made to do: old protocol versions, pagination,
// requests to the client, garbage, silence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/client/downstream.hpp"
#include "python_mcp/client/mcp_client.hpp"
#include "python_mcp/client/subprocess.hpp"
#include "python_mcp/mcp/tool_registry.hpp"

using namespace pymcp;
using namespace pymcp::client;
using namespace std::chrono_literals;
using json = pymcp::json;
using clock_type = std::chrono::steady_clock;

namespace {

namespace fs = std::filesystem;

// The checkout: $PYMCP_SOURCE_DIR, else three levels up from this file, else /work/main.
fs::path source_dir() {
    if (const char* env = std::getenv("PYMCP_SOURCE_DIR"); env && *env) return env;
    fs::path here = fs::path(__FILE__).parent_path().parent_path().parent_path();
    if (fs::exists(here / "tests/interop/package.json")) return here;
    return "/work/main";
}

fs::path bin(const std::string& name) { return source_dir() / "tests/interop/node_modules/.bin" / name; }

// The real servers need node; without it these tests fail (they are not optional).
void require_node() {
    const char* path = std::getenv("PATH");
    ASSERT_TRUE(find_executable("node", path ? path : "").has_value()) << "node is not on PATH";
    ASSERT_TRUE(fs::exists(bin("mcp-server-everything")))
        << bin("mcp-server-everything") << " is missing: run npm ci in tests/interop";
}

DownstreamServerConfig everything(const std::string& name = "everything") {
    return {name, bin("mcp-server-everything").string(), {"stdio"}, {}, "", false};
}

std::string text_of(const json& result) {
    std::string out;
    if (result.contains("content"))
        for (const auto& c : result["content"])
            if (c.value("type", "") == "text") out += c.value("text", "");
    return out;
}

bool is_error(const json& result) { return result.value("isError", false); }

bool proc_gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    return !stat.good();
}

// A scripted MCP server: one thread per tools/call, so calls overlap and can be cancelled.
const char* kFakeServer = R"PY(
import json, os, sys, threading, time
mode = set(sys.argv[1:])
lock = threading.RLock()
cancels = []
pongs = []
extra = []
def send(m):
    with lock:
        sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def result(i, r): send({"jsonrpc": "2.0", "id": i, "result": r})
def text(t, err=False): return {"content": [{"type": "text", "text": t}], "isError": err}
tools = [{"name": "echo", "description": "echoes", "inputSchema": {"type": "object"},
          "icons": [{"src": "data:image/png;base64,iVBORw0KGgo=", "mimeType": "image/png", "sizes": ["16x16"]}]},
         {"name": "sleep", "inputSchema": {"type": "object"}},
         {"name": "cancels", "inputSchema": {"type": "object"}},
         {"name": "pongs", "inputSchema": {"type": "object"}},
         {"name": "add_tool", "inputSchema": {"type": "object"}},
         {"name": "crash", "inputSchema": {"type": "object"}},
         {"name": "huge", "inputSchema": {"type": "object"}},
         {"name": "rpc_error", "inputSchema": {"type": "object"}},
         {"name": "stderr", "inputSchema": {"type": "object"}},
         {"name": "progress", "inputSchema": {"type": "object"}},
         {"name": "silent", "inputSchema": {"type": "object"}}]
if "paged" in mode:
    tools += [{"name": "t%d" % k, "inputSchema": {"type": "object"}} for k in range(25)]
def call(i, name, args, meta):
    if name == "echo": return result(i, text("echo:" + json.dumps(args, sort_keys=True)))
    if name == "sleep":
        end = time.time() + args.get("seconds", 1)
        while time.time() < end:
            with lock:
                if i in cancels: return
            time.sleep(0.01)
        return result(i, text("slept"))
    if name == "cancels":
        with lock: return result(i, text(json.dumps(cancels)))
    if name == "pongs":
        with lock: return result(i, text(json.dumps(pongs)))
    if name == "add_tool":
        with lock: extra.append({"name": "extra%d" % len(extra), "inputSchema": {"type": "object"}})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return result(i, text("added"))
    if name == "crash": os._exit(3)
    if name == "huge":
        with lock:
            sys.stdout.write('{"jsonrpc": "2.0", "method": "x", "params": {"pad": "' + "x" * args.get("bytes", 10000) + '"}}\n')
            sys.stdout.flush()
        return
    if name == "rpc_error":
        return send({"jsonrpc": "2.0", "id": i, "error": {"code": -32602, "message": "bad arguments, friend"}})
    if name == "stderr":
        sys.stderr.write("a line for the log\n"); sys.stderr.flush()
        return result(i, text("ok"))
    if name == "progress":
        token = meta.get("progressToken")
        for k in range(1, 4):
            if token is not None:
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": k, "total": 3, "message": "step %d" % k}})
            time.sleep(0.02)
        return result(i, text("done"))
    if name == "silent": return
    return send({"jsonrpc": "2.0", "id": i, "error": {"code": -32602, "message": "Unknown tool: " + name}})
for line in sys.stdin:
    if not line.strip(): continue
    m = json.loads(line)
    method, i = m.get("method"), m.get("id")
    if method is None:
        with lock: pongs.append(m)
        continue
    p = m.get("params") or {}
    if method == "initialize":
        if "no-init" in mode: continue
        if "slow-init" in mode: time.sleep(1)
        v = os.environ.get("FAKE_VERSION") or p.get("protocolVersion")
        result(i, {"protocolVersion": v, "capabilities": {"tools": {"listChanged": True}},
                   "serverInfo": {"name": "fake", "version": "1.0"}})
    elif method == "notifications/initialized":
        if "garbage" in mode:
            with lock: sys.stdout.write("this is not json\n"); sys.stdout.flush()
        if "ping-us" in mode:
            send({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
            send({"jsonrpc": "2.0", "id": "srv-2", "method": "roots/list"})
    elif method == "notifications/cancelled":
        with lock: cancels.append(p.get("requestId"))
    elif method == "tools/list":
        with lock: all_tools = tools + extra
        if "paged" in mode:
            start = int(p.get("cursor") or 0)
            page = all_tools[start:start + 10]
            r = {"tools": page}
            if start + 10 < len(all_tools): r["nextCursor"] = str(start + 10)
            result(i, r)
        else:
            result(i, {"tools": all_tools})
    elif method == "ping":
        result(i, {})
    elif method == "tools/call":
        threading.Thread(target=call, args=(i, p.get("name"), p.get("arguments") or {}, p.get("_meta") or {}),
                         daemon=True).start()
    elif i is not None:
        send({"jsonrpc": "2.0", "id": i, "error": {"code": -32601, "message": "nope"}})
)PY";

class Downstream : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("pymcp-ds-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
        std::ofstream(dir_ / "fake_server.py") << kFakeServer;
        log_sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
        spdlog::default_logger()->sinks().push_back(log_sink_);
        // The tests read info lines; other files of the unit_tests binary quiet the log.
        saved_level_ = spdlog::get_level();
        spdlog::set_level(spdlog::level::info);
    }
    void TearDown() override {
        spdlog::set_level(saved_level_);
        auto& sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), log_sink_), sinks.end());
        fs::remove_all(dir_);
    }

    DownstreamServerConfig fake(const std::string& name, std::vector<std::string> modes = {},
                                std::map<std::string, std::string> env = {}) {
        std::vector<std::string> args{"-u", (dir_ / "fake_server.py").string()};
        args.insert(args.end(), modes.begin(), modes.end());
        return {name, "python3", args, env, "", false};
    }

    std::string logged() {
        std::lock_guard lock(log_mutex_);
        return log_.str();
    }

    static json call(mcp::ToolRegistry& registry, const std::string& name, const json& args = json::object()) {
        mcp::CallContext context;
        return registry.call(name, args, context);
    }

    fs::path dir_;
    std::ostringstream log_;
    std::mutex log_mutex_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_sink_;
    spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

}  // namespace

TEST_F(Downstream, EverythingEchoThroughTheRegistryRightAfterStart) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    auto began = clock_type::now();
    manager.start({everything()});
    // No waiting: the miss handler holds the call until the server is up.
    json r = call(registry, "everything.echo", {{"message", "hello"}});
    auto first = clock_type::now() - began;
    EXPECT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(text_of(r), "Echo: hello");
    std::printf("spawn to first echo answered: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(first).count()));

    // Latency of a call through the registry and the manager.
    std::vector<double> us;
    for (int i = 0; i < 300; ++i) {
        std::string message = std::to_string(i);
        auto t0 = clock_type::now();
        json e = call(registry, "everything.echo", {{"message", message}});
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        ASSERT_EQ(text_of(e), "Echo: " + message);
    }
    std::sort(us.begin(), us.end());
    std::printf("everything.echo via registry+manager: median %.0f us, p90 %.0f us, max %.0f us (300 calls)\n",
                us[us.size() / 2], us[us.size() * 9 / 10], us.back());

    auto st = manager.status()["everything"];
    EXPECT_EQ(st["state"], "running") << st.dump();
    EXPECT_GT(st["tools"].get<int>(), 5);
    EXPECT_EQ(st["protocol_version"], "2025-11-25");
    EXPECT_TRUE(st["last_error"].is_null());
}

TEST_F(Downstream, RegistryEntriesCopyTheToolAndStayUnexposed) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({everything()});
    ASSERT_TRUE(manager.wait_started(20s));
    auto echo = registry.find("everything.echo");
    ASSERT_TRUE(echo.has_value());
    EXPECT_FALSE(echo->exposed);
    EXPECT_EQ(echo->description, "Echoes back the input string");
    EXPECT_EQ(echo->input_schema["properties"]["message"]["type"], "string");
    EXPECT_EQ(echo->meta["server"], "everything");
    EXPECT_EQ(echo->meta["tool"], "echo");

    // A structured-output tool: outputSchema copied, structuredContent passed through.
    auto structured = registry.find("everything.get-structured-content");
    ASSERT_TRUE(structured.has_value());
    EXPECT_TRUE(structured->output_schema.is_object());
    json r = call(registry, "everything.get-structured-content", {{"location", "Chicago"}});
    EXPECT_FALSE(is_error(r)) << r.dump();
    ASSERT_TRUE(r.contains("structuredContent")) << r.dump();
    EXPECT_TRUE(r["structuredContent"].contains("temperature")) << r.dump();

    // Other content types pass through as sent.
    json sum = call(registry, "everything.get-sum", {{"a", 2}, {"b", 40}});
    EXPECT_NE(text_of(sum).find("42"), std::string::npos) << sum.dump();
    json image = call(registry, "everything.get-tiny-image");
    bool has_image = false;
    for (const auto& c : image["content"]) has_image = has_image || c.value("type", "") == "image";
    EXPECT_TRUE(has_image) << image.dump().substr(0, 300);

    // The server's own validation failure comes back as its result (isError), not a throw.
    json bad = call(registry, "everything.get-sum", {{"a", "x"}});
    EXPECT_TRUE(is_error(bad)) << bad.dump();
}

TEST_F(Downstream, ExposeListsTheTools) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.expose = true;
    DownstreamManager manager(registry, options);
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));
    auto echo = registry.find("fake.echo");
    ASSERT_TRUE(echo.has_value());
    EXPECT_TRUE(echo->exposed);
    // The server's icons are listed with the tool, as the server gave them.
    json listed = echo->to_json();
    ASSERT_TRUE(listed.contains("icons")) << listed.dump();
    EXPECT_EQ(listed["icons"][0]["mimeType"], "image/png");
    EXPECT_EQ(listed["icons"][0]["sizes"], json::array({"16x16"}));
}

TEST_F(Downstream, TenConcurrentCallsAreMultiplexed) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({everything()});
    ASSERT_TRUE(manager.wait_started(20s));
    // Ten one-second operations at once: multiplexed, they take about one second, not ten.
    std::vector<std::thread> threads;
    std::vector<json> results(10);
    auto began = clock_type::now();
    for (int i = 0; i < 10; ++i)
        threads.emplace_back([&, i] {
            results[i] = call(registry, "everything.trigger-long-running-operation", {{"duration", 1}, {"steps", 2}});
        });
    for (auto& t : threads) t.join();
    auto took = clock_type::now() - began;
    for (const auto& r : results) EXPECT_FALSE(is_error(r)) << r.dump();
    EXPECT_LT(took, 4s);
    std::printf("10 concurrent 1 s operations: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

    // And ten echoes at once, each getting its own answer.
    threads.clear();
    std::vector<std::string> texts(10);
    for (int i = 0; i < 10; ++i)
        threads.emplace_back([&, i] { texts[i] = text_of(call(registry, "everything.echo", {{"message", std::to_string(i)}})); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 10; ++i) EXPECT_EQ(texts[i], "Echo: " + std::to_string(i));
}

TEST_F(Downstream, FilesystemWriteThenRead) {
    require_node();
    auto root = dir_ / "files";
    fs::create_directories(root);
    root = fs::canonical(root);
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({{"filesystem", bin("mcp-server-filesystem").string(), {root.string()}, {}, "", false},
                   {"memory", bin("mcp-server-memory").string(), {}, {{"MEMORY_FILE_PATH", (dir_ / "memory.jsonl").string()}}, "", false}});
    auto file = (root / "note.txt").string();
    json w = call(registry, "filesystem.write_file", {{"path", file}, {"content", "line one\nline two\n"}});
    EXPECT_FALSE(is_error(w)) << w.dump();
    json r = call(registry, "filesystem.read_text_file", {{"path", file}});
    EXPECT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(text_of(r), "line one\nline two\n");
    std::ifstream in(file);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first, "line one");
    // Outside its root the server refuses: an isError result, passed through.
    json denied = call(registry, "filesystem.read_text_file", {{"path", "/etc/hostname"}});
    EXPECT_TRUE(is_error(denied)) << denied.dump();

    json m = call(registry, "memory.create_entities",
                  {{"entities", json::array({{{"name", "python-mcp"}, {"entityType", "project"}, {"observations", {"embeds CPython"}}}})}});
    EXPECT_FALSE(is_error(m)) << m.dump();
    json g = call(registry, "memory.read_graph");
    EXPECT_NE(g.dump().find("embeds CPython"), std::string::npos) << g.dump();
}

TEST_F(Downstream, KilledDuringALongCallFailsThenRestarts) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({everything()});
    ASSERT_TRUE(manager.wait_started(20s));
    pid_t pid = manager.status()["everything"]["pid"].get<pid_t>();
    ASSERT_GT(pid, 0);

    json long_result;
    std::thread caller([&] {
        long_result = call(registry, "everything.trigger-long-running-operation", {{"duration", 20}, {"steps", 20}});
    });
    std::this_thread::sleep_for(500ms);
    auto killed_at = clock_type::now();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    caller.join();
    EXPECT_LT(clock_type::now() - killed_at, 2s);
    EXPECT_TRUE(is_error(long_result)) << long_result.dump();
    std::string message = text_of(long_result);
    EXPECT_THAT(message, ::testing::HasSubstr("everything.trigger-long-running-operation"));
    EXPECT_THAT(message, ::testing::HasSubstr("server 'everything' exited (signal 9"));
    EXPECT_THAT(message, ::testing::HasSubstr("it is restarted on the next call"));

    // The next call brings it back (after the first backoff step).
    json again = call(registry, "everything.echo", {{"message", "back"}});
    EXPECT_EQ(text_of(again), "Echo: back") << again.dump();
    auto st = manager.status()["everything"];
    EXPECT_EQ(st["state"], "running");
    EXPECT_EQ(st["restarts"], 1);
    EXPECT_NE(st["pid"].get<pid_t>(), pid);
    EXPECT_TRUE(proc_gone(pid));  // the killed one was reaped
}

TEST_F(Downstream, MissingCommandIsReportedAndOthersWork) {
    require_node();
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({{"ghost", "pymcp-no-such-server-4711", {}, {}, "", false}, everything(),
                   {"off", "whatever", {}, {}, "", true}});
    ASSERT_TRUE(manager.wait_started(20s));
    auto st = manager.status();
    EXPECT_EQ(st["ghost"]["state"], "down");
    EXPECT_EQ(st["ghost"]["last_error"], "cannot start server 'ghost': command 'pymcp-no-such-server-4711' not found");
    EXPECT_EQ(st["off"]["state"], "disabled");
    EXPECT_EQ(st["everything"]["state"], "running");
    EXPECT_EQ(text_of(call(registry, "everything.echo", {{"message", "x"}})), "Echo: x");
    // A call to the broken server fails promptly (one more start attempt), saying why.
    auto began = clock_type::now();
    auto unknown_because = [&](const std::string& name) -> std::string {
        try {
            call(registry, name);
        } catch (const mcp::UnknownToolError& e) {
            return e.what();
        }
        return "(no UnknownToolError)";
    };
    EXPECT_THAT(unknown_because("ghost.anything"),
                ::testing::AllOf(::testing::HasSubstr("Unknown tool: 'ghost.anything'"),
                                 ::testing::HasSubstr("command 'pymcp-no-such-server-4711' not found")));
    EXPECT_EQ(unknown_because("off.anything"),
              "Unknown tool: 'off.anything': server 'off' is disabled in the configuration");
    // A tool the running server does not have is plainly unknown.
    EXPECT_EQ(unknown_because("everything.no_such_tool"), "Unknown tool: 'everything.no_such_tool'");
    EXPECT_FALSE(registry.resolve("everything.no_such_tool", CancellationToken{}).has_value());
    EXPECT_THROW(registry.resolve("ghost.x", CancellationToken{}), mcp::UnknownToolError);
    EXPECT_LT(clock_type::now() - began, 3s);
    EXPECT_THAT(logged(), ::testing::HasSubstr("command 'pymcp-no-such-server-4711' not found"));
}

TEST_F(Downstream, ShutdownLeavesNoChildAndNoTools) {
    require_node();
    mcp::ToolRegistry registry;
    std::vector<pid_t> pids;
    {
        DownstreamManager manager(registry, {});
        manager.start({everything(), everything("second"), fake("fake", {"paged"})});
        ASSERT_TRUE(manager.wait_started(20s));
        json status = manager.status();
        for (auto& [name, s] : status.items()) {
            ASSERT_EQ(s["state"], "running") << name << ": " << s.dump();
            pids.push_back(s["pid"].get<pid_t>());
        }
        EXPECT_GT(registry.size(), 20u);
        // A call in flight at shutdown fails instead of hanging.
        json in_flight;
        std::thread caller([&] { in_flight = call(registry, "fake.sleep", {{"seconds", 30}}); });
        std::this_thread::sleep_for(200ms);
        auto began = clock_type::now();
        manager.shutdown(2s);
        auto took = clock_type::now() - began;
        caller.join();
        EXPECT_TRUE(is_error(in_flight));
        EXPECT_EQ(text_of(in_flight), "call to 'fake.sleep' failed: python-mcp is shutting down");
        EXPECT_LT(took, 3s);  // every child ends on stdin EOF; none needs the SIGTERM step
        std::printf("shutdown of 3 servers: %lld ms\n",
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
        json after = manager.status();
        for (auto& [name, s] : after.items()) EXPECT_EQ(s["state"], "stopped") << name;
        // After shutdown a call finds nothing and does not hang.
        EXPECT_THROW(call(registry, "everything.echo", {{"message", "x"}}), mcp::UnknownToolError);
    }
    EXPECT_EQ(registry.size(), 0u);
    for (pid_t pid : pids) EXPECT_TRUE(proc_gone(pid)) << pid;
}

TEST_F(Downstream, OldProtocolVersionAndPaginationAndServerRequests) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({fake("old", {"paged", "ping-us", "garbage"}, {{"FAKE_VERSION", "2024-11-05"}}),
                   fake("future", {}, {{"FAKE_VERSION", "2099-01-01"}})});
    ASSERT_TRUE(manager.wait_started(20s));
    auto st = manager.status();
    EXPECT_EQ(st["old"]["state"], "running") << st.dump();
    EXPECT_EQ(st["old"]["protocol_version"], "2024-11-05");
    EXPECT_EQ(st["old"]["tools"], 36);  // 11 + 25 over four pages
    EXPECT_TRUE(registry.find("old.t24").has_value());
    EXPECT_EQ(st["future"]["state"], "down");
    EXPECT_THAT(st["future"]["last_error"].get<std::string>(), ::testing::HasSubstr("2099-01-01"));
    // Our answers to its ping and roots/list, as the server saw them.
    json pongs = json::parse(text_of(call(registry, "old.pongs")));
    ASSERT_EQ(pongs.size(), 2u) << pongs.dump();
    EXPECT_EQ(pongs[0]["id"], "srv-1");
    EXPECT_EQ(pongs[0]["result"], json::object());
    EXPECT_EQ(pongs[1]["id"], "srv-2");
    EXPECT_EQ(pongs[1]["error"]["code"], -32601);
    // The garbage line was skipped with a warning.
    EXPECT_THAT(logged(), ::testing::HasSubstr("not JSON-RPC"));
    EXPECT_EQ(text_of(call(registry, "old.echo", {{"a", 1}})), "echo:{\"a\": 1}");
}

TEST_F(Downstream, ToolsListChangedRefreshesTheRegistry) {
    mcp::ToolRegistry registry;
    std::atomic<int> changes{0};
    registry.subscribe([&] { ++changes; });
    DownstreamManager manager(registry, {});
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));
    int before = changes.load();
    EXPECT_FALSE(registry.find("fake.extra0").has_value());
    call(registry, "fake.add_tool");
    for (int i = 0; i < 200 && !registry.find("fake.extra0"); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(registry.find("fake.extra0").has_value());
    EXPECT_EQ(changes.load(), before + 1);  // only the new tool was added; the rest left alone
    EXPECT_EQ(manager.status()["fake"]["tools"], 12);
}

TEST_F(Downstream, CancellationSendsNotificationsCancelled) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));
    CancellationSource source;
    mcp::CallContext context(source.token(), json(7), nullptr, nullptr);
    std::thread canceller([&] {
        std::this_thread::sleep_for(200ms);
        source.cancel("user interrupted");
    });
    auto began = clock_type::now();
    json r = registry.call("fake.sleep", {{"seconds", 20}}, context);
    canceller.join();
    EXPECT_LT(clock_type::now() - began, 2s);
    EXPECT_TRUE(is_error(r));
    EXPECT_EQ(text_of(r), "cancelled");
    // The server heard about it, and is still fine.
    json cancels;
    for (int i = 0; i < 100; ++i) {
        cancels = json::parse(text_of(call(registry, "fake.cancels")));
        if (!cancels.empty()) break;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(cancels.size(), 1u);
    EXPECT_TRUE(cancels[0].is_number_integer());
    EXPECT_EQ(manager.status()["fake"]["restarts"], 0);
}

TEST_F(Downstream, CallTimeoutAndRpcErrorsAreToolErrors) {
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.call_timeout = 300ms;
    DownstreamManager manager(registry, options);
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));
    json r = call(registry, "fake.silent");
    EXPECT_TRUE(is_error(r));
    EXPECT_THAT(text_of(r), ::testing::HasSubstr("call to 'fake.silent' failed: server 'fake' did not answer within 0.3 s"));
    json e = call(registry, "fake.rpc_error");
    EXPECT_TRUE(is_error(e));
    EXPECT_THAT(text_of(e), ::testing::HasSubstr("JSON-RPC error -32602: bad arguments, friend"));
    // The timed-out request was cancelled downstream; the connection is still good.
    json cancels = json::parse(text_of(call(registry, "fake.cancels")));
    EXPECT_EQ(cancels.size(), 1u);
    EXPECT_EQ(manager.status()["fake"]["restarts"], 0);
}

TEST_F(Downstream, StderrGoesToTheLogAndProgressIsForwarded) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, {});
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));
    EXPECT_EQ(text_of(call(registry, "fake.stderr")), "ok");
    for (int i = 0; i < 100 && logged().find("[fake] a line for the log") == std::string::npos; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_THAT(logged(), ::testing::HasSubstr("[fake] a line for the log"));

    // Progress from the server reaches the caller's context as notifications/progress.
    struct Channel : mcp::ClientChannel {
        std::mutex m;
        std::vector<json> sent;
        void notify(const std::string& method, json params) override {
            std::lock_guard lock(m);
            sent.push_back({{"method", method}, {"params", params}});
        }
        bool wants_log(const std::string&) const override { return true; }
    };
    auto channel = std::make_shared<Channel>();
    mcp::CallContext context(CancellationToken(), json(1), json("tok"), channel);
    json r = registry.call("fake.progress", json::object(), context);
    EXPECT_EQ(text_of(r), "done");
    ASSERT_EQ(channel->sent.size(), 3u);
    EXPECT_EQ(channel->sent[2]["params"]["progress"], 3);
    EXPECT_EQ(channel->sent[2]["params"]["progressToken"], "tok");
    EXPECT_EQ(channel->sent[2]["params"]["message"], "step 3");
}

TEST_F(Downstream, ProtocolBreakAndCrashFailTheCallAndRestart) {
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.max_message_bytes = 4096;
    options.backoff_initial = 100ms;
    DownstreamManager manager(registry, options);
    manager.start({fake("fake")});
    ASSERT_TRUE(manager.wait_started(20s));

    // An over-long message: the connection is unusable, the waiting call fails at once.
    json in_flight;
    std::thread caller([&] { in_flight = call(registry, "fake.sleep", {{"seconds", 10}}); });
    std::this_thread::sleep_for(100ms);
    json huge = call(registry, "fake.huge", {{"bytes", 10000}});
    caller.join();
    EXPECT_TRUE(is_error(huge));
    EXPECT_THAT(text_of(huge), ::testing::HasSubstr("longer than 4096 bytes"));
    EXPECT_TRUE(is_error(in_flight));
    EXPECT_THAT(text_of(in_flight), ::testing::HasSubstr("broke the protocol"));
    EXPECT_EQ(text_of(call(registry, "fake.echo")), "echo:{}");

    // A crash: the call that caused it fails with the exit status; the next one works.
    json crash = call(registry, "fake.crash");
    EXPECT_TRUE(is_error(crash));
    EXPECT_THAT(text_of(crash), ::testing::HasSubstr("exited (exit status 3)"));
    EXPECT_EQ(text_of(call(registry, "fake.echo")), "echo:{}");
    EXPECT_EQ(manager.status()["fake"]["restarts"], 2);
}

TEST_F(Downstream, SlowStartIsWaitedForAndSilentStartTimesOut) {
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.start_timeout = 2500ms;
    DownstreamManager manager(registry, options);
    auto began = clock_type::now();
    manager.start({fake("slow", {"slow-init"}), fake("mute", {"no-init"})});
    EXPECT_LT(clock_type::now() - began, 200ms);  // start() does not wait
    json r = call(registry, "slow.echo", {{"x", 1}});
    EXPECT_EQ(text_of(r), "echo:{\"x\": 1}");
    EXPECT_GE(clock_type::now() - began, 1s);
    ASSERT_TRUE(manager.wait_started(10s));
    auto st = manager.status()["mute"];
    EXPECT_EQ(st["state"], "down");
    EXPECT_THAT(st["last_error"].get<std::string>(), ::testing::HasSubstr("did not finish starting within 2.5 s"));
    EXPECT_TRUE(st["pid"].is_null());
}

TEST_F(Downstream, BackoffGrowsAndFailsFastWhenTooFarAway) {
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.start_timeout = 1s;
    options.backoff_initial = 2s;
    DownstreamManager manager(registry, options);
    manager.start({{"ghost", "pymcp-no-such-server-4711", {}, {}, "", false}});
    ASSERT_TRUE(manager.wait_started(5s));
    // The next attempt is 2 s away, more than a call may wait: fail at once, saying so.
    auto began = clock_type::now();
    EXPECT_THROW(call(registry, "ghost.x"), mcp::UnknownToolError);
    EXPECT_LT(clock_type::now() - began, 500ms);
    EXPECT_THAT(logged(), ::testing::HasSubstr("next restart is allowed in"));
    EXPECT_EQ(manager.status()["ghost"]["failures"], 1);
}

TEST_F(Downstream, BackoffDoublesAndAShortOneIsWaitedOut) {
    mcp::ToolRegistry registry;
    DownstreamOptions options;
    options.backoff_initial = 200ms;
    DownstreamManager manager(registry, options);
    manager.start({{"ghost", "pymcp-no-such-server-4711", {}, {}, "", false}});
    ASSERT_TRUE(manager.wait_started(5s));
    auto st = manager.status()["ghost"];
    EXPECT_EQ(st["failures"], 1);
    EXPECT_LE(st["retry_in_ms"].get<int>(), 200);
    // The call waits out the short backoff, the keeper tries again, fails again.
    auto began = clock_type::now();
    EXPECT_THROW(call(registry, "ghost.x"), mcp::UnknownToolError);
    EXPECT_GE(clock_type::now() - began, 100ms);
    st = manager.status()["ghost"];
    EXPECT_EQ(st["failures"], 2);
    EXPECT_GT(st["retry_in_ms"].get<int>(), 200);  // 400 ms now (200 after the first failure)
    EXPECT_LE(st["retry_in_ms"].get<int>(), 400);
    EXPECT_EQ(st["restarts"], 0);
}

TEST(McpClientDirect, EchoRoundTrip) {
    require_node();
    SpawnOptions spawn;
    spawn.command = bin("mcp-server-everything").string();
    spawn.args = {"stdio"};
    McpClientOptions options;
    options.name = "everything";
    McpClient client(Subprocess::spawn(spawn), options);
    client.initialize({{"name", "test"}, {"version", "0"}}, clock_type::now() + 20s, {});
    EXPECT_EQ(client.protocol_version(), "2025-11-25");
    auto tools = client.list_tools(clock_type::now() + 10s, {});
    EXPECT_GT(tools.size(), 5u);
    std::vector<double> us;
    for (int i = 0; i < 300; ++i) {
        auto t0 = clock_type::now();
        json r = client.call_tool("echo", {{"message", "x"}}, 10s, {});
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
        ASSERT_EQ(text_of(r), "Echo: x");
    }
    std::sort(us.begin(), us.end());
    std::printf("everything echo via McpClient directly: median %.0f us, p90 %.0f us (300 calls)\n",
                us[us.size() / 2], us[us.size() * 9 / 10]);
    pid_t pid = client.pid();
    auto began = clock_type::now();
    int status = client.close(2s);
    EXPECT_LT(clock_type::now() - began, 1500ms);  // exits on stdin EOF
    std::printf("everything exit on stdin EOF: %s after %lld ms\n", describe_wait_status(status).c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - began).count()));
    EXPECT_TRUE(proc_gone(pid));
}
