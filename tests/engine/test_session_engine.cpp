// The session engine on the real embedded interpreter: sessions, results and errors, time-outs
// and cancellation, output capture, the main thread, concurrency, and the `mcp` module calling
// tools of the registry (including the python tool itself).

#include "python_mcp/python/session_engine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/tools/python_tool.hpp"
#include "python_mcp/tools/script_store.hpp"
#include "python_mcp/tools/tool_call_host.hpp"
#include "support/eventually.hpp"

namespace pymcp::python {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using mcp::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using engine::ExecOutcome;
using engine::ExecRequest;
using engine::EngineError;
using engine::SessionInfo;
using Status = ExecOutcome::Status;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

using pymcp::testing::eventually;

// Names that Python code raises through the `signal` tool, so tests wait for "the code got
// here" instead of sleeping.
class Signals {
public:
    void raise(const std::string& name) {
        {
            std::lock_guard lock(mutex_);
            raised_.insert(name);
        }
        changed_.notify_all();
    }
    bool wait(const std::string& name, std::chrono::milliseconds timeout = 5000ms) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return raised_.count(name) > 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::set<std::string> raised_;
};

std::string status_name(Status s) {
    switch (s) {
        case Status::Ok: return "Ok";
        case Status::Error: return "Error";
        case Status::TimedOut: return "TimedOut";
        case Status::Cancelled: return "Cancelled";
    }
    return "?";
}

std::string describe(const ExecOutcome& o) {
    std::ostringstream s;
    s << "status=" << status_name(o.status) << " stdout=[" << o.out.text << "] stderr=[" << o.err.text << "]";
    if (o.result) s << " result=" << *o.result;
    if (o.error) s << " error=" << o.error->type << ": " << o.error->message << "\n" << o.error->traceback;
    return s.str();
}

class SessionEngineTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (engine_) return;
        registry_ = new mcp::ToolRegistry();
        signals_ = new Signals();
        blocking_started_ = new std::atomic<int>(0);
        blocking_saw_cancel_ = new std::atomic<int>(0);

        auto add_tool = [](mcp::ToolDefinition d, mcp::BlockingToolHandler h) {
            registry_->add(std::move(d), mcp::blocking_handler(std::move(h)));
        };
        auto def = [](const std::string& name) {
            mcp::ToolDefinition d;
            d.name = name;
            d.description = "engine test tool " + name;
            return d;
        };
        add_tool(def("echo_tool"), [](const json& args, mcp::CallContext&) {
            return mcp::tool_result("echo", args);
        });
        add_tool(def("failing_tool"), [](const json& args, mcp::CallContext&) -> json {
            throw mcp::ToolError("failing_tool failed: " + args.value("why", std::string("no reason")));
        });
        add_tool(def("signal"), [](const json& args, mcp::CallContext&) {
            signals_->raise(args.value("name", std::string()));
            return mcp::tool_result("ok");
        });
        // Waits (up to 30 s) for its call's cancellation.
        add_tool(def("blocking_tool"), [](const json&, mcp::CallContext& ctx) {
            ++*blocking_started_;
            bool cancelled = ctx.cancellation().wait_for(30s);
            if (cancelled) ++*blocking_saw_cancel_;
            return mcp::tool_result(cancelled ? "cancelled" : "finished");
        });

        EngineOptions options;
        options.max_sessions = 1000;
        engine_ = new SessionEngine(options);

        std::string pattern = (fs::temp_directory_path() / "engine_test_XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        scripts_ = new tools::ScriptStore(fs::path(pattern) / "scripts");
        tools::PythonToolOptions tool_options;
        tool_options.default_timeout = 20s;
        tool_options.readme = "readme";
        python_tool_ = new tools::PythonTool(*engine_, *scripts_, tool_options);
        python_tool_->register_in(*registry_);
        // The engine, registry and tool live until the process _Exits (see engine_main.cpp).
    }

    static ExecRequest request(const std::string& code, const std::string& session = "default", bool persistent = false,
                               std::chrono::milliseconds timeout = 20s, size_t max_output = 64 * 1024) {
        ExecRequest r;
        r.code = code;
        r.session_id = session;
        r.persistent = persistent;
        r.timeout = timeout;
        r.max_output = max_output;
        return r;
    }

    // The python tool's host for `context`: mcp.call reaches the registry, as in the server.
    static std::shared_ptr<engine::ExecutionHost> host(const mcp::CallContext& context = {}) {
        return std::make_shared<tools::ToolCallHost>(*registry_, context, nullptr);
    }
    // Runs `r` on `engine` as the python tool does for a call with `context`: its cancellation
    // and a host made from it.
    static ExecOutcome exec(engine::Engine& engine, ExecRequest r, const mcp::CallContext& context) {
        r.cancel = context.cancellation();
        return engine.execute(r, host(context));
    }
    static void submit(engine::Engine& engine, ExecRequest r, const mcp::CallContext& context,
                       engine::Engine::Completion done) {
        r.cancel = context.cancellation();
        engine.submit(r, host(context), std::move(done));
    }
    static ExecOutcome run(const ExecRequest& r) {
        mcp::CallContext ctx;
        return exec(*engine_, r, ctx);
    }
    static ExecOutcome run(const std::string& code, const std::string& session = "default", bool persistent = false,
                           std::chrono::milliseconds timeout = 20s) {
        return run(request(code, session, persistent, timeout));
    }
    // Runs `code` and expects success; returns the trailing expression's repr ("" when none).
    static std::string ok(const std::string& code, const std::string& session = "default", bool persistent = false) {
        ExecOutcome o = run(code, session, persistent);
        EXPECT_EQ(o.status, Status::Ok) << describe(o);
        return o.result.value_or("");
    }

    static bool session_busy(const std::string& id) {
        for (const auto& s : engine_->list_sessions())
            if (s.id == id) return s.busy;
        return false;
    }

