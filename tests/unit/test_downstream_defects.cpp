// Regression tests for the downstream defects of issue 11, each against a small scripted server
// (python3.11) doing what no well-behaved server does on purpose:
//   1. answers nested deeper than the old 128-level limit (accepted up to the client's limit;
//      beyond it the call fails at once instead of hanging until --downstream-timeout);
//   2. a server that stops reading its stdin while a request is being written (the write honours
//      the caller's cancellation, a queued writer too, and a half-written line ends the connection
//      so later calls go to a restarted server instead of a corrupted stream);
//   3. 2,000 tools registered as one batch (one change notification, not one per tool);
//   4. a server that fails to start: the stderr lines that explain it, not `npm notice`.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/client/downstream.hpp"
#include "python_mcp/client/mcp_client.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "support/eventually.hpp"

using namespace pymcp;
using namespace pymcp::client;
using namespace std::chrono_literals;
using json = pymcp::json;
using clock_type = std::chrono::steady_clock;
using pymcp::testing::eventually;

namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3.11";

// Options: tools=N (that many extra tools t0..), stderr-file=PATH (copied to stderr, then exit 1
// before answering anything). Tools: echo; deep {levels, id_last} answers nested `levels` deep
// (the message object counts as level 1) with the id first or, as the TypeScript SDK writes it,
// last; deaf answers, then never reads stdin again; exit {code} writes stderr-file and exits;
// retitle changes t0's description and says notifications/tools/list_changed.
const char* kServer = R"PY(
import json, os, sys, threading
opts = dict((a.split("=", 1) + ["1"])[:2] for a in sys.argv[1:])
out_lock = threading.Lock()
def send_text(s):
    with out_lock:
        sys.stdout.write(s + "\n"); sys.stdout.flush()
def send(m): send_text(json.dumps(m))
def result(i, r): send({"jsonrpc": "2.0", "id": i, "result": r})
def text(t): return {"content": [{"type": "text", "text": t}]}
def replay_stderr():
    with open(opts["stderr-file"]) as f: sys.stderr.write(f.read())
    sys.stderr.flush()
if "stderr-file" in opts and "exit-later" not in opts:
    replay_stderr(); sys.exit(1)
t0_description = "tool number 0"
def tool_list():
    tools = [{"name": n, "inputSchema": {"type": "object"}} for n in ("echo", "deep", "deaf", "exit", "retitle")]
    for k in range(int(opts.get("tools", "0"))):
        tools.append({"name": "t%d" % k, "description": t0_description if k == 0 else "tool number %d" % k,
                      "inputSchema": {"type": "object", "properties": {"x": {"type": "integer"}}}})
    return tools
def deep(i, levels, id_last):
    arrays = levels - 3  # message, result, structuredContent
    res = '{"content":[{"type":"text","text":"deep %d"}],"structuredContent":{"v":%s}}' % (
        levels, "[" * arrays + "]" * arrays)
    if id_last: send_text('{"result":%s,"jsonrpc":"2.0","id":%d}' % (res, i))
    else: send_text('{"jsonrpc":"2.0","id":%d,"result":%s}' % (i, res))
deaf = False
for line in sys.stdin:
    if not line.strip(): continue
    m = json.loads(line)
    method, i, p = m.get("method"), m.get("id"), m.get("params") or {}
    if method == "initialize":
        result(i, {"protocolVersion": p.get("protocolVersion"), "capabilities": {"tools": {"listChanged": True}},
                   "serverInfo": {"name": "defects", "version": "1.0"}})
    elif method == "tools/list":
        result(i, {"tools": tool_list()})
    elif method == "tools/call":
        name, args = p.get("name"), p.get("arguments") or {}
        if name == "echo" or name.startswith("t"): result(i, text("echo:%d" % len(json.dumps(args))))
        elif name == "deep": deep(i, int(args["levels"]), bool(args.get("id_last")))
        elif name == "deaf":
            result(i, text("deaf from now on")); deaf = True
        elif name == "exit":
            replay_stderr(); os._exit(int(args.get("code", 2)))
        elif name == "retitle":
            t0_description = "renamed"
            result(i, text("ok"))
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        else: send({"jsonrpc": "2.0", "id": i, "error": {"code": -32602, "message": "unknown " + str(name)}})
    if deaf: threading.Event().wait()  # alive, never reading stdin again
)PY";

std::string text_of(const json& result) {
    std::string out;
    if (result.contains("content"))
        for (const auto& c : result["content"])
            if (c.value("type", "") == "text") out += c.value("text", "");
    return out;
}

bool is_error(const json& result) { return result.value("isError", false); }

// Bytes waiting unread in the pipe that is fd 0 of process `pid` (opened through /proc without
// reading from it); -1 when it cannot be opened.
long unread_stdin_bytes(long pid) {
    int fd = ::open(("/proc/" + std::to_string(pid) + "/fd/0").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    int n = -1;
    if (::ioctl(fd, FIONREAD, &n) != 0) n = -1;
    ::close(fd);
    return n;
}

class DownstreamDefects : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("pymcp-dsd-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
        std::ofstream(dir_ / "server.py") << kServer;
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

    DownstreamServerConfig fake(std::vector<std::string> opts = {}) {
        std::vector<std::string> args{"-u", (dir_ / "server.py").string()};
        args.insert(args.end(), opts.begin(), opts.end());
        return {"fake", kPython, args, {}, "", false};
    }

    std::string stderr_file(const std::string& content) {
        auto path = dir_ / "stderr.txt";
        std::ofstream(path) << content;
        return "stderr-file=" + path.string();
    }

    static json call(mcp::ToolRegistry& registry, const std::string& name, const json& args = json::object(),
                     const CancellationToken& cancel = {}) {
        mcp::CallContext context(cancel, nullptr, nullptr, nullptr);
        return registry.call(name, args, context);
    }

    static DownstreamOptions options(std::chrono::milliseconds call_timeout = 30s) {
        DownstreamOptions o;
        o.call_timeout = call_timeout;
        return o;
    }

    fs::path dir_;
    std::ostringstream log_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_sink_;
    spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

}  // namespace

// ---- 1. deep answers ---------------------------------------------------------------------------

TEST_F(DownstreamDefects, AnswerNestedDeeperThan128LevelsIsAccepted) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options());
    manager.start({fake()});
    ASSERT_TRUE(manager.wait_started(20s));
    for (int levels : {129, 1000, 2048}) {  // 2048: the limit
        for (bool id_last : {false, true}) {
            json r = call(registry, "fake.deep", {{"levels", levels}, {"id_last", id_last}});
            ASSERT_FALSE(is_error(r)) << levels << ": " << text_of(r);
            EXPECT_EQ(text_of(r), "deep " + std::to_string(levels));
            const json* v = &r["structuredContent"]["v"];
            int depth = 3;
            while (v->is_array() && !v->empty()) {
                v = &(*v)[0];
                ++depth;
            }
            EXPECT_EQ(depth + (v->is_array() ? 1 : 0), levels);
        }
    }
}

TEST_F(DownstreamDefects, AnswerBeyondTheNestingLimitFailsTheCallAtOnce) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options(120s));
    manager.start({fake()});
    ASSERT_TRUE(manager.wait_started(20s));
    for (auto [levels, id_last] : {std::pair{2049, false}, std::pair{100000, false}, std::pair{100000, true}}) {
        auto began = clock_type::now();
        json r = call(registry, "fake.deep", {{"levels", levels}, {"id_last", id_last}});
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - began);
        EXPECT_TRUE(is_error(r));
        // Not the time-out (120 s): the answer was recognised by its id and the call failed.
        EXPECT_NE(text_of(r).find("call to 'fake.deep' failed: server 'fake' sent an answer python-mcp cannot read"),
                  std::string::npos)
            << text_of(r);
        EXPECT_NE(text_of(r).find("nested deeper than"), std::string::npos) << text_of(r);
        std::printf("%d-level answer (id %s) failed its call in %lld ms\n", levels, id_last ? "last" : "first",
                    static_cast<long long>(took.count()));
    }
    // The line was whole: the connection is fine and the server was not restarted.
    EXPECT_EQ(text_of(call(registry, "fake.echo", {{"a", 1}})), "echo:8");
    EXPECT_EQ(manager.status()["fake"]["restarts"], 0);
}

// ---- 2. writing to a server that stopped reading ----------------------------------------------