    static inline mcp::ToolRegistry* registry_ = nullptr;
    static inline SessionEngine* engine_ = nullptr;
    static inline Signals* signals_ = nullptr;
    static inline tools::ScriptStore* scripts_ = nullptr;
    static inline tools::PythonTool* python_tool_ = nullptr;
    static inline std::atomic<int>* blocking_started_ = nullptr;
    static inline std::atomic<int>* blocking_saw_cancel_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Namespaces, results, errors

TEST_F(SessionEngineTest, PersistentVariablesSurviveBetweenExecutions) {
    ok("x = 40\ndef add(a, b):\n    return a + b\nimport math", "persist", true);
    EXPECT_EQ(ok("add(x, 2)", "persist", true), "42");
    EXPECT_EQ(ok("math.floor(2.5)", "persist", true), "2");
    // The trailing expression's value is bound to _ as in a REPL.
    EXPECT_EQ(ok("_ + 1", "persist", true), "3");
}

TEST_F(SessionEngineTest, FreshNamespaceWhenNotPersistent) {
    ok("fresh_var = 1", "fresh");
    ExecOutcome o = run("fresh_var", "fresh");
    EXPECT_EQ(o.status, Status::Error) << describe(o);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "NameError");
    // A persistent session of the same name is untouched by fresh runs, and vice versa.
    ok("kept = 'yes'", "mixed", true);
    o = run("kept", "mixed", false);
    EXPECT_EQ(o.status, Status::Error);
    ok("kept = 'overwritten?'", "mixed", false);
    EXPECT_EQ(ok("kept", "mixed", true), "'yes'");
    // Fresh runs do not create sessions.
    for (const auto& s : engine_->list_sessions()) EXPECT_NE(s.id, "fresh");
}

TEST_F(SessionEngineTest, NameIsMainAndMcpIsThere) {
    EXPECT_EQ(ok("__name__"), "'__main__'");
    EXPECT_EQ(ok("type(mcp).__name__"), "'module'");
    EXPECT_EQ(ok("callable(mcp.call)"), "True");
}

TEST_F(SessionEngineTest, TrailingExpressionRepr) {
    EXPECT_EQ(ok("1 + 1"), "2");
    EXPECT_EQ(ok("'text'"), "'text'");
    EXPECT_EQ(ok("x = [1, 'a', None]\nx"), "[1, 'a', None]");
    EXPECT_EQ(ok("{'k': (1, 2)}"), "{'k': (1, 2)}");
    EXPECT_EQ(ok("class C:\n    def __repr__(self):\n        return '<C!>'\nC()"), "<C!>");
    // Only a trailing expression counts.
    EXPECT_EQ(ok("y = 5"), "");
    EXPECT_EQ(ok("1\ny = 2"), "");
}

TEST_F(SessionEngineTest, NoneResultIsOmitted) {
    ExecOutcome o = run("None");
    EXPECT_EQ(o.status, Status::Ok);
    EXPECT_FALSE(o.result);
    o = run("print('printed')");
    EXPECT_EQ(o.status, Status::Ok);
    EXPECT_FALSE(o.result);
    EXPECT_EQ(o.out.text, "printed\n");
    o = run("");
    EXPECT_EQ(o.status, Status::Ok);
    EXPECT_FALSE(o.result);
    o = run("# just a comment\n");
    EXPECT_EQ(o.status, Status::Ok);
}

TEST_F(SessionEngineTest, ExceptionReportsTheUsersLineNotTheRuntime) {
    ExecOutcome o = run("print('before')\ndef divide(a, b):\n    return a / b\nresult = divide(1, 0)\n");
    ASSERT_EQ(o.status, Status::Error) << describe(o);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "ZeroDivisionError");
    EXPECT_EQ(o.error->message, "division by zero");
    EXPECT_THAT(o.error->traceback, HasSubstr("return a / b"));
    EXPECT_THAT(o.error->traceback, HasSubstr("result = divide(1, 0)"));
    EXPECT_THAT(o.error->traceback, HasSubstr("line 3"));
    EXPECT_THAT(o.error->traceback, HasSubstr("ZeroDivisionError: division by zero"));
    EXPECT_THAT(o.error->traceback, Not(HasSubstr("<pymcp-runtime>")));
    EXPECT_THAT(o.error->traceback, Not(HasSubstr("pymcp_runtime")));
    EXPECT_EQ(o.out.text, "before\n");  // output before the error is kept
    // A trailing expression that raises.
    o = run("{}['missing']");
    ASSERT_EQ(o.status, Status::Error);
    EXPECT_EQ(o.error->type, "KeyError");
    EXPECT_THAT(o.error->traceback, HasSubstr("{}['missing']"));
    EXPECT_THAT(o.error->traceback, Not(HasSubstr("<pymcp-runtime>")));
}

TEST_F(SessionEngineTest, ScriptFilenameAppearsInTracebacks) {
    ExecRequest r = request("x = 1\nraise ValueError('from the script')\n");
    r.filename = "/scripts/report.py";
    ExecOutcome o = run(r);
    ASSERT_EQ(o.status, Status::Error);
    EXPECT_THAT(o.error->traceback, HasSubstr("/scripts/report.py"));
    EXPECT_THAT(o.error->traceback, HasSubstr("line 2"));
}

TEST_F(SessionEngineTest, SyntaxErrorIsReported) {
    ExecOutcome o = run("x = 1\ndef broken(:\n    pass\n");
    ASSERT_EQ(o.status, Status::Error) << describe(o);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "SyntaxError");
    EXPECT_THAT(o.error->traceback, HasSubstr("def broken(:"));
    EXPECT_THAT(o.error->traceback, Not(HasSubstr("<pymcp-runtime>")));
    o = run("if True\n  pass");
    EXPECT_EQ(o.status, Status::Error);
    EXPECT_EQ(o.error->type, "SyntaxError");
    o = run("  indented = 1");
    EXPECT_EQ(o.status, Status::Error);
    EXPECT_EQ(o.error->type, "IndentationError");
}