TEST_F(DownstreamDefects, CancellingACallStuckWritingToADeafServerReturnsAndTheServerIsRestarted) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options(120s));
    manager.start({fake()});
    ASSERT_TRUE(manager.wait_started(20s));
    EXPECT_EQ(text_of(call(registry, "fake.deaf")), "deaf from now on");
    long pid = manager.status()["fake"]["pid"].get<long>();

    // 4 MiB of arguments: far more than a pipe holds, so the write blocks part way.
    CancellationSource big_cancel;
    json big_args{{"data", std::string(4u << 20, 'x')}};
    auto big = std::async(std::launch::async, [&] { return call(registry, "fake.echo", big_args, big_cancel.token()); });
    ASSERT_TRUE(eventually([&] { return unread_stdin_bytes(pid) > 0; }, 20s)) << "the request never reached the pipe";

    // A second call queued behind the stuck write is cancellable too (nothing of it was sent).
    CancellationSource small_cancel;
    auto small = std::async(std::launch::async, [&] { return call(registry, "fake.echo", {{"a", 1}}, small_cancel.token()); });
    EXPECT_EQ(small.wait_for(300ms), std::future_status::timeout);  // it is waiting, not failed
    small_cancel.cancel("interrupted");
    bool small_returned = small.wait_for(20s) == std::future_status::ready;
    if (!small_returned) ::kill(static_cast<pid_t>(pid), SIGKILL);  // ends the stuck write, so the test ends
    ASSERT_TRUE(small_returned) << "a queued write ignored its cancellation";
    EXPECT_EQ(text_of(small.get()), "cancelled");

    big_cancel.cancel("interrupted");
    bool big_returned = big.wait_for(20s) == std::future_status::ready;
    if (!big_returned) ::kill(static_cast<pid_t>(pid), SIGKILL);
    ASSERT_TRUE(big_returned) << "a write in progress ignored its cancellation";
    EXPECT_EQ(text_of(big.get()), "cancelled");

    // Half a line went out, so that stream is unusable: the connection was ended and the next
    // call gets a fresh server, not a request glued to the tail of the abandoned one.
    json next = call(registry, "fake.echo", {{"a", 1}});
    EXPECT_FALSE(is_error(next)) << text_of(next);
    EXPECT_EQ(text_of(next), "echo:8");
    auto st = manager.status()["fake"];
    EXPECT_EQ(st["restarts"], 1) << st.dump();
    EXPECT_NE(st["pid"].get<long>(), pid);
    std::string log = log_.str();
    EXPECT_NE(log.find("half-written"), std::string::npos) << log;
}

TEST_F(DownstreamDefects, AWriteToADeafServerEndsAtTheCallTimeOut) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options(1500ms));
    manager.start({fake()});
    ASSERT_TRUE(manager.wait_started(20s));
    EXPECT_EQ(text_of(call(registry, "fake.deaf")), "deaf from now on");
    json r = call(registry, "fake.echo", {{"data", std::string(4u << 20, 'x')}});
    EXPECT_TRUE(is_error(r));
    EXPECT_NE(text_of(r).find("stopped reading its stdin"), std::string::npos) << text_of(r);
    EXPECT_EQ(text_of(call(registry, "fake.echo", {{"a", 1}})), "echo:8");  // restarted
}

TEST_F(DownstreamDefects, ClientCallsFailCleanlyAfterAHalfWrittenRequest) {
    SpawnOptions spawn;
    spawn.command = kPython;
    spawn.args = {"-u", (dir_ / "server.py").string()};
    McpClientOptions copts;
    copts.name = "fake";
    McpClient client(Subprocess::spawn(spawn), copts);
    CancellationToken never;
    client.initialize(json{{"name", "t"}, {"version", "1"}}, clock_type::now() + 20s, never);
    client.call_tool("deaf", json::object(), 20s, never);

    CancellationSource cancel;
    auto big = std::async(std::launch::async, [&] {
        try {
            client.call_tool("echo", json{{"data", std::string(4u << 20, 'x')}}, 120s, cancel.token());
            return std::string("answered");
        } catch (const ClientError& e) {
            return std::string(e.kind() == ClientError::Kind::Cancelled ? "cancelled: " : "other: ") + e.what();
        }
    });
    ASSERT_TRUE(eventually([&] { return unread_stdin_bytes(client.pid()) > 0; }, 20s));
    cancel.cancel();
    bool returned = big.wait_for(20s) == std::future_status::ready;
    if (!returned) ::kill(client.pid(), SIGKILL);
    ASSERT_TRUE(returned);
    EXPECT_EQ(big.get(), "cancelled: cancelled");
    EXPECT_TRUE(client.closed());
    EXPECT_NE(client.close_reason().find("half-written"), std::string::npos) << client.close_reason();
    try {
        client.call_tool("echo", json::object(), 5s, never);
        ADD_FAILURE() << "a call on a connection with a half-written request went through";
    } catch (const ClientError& e) {
        EXPECT_EQ(e.kind(), ClientError::Kind::Closed);
        EXPECT_NE(std::string(e.what()).find("half-written"), std::string::npos) << e.what();
    }
}