TEST_F(SessionEngineTest, SystemExitKeyboardInterruptRecursionErrorLeaveTheSessionUsable) {
    const std::string s = "survivor";
    ok("alive = 1", s, true);
    struct Case {
        const char* code;
        const char* type;
    };
    const Case cases[] = {
        {"import sys\nsys.exit(3)", "SystemExit"},
        {"exit()", "SystemExit"},
        {"quit()", "SystemExit"},
        {"raise SystemExit('bye')", "SystemExit"},
        {"import os\nos._exit(0)", "SystemExit"},  // would end the whole server
        {"raise KeyboardInterrupt", "KeyboardInterrupt"},
        {"def f(n):\n    return f(n + 1)\nf(0)", "RecursionError"},
        {"raise GeneratorExit", "GeneratorExit"},
        {"input('name? ')", "EOFError"},  // stdin is the protocol channel
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.code);
        ExecOutcome o = run(c.code, s, true);
        EXPECT_EQ(o.status, Status::Error) << describe(o);
        ASSERT_TRUE(o.error);
        EXPECT_EQ(o.error->type, c.type);
        EXPECT_EQ(ok("alive += 1\nalive", s, true), std::to_string(&c - cases + 2));
    }
    EXPECT_EQ(ok("import sys\nsys.stdin.read.__name__", s, true), "'read'");
    EXPECT_EQ(ok("import sys\nsys.getrecursionlimit() >= 1000", s, true), "True");
}

TEST_F(SessionEngineTest, RebindingStdoutDoesNotBreakLaterRuns) {
    ok("import sys, io\nsys.stdout = io.StringIO()\nprint('swallowed')", "rebind", true);
    ExecOutcome o = run("print('visible again')", "rebind", true);
    EXPECT_EQ(o.out.text, "visible again\n") << describe(o);
}

TEST_F(SessionEngineTest, StdoutAndStderrAreSeparate) {
    ExecOutcome o = run("import sys\nprint('out line')\nprint('err line', file=sys.stderr)\nsys.stdout.write('no newline')");
    EXPECT_EQ(o.status, Status::Ok);
    EXPECT_EQ(o.out.text, "out line\nno newline");
    EXPECT_EQ(o.err.text, "err line\n");
    EXPECT_FALSE(o.result && *o.result != "10");  // write() returns the count
}

// ---------------------------------------------------------------------------------------------
// Time-outs, interrupts, cancellation

TEST_F(SessionEngineTest, BusyLoopTimesOutAndTheSessionStaysUsable) {
    const std::string s = "loop";
    ok("counter = 0", s, true);
    auto start = Clock::now();
    ExecOutcome o = run("while True:\n    counter += 1", s, true, 300ms);
    double took = ms_since(start);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_GE(took, 250);
    EXPECT_LT(took, 1200) << "a 300 ms time-out took " << took << " ms";
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "TimeoutError");
    EXPECT_FALSE(o.still_running);
    // The state the loop reached is kept.
    EXPECT_EQ(ok("counter > 0", s, true), "True");
    // No stale interrupt hits the next quick executions, here or in other sessions.
    for (int i = 0; i < 20; ++i) {
        ExecOutcome q = run("sum(range(1000))", s, true, 5s);
        ASSERT_EQ(q.status, Status::Ok) << "run " << i << ": " << describe(q);
        EXPECT_EQ(q.result.value_or(""), "499500");
        ExecOutcome other = run("x = 1\nx", "after_loop_" + std::to_string(i % 3));
        ASSERT_EQ(other.status, Status::Ok) << describe(other);
    }
}

TEST_F(SessionEngineTest, ExceptExceptionDoesNotSwallowTheInterrupt) {
    auto start = Clock::now();
    ExecOutcome o = run("try:\n    while True:\n        pass\nexcept Exception:\n    pass\n'escaped'", "swallow", true, 300ms);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 1200);
    EXPECT_FALSE(o.result);
    EXPECT_EQ(ok("1", "swallow", true), "1");
}

TEST_F(SessionEngineTest, TimeoutKeepsOutputWrittenSoFar) {
    ExecOutcome o = run("print('started', flush=True)\nwhile True:\n    pass", "partial", false, 300ms);
    EXPECT_EQ(o.status, Status::TimedOut);
    EXPECT_EQ(o.out.text, "started\n");
}

TEST_F(SessionEngineTest, SleepIsCancelledThroughTheCallContext) {
    const std::string s = "sleeper";
    CancellationSource cancel;
    mcp::CallContext ctx(cancel.token(), 1, nullptr, nullptr);
    auto future = std::async(std::launch::async, [&] {
        return exec(*engine_, request("mcp.call('signal', {'name': 'sleeping'})\nimport time\ntime.sleep(30)", s, true), ctx);
    });
    ASSERT_TRUE(signals_->wait("sleeping"));
    std::this_thread::sleep_for(20ms);  // into the sleep
    auto start = Clock::now();
    cancel.cancel("client cancelled");
    ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
    double took = ms_since(start);
    ExecOutcome o = future.get();
    EXPECT_LT(took, 100) << "cancellation took " << took << " ms";
    EXPECT_EQ(o.status, Status::Cancelled);
    // The code really stopped: the session answers at once, not after 30 s.
    start = Clock::now();
    EXPECT_EQ(ok("'awake'", s, true), "'awake'");
    EXPECT_LT(ms_since(start), 2000);
}

TEST_F(SessionEngineTest, CancelledBeforeItStartsNeverRuns) {
    CancellationSource cancel;
    cancel.cancel();
    mcp::CallContext ctx(cancel.token(), 1, nullptr, nullptr);
    auto start = Clock::now();
    ExecOutcome o = exec(*engine_, request("mcp.call('signal', {'name': 'should-not-run'})", "precancel", true), ctx);
    EXPECT_EQ(o.status, Status::Cancelled);
    EXPECT_LT(ms_since(start), 500);
    EXPECT_FALSE(signals_->wait("should-not-run", 300ms));
    EXPECT_EQ(ok("2", "precancel", true), "2");
}

TEST_F(SessionEngineTest, EventWaitIsInterrupted) {
    auto start = Clock::now();
    ExecOutcome o = run("import threading\nthreading.Event().wait()", "event", true, 300ms);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 1200);
    start = Clock::now();
    o = run("import queue\nqueue.Queue().get()", "event", true, 300ms);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 1200);
    // And by cancellation.
    CancellationSource cancel;
    mcp::CallContext ctx(cancel.token(), 2, nullptr, nullptr);
    auto future = std::async(std::launch::async, [&] {
        return exec(*engine_, 
            request("import threading\nmcp.call('signal', {'name': 'event-waiting'})\nthreading.Event().wait()", "event", true),
            ctx);
    });
    ASSERT_TRUE(signals_->wait("event-waiting"));
    cancel.cancel();
    ASSERT_EQ(future.wait_for(1s), std::future_status::ready);
    EXPECT_EQ(future.get().status, Status::Cancelled);
    EXPECT_EQ(ok("'still here'", "event", true), "'still here'");
    // A wait with a timeout still returns normally.
    EXPECT_EQ(ok("import threading\nthreading.Event().wait(0.05)", "event", true), "False");
}

// ---------------------------------------------------------------------------------------------
// Output

TEST_F(SessionEngineTest, ConcurrentSessionsNeverMixTheirOutput) {
    auto printer = [](const std::string& marker) {
        ExecRequest r = request("for i in range(2000):\n    print('" + marker + "', i)", "mix_" + marker, true, 20s, 1 << 20);
        return run(r);
    };
    auto a = std::async(std::launch::async, printer, "AAA");
    auto b = std::async(std::launch::async, printer, "BBB");
    ExecOutcome oa = a.get(), ob = b.get();
    for (auto [o, mine, theirs] : {std::tuple{&oa, "AAA", "BBB"}, std::tuple{&ob, "BBB", "AAA"}}) {
        ASSERT_EQ(o->status, Status::Ok) << describe(*o);
        EXPECT_EQ(o->out.cut_bytes, 0u);
        EXPECT_THAT(o->out.text, Not(HasSubstr(theirs)));
        std::istringstream lines(o->out.text);
        std::string line;
        int n = 0;
        while (std::getline(lines, line)) {
            ASSERT_EQ(line, std::string(mine) + " " + std::to_string(n)) << "line " << n;
            ++n;
        }
        EXPECT_EQ(n, 2000);
    }
}

TEST_F(SessionEngineTest, OutputOfThreadsStartedByTheCodeIsCaptured) {
    ExecOutcome o = run(
        "import threading\n"
        "def work(n):\n"
        "    print('from thread', n)\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print('main done')");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    for (int i = 0; i < 3; ++i) EXPECT_THAT(o.out.text, HasSubstr("from thread " + std::to_string(i)));
    EXPECT_THAT(o.out.text, HasSubstr("main done"));
    // concurrent.futures threads too.
    o = run("from concurrent.futures import ThreadPoolExecutor\n"
            "with ThreadPoolExecutor(2) as ex:\n"
            "    list(ex.map(lambda n: print('pool', n), range(4)))");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    for (int i = 0; i < 4; ++i) EXPECT_THAT(o.out.text, HasSubstr("pool " + std::to_string(i)));
}

TEST_F(SessionEngineTest, OutputIsCutKeepingHeadAndTail) {
    ExecRequest r = request("print('HEAD-MARK')\nprint('x' * 200000)\nprint('TAIL-MARK')", "cut", false, 20s, 1000);
    ExecOutcome o = run(r);
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_THAT(o.out.text, ::testing::StartsWith("HEAD-MARK"));
    EXPECT_THAT(o.out.text, ::testing::EndsWith("TAIL-MARK\n"));
    EXPECT_GT(o.out.cut_bytes, 0u);
    EXPECT_GE(o.out.total_bytes, 200000u);
    EXPECT_LT(o.out.text.size(), 1000u + 300u);  // the kept bytes plus the marker
    EXPECT_EQ(o.out.total_bytes, std::string("HEAD-MARK\n").size() + 200001 + std::string("TAIL-MARK\n").size());
    // Many small writes are cut the same way.
    r = request("for i in range(20000):\n    print(i)\nprint('END')", "cut", false, 20s, 2000);
    o = run(r);
    ASSERT_EQ(o.status, Status::Ok);
    EXPECT_THAT(o.out.text, ::testing::StartsWith("0\n1\n2\n"));
    EXPECT_THAT(o.out.text, ::testing::EndsWith("19999\nEND\n"));
    EXPECT_GT(o.out.cut_bytes, 0u);
    // Cuts fall on character boundaries: the kept text stays valid UTF-8.
    for (size_t limit : {1001u, 1002u, 1003u, 1004u}) {
        o = run(request("print('é✓😀' * 30000)", "cut", false, 20s, limit));
        ASSERT_EQ(o.status, Status::Ok);
        EXPECT_GT(o.out.cut_bytes, 0u);
        EXPECT_NO_THROW(json(o.out.text).dump()) << "limit " << limit;  // dump() throws on invalid UTF-8
        EXPECT_THAT(o.out.text, ::testing::StartsWith("é✓😀"));
        EXPECT_THAT(o.out.text, ::testing::EndsWith("é✓😀\n"));
    }
    // Under the limit nothing is cut.
    o = run(request("print('small')", "cut", false, 20s, 1000));
    EXPECT_EQ(o.out.cut_bytes, 0u);
    EXPECT_EQ(o.out.text, "small\n");
}

// ---------------------------------------------------------------------------------------------
// Sessions

TEST_F(SessionEngineTest, ClearSessionReturnsTheFreedCountThenNullopt) {
    ok("a = 1\nb = 2\nc = [a, b]", "to_clear", true);
    auto freed = engine_->clear_session("to_clear");
    ASSERT_TRUE(freed);
    EXPECT_EQ(*freed, 3u);
    EXPECT_FALSE(engine_->clear_session("to_clear"));
    EXPECT_FALSE(engine_->clear_session("never_existed"));
    // The name can be used again, starting empty.
    ExecOutcome o = run("a", "to_clear", true);
    EXPECT_EQ(o.status, Status::Error);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "NameError");
}