// ---- 3. many tools -----------------------------------------------------------------------------

TEST_F(DownstreamDefects, TwoThousandToolsAreRegisteredAsOneChange) {
    mcp::ToolRegistry registry;
    // Stand-in for the python tool, whose description lists the callable tools: it rebuilds it
    // on every change, which made one-by-one registration quadratic.
    registry.add({"python", "", "", json{{"type", "object"}}, {}, {}, {}, {}, true},
                 mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("x"); }));
    std::atomic<int> changes{0};
    registry.subscribe([&] {
        ++changes;
        size_t n = registry.list().size();
        registry.set_description("python", "tools: " + std::to_string(n));
    });
    DownstreamManager manager(registry, options());
    auto began = clock_type::now();
    manager.start({fake({"tools=2000"})});
    ASSERT_TRUE(manager.wait_started(60s));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - began);
    EXPECT_EQ(registry.size(), 2006u);
    EXPECT_EQ(registry.find("python")->description, "tools: 2006");
    // One change for the batch, one for the python description it caused.
    EXPECT_LE(changes.load(), 2) << "each tool was registered on its own";
    std::printf("2000 tools: spawn to registered in %lld ms, %d change notifications\n",
                static_cast<long long>(took.count()), changes.load());
    EXPECT_FALSE(is_error(call(registry, "fake.t1999", {{"x", 1}})));

    // A refresh that changes one tool is one change too.
    int before = changes.load();
    EXPECT_EQ(text_of(call(registry, "fake.retitle")), "ok");
    ASSERT_TRUE(eventually([&] { return registry.find("fake.t0")->description == "renamed"; }, 20s));
    EXPECT_TRUE(eventually([&] { return changes.load() - before == 1; }, 5s)) << changes.load() - before;
    EXPECT_EQ(registry.find("fake.t1")->description, "tool number 1");

    // Shutdown takes them all away at once.
    before = changes.load();
    manager.shutdown(1s);
    EXPECT_EQ(registry.size(), 1u);
    EXPECT_EQ(changes.load() - before, 2);
}

TEST(ToolRegistryBatch, UpdateAppliesRemovalsAndAdditionsAsOneChange) {
    mcp::ToolRegistry registry;
    auto handler = mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("h"); });
    auto def = [](const std::string& name, const std::string& description) {
        mcp::ToolDefinition d;
        d.name = name;
        d.description = description;
        return d;
    };
    registry.add(def("a", "1"), handler);
    registry.add(def("b", "1"), handler);
    registry.add(def("c", "1"), handler);
    int changes = 0;
    registry.subscribe([&] { ++changes; });

    std::vector<mcp::ToolRegistry::Addition> add;
    add.push_back({def("b", "2"), handler});  // replaced: keeps its place
    add.push_back({def("d", "1"), handler});  // new: at the end
    EXPECT_EQ(registry.update({"a", "nope"}, std::move(add)), 3u);  // a removed, b replaced, d added
    EXPECT_EQ(changes, 1);
    auto names = [&] {
        std::vector<std::string> out;
        for (const auto& t : registry.list()) out.push_back(t.name + "=" + t.description);
        return out;
    };
    EXPECT_EQ(names(), (std::vector<std::string>{"b=2", "c=1", "d=1"}));
    EXPECT_EQ(registry.update({"nope"}, {}), 0u);  // nothing changed: nobody is told
    EXPECT_EQ(changes, 1);
}

// ---- 4. why a server failed to start -----------------------------------------------------------