TEST_F(SessionEngineTest, ListSessionsShowsBusyWhileRunning) {
    const std::string s = "listed_busy";
    ok("v1 = 1\nv2 = 2", s, true);
    EXPECT_TRUE(eventually([&] { return !session_busy(s); }, 3000ms));
    bool found = false;
    for (const auto& info : engine_->list_sessions())
        if (info.id == s) {
            found = true;
            EXPECT_EQ(info.variables, 2u);
            EXPECT_EQ(info.executions, 1u);
            EXPECT_LE(info.created, info.last_used);
        }
    EXPECT_TRUE(found);

    CancellationSource cancel;
    mcp::CallContext ctx(cancel.token(), 3, nullptr, nullptr);
    auto future = std::async(std::launch::async, [&] {
        return exec(*engine_, request("mcp.call('signal', {'name': 'busy-running'})\nimport time\ntime.sleep(20)", s, true), ctx);
    });
    ASSERT_TRUE(signals_->wait("busy-running"));
    EXPECT_TRUE(session_busy(s));
    // Listing does not wait for the running code.
    auto start = Clock::now();
    engine_->list_sessions();
    EXPECT_LT(ms_since(start), 2000);  // far below the 20 s the code sleeps: it did not wait
    cancel.cancel();
    ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
    EXPECT_TRUE(eventually([&] { return !session_busy(s); }, 3000ms));
    // The sessions are sorted by name.
    auto all = engine_->list_sessions();
    for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id, all[i].id);
}

// execute() has returned, so the session is idle and the run is counted: a client that lists
// sessions right after an answer must not see it busy (or clear_session treat it as running).
TEST_F(SessionEngineTest, ListSessionsIsCurrentOnceExecuteReturns) {
    const std::string s = "listed_after";
    for (size_t i = 1; i <= 20; ++i) {
        ASSERT_EQ(run("n = " + std::to_string(i), s, true).status, Status::Ok);
        auto all = engine_->list_sessions();
        auto it = std::find_if(all.begin(), all.end(), [&](const SessionInfo& x) { return x.id == s; });
        ASSERT_NE(it, all.end());
        EXPECT_FALSE(it->busy) << "after run " << i;
        EXPECT_EQ(it->executions, i);
        EXPECT_EQ(it->variables, 1u);
        if (HasFailure()) break;  // one report is enough
    }
}

TEST_F(SessionEngineTest, MaxSessionsRefusesANewOne) {
    EngineOptions options;
    options.max_sessions = 2;
    auto small = std::make_unique<SessionEngine>(options);
    mcp::CallContext ctx;
    EXPECT_EQ(exec(*small, request("1", "one", true), ctx).status, Status::Ok);
    EXPECT_EQ(exec(*small, request("1", "two", true), ctx).status, Status::Ok);
    try {
        exec(*small, request("1", "three", true), ctx);
        FAIL() << "a third session was accepted";
    } catch (const EngineError& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("sessions"));
    }
    // Existing sessions and fresh namespaces still work.
    EXPECT_EQ(exec(*small, request("1", "one", true), ctx).status, Status::Ok);
    EXPECT_EQ(exec(*small, request("1", "three", false), ctx).status, Status::Ok);
    // After clearing one there is room again.
    EXPECT_TRUE(small->clear_session("one"));
    EXPECT_EQ(exec(*small, request("1", "three", true), ctx).status, Status::Ok);
    EXPECT_EQ(small->list_sessions().size(), 2u);
    small.reset();
    // The shared engine (and the `mcp` module's registry) still work afterwards.
    EXPECT_EQ(ok("mcp.call('echo_tool', {'v': 1})['structuredContent']['v']"), "1");
}

TEST_F(SessionEngineTest, RunOnMainThread) {
    ExecRequest r = request("import threading\nthreading.current_thread() is threading.main_thread()", "main", true);
    r.run_on_main_thread = true;
    ExecOutcome o = run(r);
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.result.value_or(""), "True");
    // Same session, on a pool thread: variables are shared, the thread is not the main one.
    r.run_on_main_thread = false;
    o = run(r);
    EXPECT_EQ(o.result.value_or(""), "False");
    // Time-outs work on the main thread too, and it is free again afterwards.
    ExecRequest loop = request("while True:\n    pass", "main", true, 300ms);
    loop.run_on_main_thread = true;
    auto start = Clock::now();
    o = run(loop);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 1200);
    r.run_on_main_thread = true;
    EXPECT_EQ(run(r).result.value_or(""), "True");
}

TEST_F(SessionEngineTest, SessionsRunConcurrently) {
    auto start = Clock::now();
    std::vector<std::future<ExecOutcome>> runs;
    for (int i = 0; i < 8; ++i)
        runs.push_back(std::async(std::launch::async, [i] {
            return run("import time\ntime.sleep(0.5)\n" + std::to_string(i), "parallel_" + std::to_string(i), true);
        }));
    for (int i = 0; i < 8; ++i) {
        ExecOutcome o = runs[i].get();
        EXPECT_EQ(o.status, Status::Ok) << describe(o);
        EXPECT_EQ(o.result.value_or(""), std::to_string(i));
    }
    double took = ms_since(start);
    EXPECT_LT(took, 1300) << "8 sessions sleeping 0.5 s took " << took << " ms";
}

TEST_F(SessionEngineTest, OneSessionRunsItsJobsInOrder) {
    const std::string s = "ordered";
    ok("log = []", s, true);
    std::vector<std::future<ExecOutcome>> runs;
    for (int i = 0; i < 5; ++i) {
        runs.push_back(std::async(std::launch::async, [i, s] {
            return run("import time\ntime.sleep(0.02)\nlog.append(" + std::to_string(i) + ")", s, true);
        }));
        std::this_thread::sleep_for(5ms);
    }
    for (auto& f : runs) EXPECT_EQ(f.get().status, Status::Ok);
    // Never two at once in one session: 5 appends, all there.
    EXPECT_EQ(ok("sorted(log)", s, true), "[0, 1, 2, 3, 4]");
}

// ---------------------------------------------------------------------------------------------
// The mcp module

TEST_F(SessionEngineTest, McpCallReturnsTheResultDictAndIsRecorded) {
    ExecOutcome o = run(
        "r = mcp.call('echo_tool', {'q': 'hi', 'n': 3})\n"
        "print(sorted(r.keys()))\n"
        "r['structuredContent'] == {'q': 'hi', 'n': 3}");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.result.value_or(""), "True");
    EXPECT_THAT(o.out.text, HasSubstr("'content'"));
    EXPECT_THAT(o.out.text, HasSubstr("'isError'"));
    ASSERT_EQ(o.mcp_calls.size(), 1u);
    EXPECT_EQ(o.mcp_calls[0].tool, "echo_tool");
    EXPECT_FALSE(o.mcp_calls[0].is_error);
    EXPECT_GE(o.mcp_calls[0].duration_ms, 0.0);
    // params may be omitted.
    EXPECT_EQ(ok("mcp.call('echo_tool')['structuredContent']"), "{}");
}

TEST_F(SessionEngineTest, ToolErrorCarriesTheResult) {
    ExecOutcome o = run(
        "try:\n"
        "    mcp.call('failing_tool', {'why': 'bad input'})\n"
        "except mcp.ToolError as e:\n"
        "    print('caught', isinstance(e, Exception))\n"
        "    print(e.result['isError'])\n"
        "    print(e.result['content'][0]['text'])\n"
        "    print(str(e))\n");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.out.text,
              "caught True\nTrue\nfailing_tool failed: bad input\nfailing_tool failed: bad input\n");
    ASSERT_EQ(o.mcp_calls.size(), 1u);
    EXPECT_TRUE(o.mcp_calls[0].is_error);
    // Uncaught, it is the execution's error.
    o = run("mcp.call('failing_tool', {})");
    EXPECT_EQ(o.status, Status::Error);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "ToolError");
    EXPECT_THAT(o.error->message, HasSubstr("no reason"));
}

TEST_F(SessionEngineTest, UnknownToolRaisesToolError) {
    ExecOutcome o = run(
        "try:\n"
        "    mcp.call('no_such_tool', {})\n"
        "except mcp.ToolError as e:\n"
        "    print('ToolError:', e)\n");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_THAT(o.out.text, HasSubstr("ToolError:"));
    EXPECT_THAT(o.out.text, HasSubstr("no_such_tool"));
    ASSERT_EQ(o.mcp_calls.size(), 1u);
    EXPECT_TRUE(o.mcp_calls[0].is_error);
}

TEST_F(SessionEngineTest, ParamsThatAreNotJsonRaiseNamingThePath) {
    struct Case {
        const char* params;
        const char* error_type;
        const char* path;
    };
    const Case cases[] = {
        {"{'a': {1, 2}}", "TypeError", "params['a']"},
        {"{'rows': [1, {'bad': 1j}]}", "TypeError", "params['rows'][1]['bad']"},
        {"{'big': 2**70}", "ValueError", "params['big']"},
        {"{'neg': -2**70}", "ValueError", "params['neg']"},
        {"{'d': {(1, 2): 'tuple key'}}", "TypeError", "params['d']"},
        {"{'o': object()}", "TypeError", "params['o']"},
        {"{'b': b'bytes'}", "TypeError", "params['b']"},
        {"{'s': '\\ud800'}", "ValueError", "params['s']"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.params);
        ExecOutcome o = run(std::string("try:\n    mcp.call('echo_tool', ") + c.params +
                            ")\nexcept Exception as e:\n    print(type(e).__name__)\n    print(e)\n");
        ASSERT_EQ(o.status, Status::Ok) << describe(o);
        EXPECT_THAT(o.out.text, ::testing::StartsWith(std::string(c.error_type) + "\n"));
        EXPECT_THAT(o.out.text, HasSubstr(c.path));
        EXPECT_TRUE(o.mcp_calls.empty());  // nothing was called
    }
    // params that are not a dict at all.
    ExecOutcome o = run("try:\n    mcp.call('echo_tool', [1, 2])\nexcept TypeError as e:\n    print('TypeError', e)\n");
    EXPECT_THAT(o.out.text, HasSubstr("TypeError"));
}

TEST_F(SessionEngineTest, JsonRoundTripsThroughATool) {
    ExecOutcome o = run(
        "data = {\n"
        "    'str': 'héllo ✓ 日本', 'empty': '', 'int': -42, 'zero': 0,\n"
        "    'max': 2**63 - 1, 'min': -2**63, 'umax': 2**64 - 1,\n"
        "    'float': 3.25, 'tiny': 1e-300, 'true': True, 'false': False, 'none': None,\n"
        "    'list': [1, [2, [3, [4, []]]], {'k': 'v'}], 'dict': {'nested': {'deep': [None, True]}},\n"
        "    'quote': 'a\"b\\\\c\\n',\n"
        "}\n"
        "back = mcp.call('echo_tool', data)['structuredContent']\n"
        "print(back == data)\n"
        "print(type(back['int']).__name__, type(back['float']).__name__, type(back['list']).__name__)\n"
        "print(back['umax'] == 2**64 - 1, back['min'] == -2**63)\n"
        "tup = mcp.call('echo_tool', {'t': (1, 2)})['structuredContent']['t']\n"
        "print(tup)\n");
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.out.text, "True\nint float list\nTrue True\n[1, 2]\n");
}

TEST_F(SessionEngineTest, ListToolsShowsTheRegistry) {
    EXPECT_EQ(ok("sorted(t['name'] for t in mcp.list_tools() if t['name'] in ('echo_tool', 'python', 'signal'))"),
              "['echo_tool', 'python', 'signal']");
    EXPECT_EQ(ok("[t for t in mcp.list_tools() if t['name'] == 'echo_tool'][0]['description']"),
              "'engine test tool echo_tool'");
}