TEST_F(DownstreamDefects, AFailedStartIsExplainedByTheErrorLinesNotTheNpmNotices) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options());
    manager.start({fake({stderr_file("npm error code E404\n"
                                     "npm error 404 Not Found - GET https://registry.npmjs.org/@nope%2fserver - Not found\n"
                                     "npm error 404\n"
                                     "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n"
                                     "npm notice\n"
                                     "npm notice New major version of npm available! 10.8.2 -> 11.6.0\n"
                                     "npm notice Changelog: https://github.com/npm/cli/releases/tag/v11.6.0\n"
                                     "npm notice To update run: npm install -g npm@11.6.0\n"
                                     "npm notice\n")})});
    ASSERT_TRUE(manager.wait_started(20s));
    std::string error = manager.status()["fake"]["last_error"].get<std::string>();
    EXPECT_NE(error.find("npm error 404 Not Found - GET https://registry.npmjs.org/@nope%2fserver"), std::string::npos)
        << error;
    EXPECT_NE(error.find("npm error code E404"), std::string::npos) << error;
    EXPECT_EQ(error.find("npm notice"), std::string::npos) << error;
    try {
        call(registry, "fake.echo");
        ADD_FAILURE() << "the call found a tool";
    } catch (const mcp::UnknownToolError& e) {
        EXPECT_NE(std::string(e.what()).find("npm error 404 Not Found"), std::string::npos) << e.what();
    }
}

TEST_F(DownstreamDefects, NodeAndPythonFailuresShowTheirErrorLine) {
    std::string node_trace =
        "node:internal/modules/cjs/loader:1228\n"
        "  throw err;\n"
        "  ^\n"
        "\n"
        "Error: Cannot find module '/srv/mcp/dist/index.js'\n";
    for (int i = 0; i < 30; ++i) node_trace += "    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)\n";
    node_trace += "  code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}\n\nNode.js v20.18.0\nnpm warn exec whatever\n";
    std::string python_trace =
        "Traceback (most recent call last):\n"
        "  File \"/srv/server.py\", line 1, in <module>\n"
        "    import fastmcp_nope\n"
        "ModuleNotFoundError: No module named 'fastmcp_nope'\n";
    for (const auto& [trace, expected] : {std::pair{node_trace, std::string("Error: Cannot find module '/srv/mcp/dist/index.js'")},
                                          std::pair{python_trace, std::string("ModuleNotFoundError: No module named 'fastmcp_nope'")}}) {
        mcp::ToolRegistry registry;
        DownstreamManager manager(registry, options());
        manager.start({fake({stderr_file(trace)})});
        ASSERT_TRUE(manager.wait_started(20s));
        std::string error = manager.status()["fake"]["last_error"].get<std::string>();
        EXPECT_NE(error.find(expected), std::string::npos) << error;
        EXPECT_EQ(error.find("npm warn"), std::string::npos) << error;
    }
}

TEST_F(DownstreamDefects, WithoutErrorLinesTheLastFewLinesAreShown) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options());
    manager.start({fake({stderr_file("starting up\nloading plugins\nplugin x: disabled\nbye\nnpm notice\n")})});
    ASSERT_TRUE(manager.wait_started(20s));
    std::string error = manager.status()["fake"]["last_error"].get<std::string>();
    EXPECT_NE(error.find("loading plugins"), std::string::npos) << error;
    EXPECT_NE(error.find("plugin x: disabled"), std::string::npos) << error;
    EXPECT_NE(error.find("bye"), std::string::npos) << error;
    EXPECT_EQ(error.find("npm notice"), std::string::npos) << error;
}

TEST_F(DownstreamDefects, AServerThatDiesDuringACallIsExplainedByItsErrorLines) {
    mcp::ToolRegistry registry;
    DownstreamManager manager(registry, options());
    manager.start({fake({"exit-later", stderr_file("Fatal error: out of coffee\nnpm notice\nnpm notice bye\n")})});
    ASSERT_TRUE(manager.wait_started(20s));
    json r = call(registry, "fake.exit", {{"code", 3}});
    EXPECT_TRUE(is_error(r));
    EXPECT_NE(text_of(r).find("server 'fake' exited (exit status 3)"), std::string::npos) << text_of(r);
    EXPECT_NE(text_of(r).find("Fatal error: out of coffee"), std::string::npos) << text_of(r);
    EXPECT_EQ(text_of(r).find("npm notice"), std::string::npos) << text_of(r);
}