TEST_F(SessionEngineTest, NestedPythonCallIntoAnotherSession) {
    ok("mine = 'outer value'", "outer", true);
    ExecOutcome o = run(
        "r = mcp.call('python', {'code': 'inner_var = 21\\ninner_var * 2', 'session_id': 'inner', 'persistent': True})\n"
        "print(r['isError'], r['structuredContent']['result'])\n"
        "mine",
        "outer", true);
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.out.text, "False 42\n");
    EXPECT_EQ(o.result.value_or(""), "'outer value'");
    ASSERT_EQ(o.mcp_calls.size(), 1u);
    EXPECT_EQ(o.mcp_calls[0].tool, "python");
    EXPECT_EQ(ok("inner_var", "inner", true), "21");
    // The wrapped form works from code too.
    o = run("mcp.call('python', {'input': {'code': '6 * 7'}})['structuredContent']['result']", "outer", true);
    EXPECT_EQ(o.result.value_or(""), "'42'");
}

TEST_F(SessionEngineTest, NestedPythonCallIntoTheCallingSessionRaises) {
    auto start = Clock::now();
    ExecOutcome o = run(
        "try:\n"
        "    mcp.call('python', {'code': '1', 'session_id': 'selfcall', 'persistent': True})\n"
        "    print('no error')\n"
        "except mcp.ToolError as e:\n"
        "    print('ToolError', 'selfcall' in str(e))\n",
        "selfcall", true, 10s);
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.out.text, "ToolError True\n");
    EXPECT_LT(ms_since(start), 2000) << "refused at once, not after waiting for itself";
    // One level further: selfcall -> middle -> selfcall is refused as well.
    o = run(
        "inner = \"try:\\n    mcp.call('python', {'code': '1', 'session_id': 'selfcall2', 'persistent': True})\\n"
        "    print('no error')\\nexcept mcp.ToolError:\\n    print('refused')\"\n"
        "r = mcp.call('python', {'code': inner, 'session_id': 'middle', 'persistent': True})\n"
        "print(r['structuredContent']['stdout'].strip())\n",
        "selfcall2", true, 10s);
    ASSERT_EQ(o.status, Status::Ok) << describe(o);
    EXPECT_EQ(o.out.text, "refused\n");
}

TEST_F(SessionEngineTest, CancellingAnExecutionBlockedInAToolCall) {
    const std::string s = "blocked";
    int started_before = blocking_started_->load();
    int saw_before = blocking_saw_cancel_->load();
    CancellationSource cancel;
    mcp::CallContext ctx(cancel.token(), 4, nullptr, nullptr);
    auto future = std::async(std::launch::async, [&] {
        return exec(*engine_, request("mcp.call('blocking_tool', {})\nprint('not reached')", s, true), ctx);
    });
    ASSERT_TRUE(eventually([&] { return blocking_started_->load() > started_before; }));
    auto start = Clock::now();
    cancel.cancel();
    ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
    EXPECT_LT(ms_since(start), 200);
    EXPECT_EQ(future.get().status, Status::Cancelled);
    // The tool's own token was cancelled, so it returned, and the session is free again.
    EXPECT_TRUE(eventually([&] { return blocking_saw_cancel_->load() > saw_before; }, 1000ms));
    start = Clock::now();
    EXPECT_EQ(ok("'free'", s, true), "'free'");
    EXPECT_LT(ms_since(start), 2000);
}

TEST_F(SessionEngineTest, TimeoutOfAnExecutionBlockedInAToolCall) {
    int saw_before = blocking_saw_cancel_->load();
    auto start = Clock::now();
    ExecOutcome o = run("try:\n    mcp.call('blocking_tool', {})\nexcept Exception:\n    pass\nprint('not reached')",
                        "blocked_timeout", true, 300ms);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 1200);
    EXPECT_THAT(o.out.text, Not(HasSubstr("not reached")));
    EXPECT_TRUE(eventually([&] { return blocking_saw_cancel_->load() > saw_before; }, 1000ms));
    ASSERT_EQ(o.mcp_calls.size(), 1u);
    EXPECT_EQ(o.mcp_calls[0].tool, "blocking_tool");
}

TEST_F(SessionEngineTest, CodeStuckInACCallIsAnsweredAfterTheGrace) {
    ok("import builtins, threading\nbuiltins._engine_test_lock = threading.Lock()\nbuiltins._engine_test_lock.acquire()",
       "lock_owner", true);
    auto start = Clock::now();
    // lock.acquire() blocks in C, where no interrupt can reach it.
    ExecOutcome o = run("import builtins\nprint('waiting')\nbuiltins._engine_test_lock.acquire()", "stuck", true, 300ms);
    double took = ms_since(start);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_TRUE(o.still_running);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->type, "TimeoutError");
    EXPECT_THAT(o.error->message, HasSubstr("stuck"));  // names the session that stays busy
    EXPECT_EQ(o.out.text, "waiting\n");
    EXPECT_GE(took, 550);  // the time-out plus the 300 ms grace
    EXPECT_LT(took, 1500);
    EXPECT_TRUE(session_busy("stuck"));
    // Other sessions keep working meanwhile.
    EXPECT_EQ(ok("'other'", "not_stuck", true), "'other'");
    // Once the C call returns, the pending interrupt stops the code and the session is free.
    ok("import builtins\nbuiltins._engine_test_lock.release()", "lock_owner", true);
    EXPECT_TRUE(eventually([] { return !session_busy("stuck"); }, 3000ms));
    EXPECT_EQ(ok("'unstuck'", "stuck", true), "'unstuck'");
}

TEST_F(SessionEngineTest, AnInterruptHitsOnlyItsOwnSession) {
    auto busy_work = std::async(std::launch::async, [] {
        return run("total = 0\nfor i in range(2_000_000):\n    total += i\ntotal", "worker", true, 20s);
    });
    auto looping = std::async(std::launch::async, [] { return run("while True:\n    pass", "looper", true, 200ms); });
    ExecOutcome l = looping.get();
    ExecOutcome w = busy_work.get();
    EXPECT_EQ(l.status, Status::TimedOut) << describe(l);
    EXPECT_EQ(w.status, Status::Ok) << describe(w);
    EXPECT_EQ(w.result.value_or(""), "1999999000000");
}

TEST_F(SessionEngineTest, OutputOfAThreadThatOutlivesItsExecutionDoesNotLeak) {
    const std::string s = "leaky";
    ExecOutcome first = run(
        "import threading, time\n"
        "def late():\n"
        "    mcp.call('signal', {'name': 'late-thread-started'})\n"
        "    time.sleep(0.3)\n"
        "    print('LATE OUTPUT')\n"
        "    mcp.call('signal', {'name': 'late-thread-printed'})\n"
        "threading.Thread(target=late, daemon=True).start()\n"
        "print('first run')",
        s, true);
    EXPECT_EQ(first.out.text, "first run\n");
    ASSERT_TRUE(signals_->wait("late-thread-started"));
    ExecOutcome second = run(
        "import time\n"
        "for _ in range(100):\n"
        "    time.sleep(0.01)\n"
        "print('second run')",
        s, true);
    EXPECT_TRUE(signals_->wait("late-thread-printed"));
    EXPECT_EQ(second.out.text, "second run\n") << "output of the first run's thread ended up in the second";
}

TEST_F(SessionEngineTest, CancelWhileQueuedBehindAnotherJob) {
    const std::string s = "queue_cancel";
    auto first = std::async(std::launch::async, [&] {
        return run("mcp.call('signal', {'name': 'queue-first'})\nimport time\ntime.sleep(0.5)\n'first'", s, true);
    });
    ASSERT_TRUE(signals_->wait("queue-first"));
    CancellationSource cancel;
    mcp::CallContext ctx(cancel.token(), 6, nullptr, nullptr);
    auto second = std::async(std::launch::async, [&] {
        return exec(*engine_, request("mcp.call('signal', {'name': 'queue-second-ran'})", s, true), ctx);
    });
    std::this_thread::sleep_for(50ms);
    auto start = Clock::now();
    cancel.cancel();
    ASSERT_EQ(second.wait_for(1s), std::future_status::ready);
    EXPECT_LT(ms_since(start), 200);
    EXPECT_EQ(second.get().status, Status::Cancelled);
    ExecOutcome f = first.get();
    EXPECT_EQ(f.status, Status::Ok) << describe(f);
    EXPECT_EQ(f.result.value_or(""), "'first'");
    EXPECT_FALSE(signals_->wait("queue-second-ran", 200ms));
}

TEST_F(SessionEngineTest, TimeoutWhileQueuedBehindAnotherJob) {
    const std::string s = "queue_timeout";
    auto first = std::async(std::launch::async, [&] {
        return run("mcp.call('signal', {'name': 'qt-first'})\nimport time\ntime.sleep(0.8)", s, true);
    });
    ASSERT_TRUE(signals_->wait("qt-first"));
    auto start = Clock::now();
    ExecOutcome o = run("mcp.call('signal', {'name': 'qt-second-ran'})", s, true, 200ms);
    EXPECT_EQ(o.status, Status::TimedOut) << describe(o);
    EXPECT_LT(ms_since(start), 700) << "answered at its own time-out, not when the first job ended";
    EXPECT_EQ(first.get().status, Status::Ok);
    EXPECT_FALSE(signals_->wait("qt-second-ran", 200ms));
}

TEST_F(SessionEngineTest, InterruptAllStopsRunningCode) {
    EngineOptions options;
    auto other = std::make_unique<SessionEngine>(options);
    mcp::CallContext ctx;
    auto running = std::async(std::launch::async, [&] {
        return exec(*other, request("mcp.call('signal', {'name': 'ia-running'})\nimport time\ntime.sleep(30)", "ia", true),
                              ctx);
    });
    ASSERT_TRUE(signals_->wait("ia-running"));
    auto start = Clock::now();
    other->interrupt_all();
    ASSERT_EQ(running.wait_for(2s), std::future_status::ready);
    EXPECT_LT(ms_since(start), 1000);
    ExecOutcome o = running.get();
    EXPECT_NE(o.status, Status::Ok) << describe(o);
    EXPECT_NE(o.status, Status::Error) << describe(o);
    start = Clock::now();
    other.reset();  // the destructor does not hang
    EXPECT_LT(ms_since(start), 2000);
    EXPECT_EQ(ok("'shared engine fine'"), "'shared engine fine'");
}

// submit(): the completion is called exactly once, also on the cancellation path.
TEST_F(SessionEngineTest, SubmitCompletesOnce) {
    std::atomic<int> completions{0};
    std::promise<ExecOutcome> got;
    mcp::CallContext ctx;
    submit(*engine_, request("'submitted'", "submit_s", true), ctx, [&](ExecOutcome o) {
        if (completions++ == 0) got.set_value(std::move(o));
    });
    auto f = got.get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_EQ(f.get().result.value_or(""), "'submitted'");

    CancellationSource cancel;
    mcp::CallContext cctx(cancel.token(), 5, nullptr, nullptr);
    std::atomic<int> cancelled_completions{0};
    submit(*engine_, request("import time\nmcp.call('signal', {'name': 'submit-sleep'})\ntime.sleep(10)", "submit_s", true),
                    cctx, [&](ExecOutcome) { ++cancelled_completions; });
    ASSERT_TRUE(signals_->wait("submit-sleep"));
    cancel.cancel();
    EXPECT_TRUE(eventually([&] { return cancelled_completions.load() == 1; }, 1000ms));
    EXPECT_EQ(ok("1", "submit_s", true), "1");  // the session ran on and is free
    EXPECT_EQ(cancelled_completions.load(), 1);
    EXPECT_EQ(completions.load(), 1);
}

}  // namespace
}  // namespace pymcp::python
