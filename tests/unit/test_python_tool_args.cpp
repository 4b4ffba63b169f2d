// The python tool's argument handling and result formatting, on a fake Engine that records the
// ExecRequest it is given (no Python here).

#include "python_mcp/tools/python_tool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "python_mcp/mcp/server.hpp"
#include "python_mcp/mcp/tool_registry.hpp"
#include "python_mcp/engine/engine.hpp"
#include "python_mcp/tools/script_store.hpp"
#include "support/eventually.hpp"
#include "support/mcp_test_client.hpp"

namespace pymcp::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using mcp::json;
using engine::ExecOutcome;
using engine::ExecRequest;
using namespace std::chrono_literals;
using pymcp::testing::eventually;

class FakeEngine final : public engine::Engine {
public:
    bool can_submit() const override { return async; }
    void submit(const ExecRequest& request, std::shared_ptr<engine::ExecutionHost> host, Completion done) override {
        {
            std::lock_guard lock(mutex);
            requests.push_back(request);
            hosts.push_back(host);
            if (refuse) throw engine::EngineError("too many sessions: 64 exist");
        }
        if (async) ++submitted;
        done(next);
    }
    std::optional<size_t> clear_session(const std::string& id) override {
        cleared.push_back(id);
        if (id == "missing") return std::nullopt;
        return 3;
    }
    std::vector<engine::SessionInfo> list_sessions() override { return sessions; }

    std::mutex mutex;
    std::vector<ExecRequest> requests;
    std::vector<std::shared_ptr<engine::ExecutionHost>> hosts;
    std::vector<std::string> cleared;
    std::vector<engine::SessionInfo> sessions;
    ExecOutcome next;
    bool refuse = false;
    bool async = false;
    int submitted = 0;
};

fs::path make_temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "python_tool_test_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

const char* const kReadme = "# python tool README\nThe token is c0de5eed. Use session_id to keep variables.";

class PythonToolTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = make_temp_dir();
        scripts_ = std::make_unique<ScriptStore>(root_ / "scripts");
        make_tool(false);
    }
    void TearDown() override {
        registry_.reset();
        tool_.reset();
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    void make_tool(bool gate) {
        registry_.reset();
        PythonToolOptions options;
        options.default_timeout = 7250ms;
        options.default_max_output = 5000;
        options.gate = UnlockGate{gate, "c0de5eed"};
        options.readme = kReadme;
        tool_ = std::make_unique<PythonTool>(engine_, *scripts_, options);
        registry_ = std::make_unique<mcp::ToolRegistry>();
        tool_->register_in(*registry_);
    }

    // Through the registry, as the server calls it: ToolErrors become isError results.
    json call(const json& arguments, mcp::CallContext context = {}) {
        return registry_->call("python", arguments, context);
    }
    static std::string text(const json& result) { return result["content"][0]["text"].get<std::string>(); }
    static bool is_error(const json& result) { return result.value("isError", false); }
    const ExecRequest& last() {
        EXPECT_FALSE(engine_.requests.empty());
        return engine_.requests.back();
    }

    fs::path root_;
    FakeEngine engine_;
    std::unique_ptr<ScriptStore> scripts_;
    std::unique_ptr<PythonTool> tool_;
    std::unique_ptr<mcp::ToolRegistry> registry_;
};

void expect_same(const ExecRequest& a, const ExecRequest& b) {
    EXPECT_EQ(a.code, b.code);
    EXPECT_EQ(a.session_id, b.session_id);
    EXPECT_EQ(a.persistent, b.persistent);
    EXPECT_EQ(a.run_on_main_thread, b.run_on_main_thread);
    EXPECT_EQ(a.timeout, b.timeout);
    EXPECT_EQ(a.max_output, b.max_output);
    EXPECT_EQ(a.filename, b.filename);
}

// ---------------------------------------------------------------------------------------------
// Arguments

TEST_F(PythonToolTest, WrappedAndUnwrappedArgumentsAreTheSame) {
    json fields{{"operation", "execute"},     {"code", "x = 1\nx + 1"}, {"session_id", "analysis"},
                {"persistent", true},         {"timeout", 2.5},         {"max_output", 1000},
                {"run_on_main_thread", true}, {"filename", "ignored.py"}};
    json r1 = call(fields);
    ASSERT_FALSE(is_error(r1)) << r1.dump();
    ExecRequest plain = last();
    json r2 = call(json{{"input", fields}});
    ASSERT_FALSE(is_error(r2)) << r2.dump();
    ExecRequest wrapped = last();
    expect_same(plain, wrapped);
    EXPECT_EQ(plain.code, "x = 1\nx + 1");
    EXPECT_EQ(plain.session_id, "analysis");
    EXPECT_TRUE(plain.persistent);
    EXPECT_TRUE(plain.run_on_main_thread);
    EXPECT_EQ(plain.timeout, 2500ms);
    EXPECT_EQ(plain.max_output, 1000u);
    EXPECT_EQ(plain.filename, "");  // execute runs code, not a file
    // Fields beside "input" are merged in; the inner ones win.
    call(json{{"session_id", "outer"}, {"persistent", true}, {"input", {{"code", "1"}, {"session_id", "inner"}}}});
    EXPECT_EQ(last().session_id, "inner");
    EXPECT_TRUE(last().persistent);
}

TEST_F(PythonToolTest, Defaults) {
    json r = call(json{{"code", "print(1)"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    const auto& req = last();
    EXPECT_EQ(req.code, "print(1)");
    EXPECT_EQ(req.session_id, "default");
    EXPECT_FALSE(req.persistent);
    EXPECT_FALSE(req.run_on_main_thread);
    EXPECT_EQ(req.timeout, 7250ms);
    EXPECT_EQ(req.max_output, 5000u);
    // An empty session name is the default session; nulls are "not given".
    call(json{{"code", "1"}, {"session_id", ""}, {"timeout", nullptr}, {"persistent", nullptr}});
    EXPECT_EQ(last().session_id, "default");
    EXPECT_EQ(last().timeout, 7250ms);
    EXPECT_FALSE(last().persistent);
    // Explicit operation "execute" in the wrapped form.
    call(json{{"input", {{"operation", "execute"}, {"code", "2"}}}});
    EXPECT_EQ(last().code, "2");
    EXPECT_EQ(engine_.requests.size(), 3u);
}

TEST_F(PythonToolTest, TimeoutAndMaxOutputValidation) {
    struct Case {
        json args;
        const char* mentions;
    };
    const Case cases[] = {
        {{{"code", "1"}, {"timeout", 0}}, "timeout"},
        {{{"code", "1"}, {"timeout", -1}}, "timeout"},
        {{{"code", "1"}, {"timeout", -0.001}}, "timeout"},
        {{{"code", "1"}, {"timeout", "5"}}, "timeout"},
        {{{"code", "1"}, {"timeout", true}}, "timeout"},
        {{{"code", "1"}, {"max_output", 63}}, "max_output"},
        {{{"code", "1"}, {"max_output", 0}}, "max_output"},
        {{{"code", "1"}, {"max_output", -100}}, "max_output"},
        {{{"code", "1"}, {"max_output", "100"}}, "max_output"},
        {{{"code", "1"}, {"max_output", 100.5}}, "max_output"},
        {{{"code", "1"}, {"persistent", "yes"}}, "persistent"},
        {{{"code", "1"}, {"session_id", 5}}, "session_id"},
        {{{"code", 5}}, "code"},
        {{{"operation", "execute"}}, "code"},
        {{{"input", "not an object"}}, "input"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.args.dump());
        json r = call(c.args);
        EXPECT_TRUE(is_error(r));
        EXPECT_THAT(text(r), HasSubstr(c.mentions));
    }
    EXPECT_TRUE(engine_.requests.empty()) << "the engine must not run code for invalid arguments";

    // Valid edges.
    ASSERT_FALSE(is_error(call(json{{"code", "1"}, {"max_output", 64}})));
    EXPECT_EQ(last().max_output, 64u);
    ASSERT_FALSE(is_error(call(json{{"code", "1"}, {"max_output", 128.0}})));
    EXPECT_EQ(last().max_output, 128u);
    ASSERT_FALSE(is_error(call(json{{"code", "1"}, {"timeout", 0.01}})));
    EXPECT_EQ(last().timeout, 10ms);
    ASSERT_FALSE(is_error(call(json{{"code", "1"}, {"timeout", 1e300}})));  // capped, not overflowed
    EXPECT_GT(last().timeout, 3600s);
    EXPECT_LE(last().timeout, std::chrono::milliseconds(7LL * 86400 * 1000));
}

TEST_F(PythonToolTest, UnknownOperationListsTheOperations) {
    json r = call(json{{"operation", "frobnicate"}, {"code", "1"}});
    ASSERT_TRUE(is_error(r));
    EXPECT_THAT(text(r), HasSubstr("frobnicate"));
    for (const char* op : {"execute", "save_script", "load_script", "list_scripts", "delete_script", "run_script",
                           "clear_session", "list_sessions", "readme"})
        EXPECT_THAT(text(r), HasSubstr(op));
    EXPECT_TRUE(engine_.requests.empty());
}

TEST_F(PythonToolTest, NoOperationAndNoCodeAsksForAnOperation) {
    json r = call(json::object());
    ASSERT_TRUE(is_error(r));
    EXPECT_THAT(text(r), HasSubstr("operation"));
    EXPECT_THAT(text(r), HasSubstr("execute"));
    r = call(json{{"input", json::object()}});
    EXPECT_TRUE(is_error(r));
    EXPECT_TRUE(engine_.requests.empty());
}

TEST_F(PythonToolTest, Readme) {
    json r = call(json{{"operation", "readme"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(text(r), kReadme);
    EXPECT_EQ(r["structuredContent"]["readme"], kReadme);
    r = call(json{{"input", {{"operation", "readme"}}}});
    EXPECT_EQ(text(r), kReadme);
}

// ---------------------------------------------------------------------------------------------
// The unlock gate

TEST_F(PythonToolTest, ReadmeWorksWithoutTokenWhenTheGateIsOn) {
    make_tool(true);
    json r = call(json{{"operation", "readme"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(text(r), kReadme);
}

TEST_F(PythonToolTest, GateRefusesWithoutTheTokenAndShowsTheReadme) {
    make_tool(true);
    for (const json& args : {json{{"code", "1"}},
                             json{{"code", "1"}, {"tool_unlock_token", "wrong"}},
                             json{{"code", "1"}, {"tool_unlock_token", 12345}},
                             json{{"input", {{"code", "1"}, {"tool_unlock_token", "nope"}}}},
                             json{{"operation", "list_scripts"}},
                             json{{"operation", "list_sessions"}},
                             json{{"operation", "clear_session"}, {"session_id", "s"}},
                             json{{"operation", "save_script"}, {"filename", "a"}, {"code", "1"}}}) {
        SCOPED_TRACE(args.dump());
        json r = call(args);
        ASSERT_TRUE(is_error(r));
        EXPECT_THAT(text(r), HasSubstr(kReadme));
        EXPECT_THAT(text(r), HasSubstr("tool_unlock_token"));
    }
    EXPECT_TRUE(engine_.requests.empty());
    EXPECT_TRUE(engine_.cleared.empty());
    EXPECT_FALSE(fs::exists(root_ / "scripts" / "a.py"));
}

TEST_F(PythonToolTest, GatePassesWithTheRightToken) {
    make_tool(true);
    json r = call(json{{"code", "1"}, {"tool_unlock_token", "c0de5eed"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(engine_.requests.size(), 1u);
    r = call(json{{"input", {{"code", "2"}, {"tool_unlock_token", "c0de5eed"}}}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(last().code, "2");
}

TEST_F(PythonToolTest, GateOffIgnoresTheToken) {
    json r = call(json{{"code", "1"}, {"tool_unlock_token", "anything"}});
    EXPECT_FALSE(is_error(r));
    EXPECT_EQ(engine_.requests.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Nested calls from Python code

TEST_F(PythonToolTest, NestedCallIntoTheCallingSessionIsRefusedWhenPersistent) {
    mcp::CallContext client;
    mcp::CallContext from_s1 = client.nested(CancellationToken(), "s1");
    json r = call(json{{"code", "1"}, {"session_id", "s1"}, {"persistent", true}}, from_s1);
    ASSERT_TRUE(is_error(r));
    EXPECT_THAT(text(r), HasSubstr("s1"));
    EXPECT_TRUE(engine_.requests.empty());

    // Deeper: s1 -> s2 -> back into s1 is refused too; s2 is refused; s3 is fine.
    mcp::CallContext from_s2 = from_s1.nested(CancellationToken(), "s2");
    EXPECT_TRUE(is_error(call(json{{"code", "1"}, {"session_id", "s1"}, {"persistent", true}}, from_s2)));
    EXPECT_TRUE(is_error(call(json{{"code", "1"}, {"session_id", "s2"}, {"persistent", true}}, from_s2)));
    EXPECT_TRUE(engine_.requests.empty());
    EXPECT_FALSE(is_error(call(json{{"code", "1"}, {"session_id", "s3"}, {"persistent", true}}, from_s2)));
    EXPECT_EQ(last().session_id, "s3");

    // A fresh namespace under the same name blocks nothing: allowed.
    EXPECT_FALSE(is_error(call(json{{"code", "1"}, {"session_id", "s1"}}, from_s1)));
    // Another session: allowed, and the engine gets a host for the code's calls.
    EXPECT_FALSE(is_error(call(json{{"code", "1"}, {"session_id", "other"}, {"persistent", true}}, from_s1)));
    ASSERT_FALSE(engine_.hosts.empty());
    EXPECT_NE(engine_.hosts.back(), nullptr);
    // The default session, persistent, called from code in the default session.
    mcp::CallContext from_default = client.nested(CancellationToken(), "default");
    EXPECT_TRUE(is_error(call(json{{"code", "1"}, {"persistent", true}}, from_default)));
}

// ---------------------------------------------------------------------------------------------
// Formatting outcomes

TEST_F(PythonToolTest, FormatsASuccess) {
    engine_.next.status = ExecOutcome::Status::Ok;
    engine_.next.out.text = "hello\n";
    engine_.next.out.total_bytes = 6;
    engine_.next.err.text = "warning: x\n";
    engine_.next.result = "42";
    engine_.next.duration_ms = 12.3456789;
    engine_.next.mcp_calls = {{"sqlite", 1.5, false}, {"srv__t", 2.0, true}};
    json r = call(json{{"code", "print('hello'); 42"}, {"session_id", "s"}, {"persistent", true}});
    EXPECT_FALSE(is_error(r));
    const json& s = r["structuredContent"];
    EXPECT_EQ(s["stdout"], "hello\n");
    EXPECT_EQ(s["stderr"], "warning: x\n");
    EXPECT_EQ(s["result"], "42");
    EXPECT_TRUE(s["success"].get<bool>());
    EXPECT_TRUE(s["error"].is_null());
    EXPECT_EQ(s["session_id"], "s");
    EXPECT_TRUE(s["persistent"].get<bool>());
    EXPECT_NEAR(s["duration_ms"].get<double>(), 12.3457, 0.001);
    EXPECT_FALSE(s["truncated"].get<bool>());
    EXPECT_FALSE(s["timed_out"].get<bool>());
    EXPECT_FALSE(s.contains("still_running"));
    ASSERT_EQ(s["mcp_calls"].size(), 2u);
    EXPECT_EQ(s["mcp_calls"][0]["tool"], "sqlite");
    EXPECT_FALSE(s["mcp_calls"][0]["isError"].get<bool>());
    EXPECT_TRUE(s["mcp_calls"][1]["isError"].get<bool>());
    EXPECT_FALSE(s.contains("mcp_calls_omitted"));  // only when calls were left out
    EXPECT_THAT(text(r), HasSubstr("hello"));
    EXPECT_THAT(text(r), HasSubstr("[stderr]\nwarning: x"));
    EXPECT_THAT(text(r), HasSubstr("[result] 42"));
}

TEST_F(PythonToolTest, FormatsOmittedCallsPerTool) {
    engine_.next.mcp_calls = {{"sqlite", 1.0, false}};
    engine_.next.mcp_calls_omitted = {{"sqlite", 99980, 2, 123.4564}, {"python", 3, 0, 7.0}};
    json s = call(json{{"code", "x"}})["structuredContent"];
    ASSERT_EQ(s["mcp_calls"].size(), 1u);
    ASSERT_EQ(s["mcp_calls_omitted"].size(), 2u);
    EXPECT_EQ(s["mcp_calls_omitted"][0], (json{{"tool", "sqlite"}, {"calls", 99980}, {"errors", 2}, {"total_ms", 123.456}}));
    EXPECT_EQ(s["mcp_calls_omitted"][1]["tool"], "python");
    EXPECT_EQ(s["mcp_calls_omitted"][1]["calls"], 3);
}

TEST_F(PythonToolTest, FormatsNoOutput) {
    json r = call(json{{"code", "x = 1"}});
    EXPECT_FALSE(is_error(r));
    EXPECT_EQ(text(r), "(no output)");
    EXPECT_TRUE(r["structuredContent"]["result"].is_null());
    EXPECT_EQ(r["structuredContent"]["stdout"], "");
    EXPECT_TRUE(r["structuredContent"]["mcp_calls"].is_array());
}

TEST_F(PythonToolTest, FormatsAnError) {
    engine_.next.status = ExecOutcome::Status::Error;
    engine_.next.out.text = "before\n";
    engine_.next.error = engine::ExecError{"ZeroDivisionError", "division by zero",
                                           "Traceback (most recent call last):\n  File \"<python-input>\", line 2\n"
                                           "ZeroDivisionError: division by zero\n"};
    json r = call(json{{"code", "print('before')\n1/0"}});
    EXPECT_TRUE(is_error(r));
    const json& s = r["structuredContent"];
    EXPECT_FALSE(s["success"].get<bool>());
    EXPECT_EQ(s["error"]["type"], "ZeroDivisionError");
    EXPECT_EQ(s["error"]["message"], "division by zero");
    EXPECT_THAT(s["error"]["traceback"].get<std::string>(), HasSubstr("line 2"));
    EXPECT_FALSE(s["timed_out"].get<bool>());
    EXPECT_THAT(text(r), HasSubstr("before"));
    EXPECT_THAT(text(r), HasSubstr("ZeroDivisionError: division by zero"));
    EXPECT_THAT(text(r), HasSubstr("line 2"));
}

TEST_F(PythonToolTest, FormatsATimeoutAndTruncation) {
    engine_.next.status = ExecOutcome::Status::TimedOut;
    engine_.next.still_running = true;
    engine_.next.out.text = "head ... tail";
    engine_.next.out.total_bytes = 100000;
    engine_.next.out.cut_bytes = 99000;
    engine_.next.error = engine::ExecError{"TimeoutError", "the code ran past its timeout of 1 s", ""};
    json r = call(json{{"code", "while True: pass"}, {"timeout", 1}});
    EXPECT_TRUE(is_error(r));
    const json& s = r["structuredContent"];
    EXPECT_TRUE(s["timed_out"].get<bool>());
    EXPECT_FALSE(s["success"].get<bool>());
    EXPECT_TRUE(s["truncated"].get<bool>());
    EXPECT_TRUE(s["still_running"].get<bool>());
    EXPECT_EQ(s["error"]["type"], "TimeoutError");
    EXPECT_THAT(text(r), HasSubstr("TimeoutError"));
    EXPECT_THAT(text(r), HasSubstr("timeout"));
}

TEST_F(PythonToolTest, EngineRefusalIsAnIsErrorResult) {
    engine_.refuse = true;
    json r = call(json{{"code", "1"}, {"session_id", "new"}, {"persistent", true}});
    EXPECT_TRUE(is_error(r));
    EXPECT_THAT(text(r), HasSubstr("too many sessions"));
}

// ---------------------------------------------------------------------------------------------
// Session and script operations

TEST_F(PythonToolTest, ClearSession) {
    json r = call(json{{"operation", "clear_session"}, {"session_id", "work"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(engine_.cleared, (std::vector<std::string>{"work"}));
    EXPECT_TRUE(r["structuredContent"]["cleared"].get<bool>());
    EXPECT_EQ(r["structuredContent"]["variables_freed"], 3);
    EXPECT_THAT(text(r), HasSubstr("work"));
    r = call(json{{"operation", "clear_session"}, {"session_id", "missing"}});
    ASSERT_FALSE(is_error(r));
    EXPECT_FALSE(r["structuredContent"]["cleared"].get<bool>());
    EXPECT_EQ(r["structuredContent"]["variables_freed"], 0);
    call(json{{"operation", "clear_session"}});
    EXPECT_EQ(engine_.cleared.back(), "default");
}

TEST_F(PythonToolTest, ListSessions) {
    json r = call(json{{"operation", "list_sessions"}});
    ASSERT_FALSE(is_error(r));
    EXPECT_EQ(r["structuredContent"]["count"], 0);
    engine::SessionInfo info;
    info.id = "analysis";
    info.variables = 7;
    info.busy = true;
    info.executions = 4;
    info.created = info.last_used = std::chrono::system_clock::now();
    engine_.sessions = {info};
    r = call(json{{"operation", "list_sessions"}});
    ASSERT_FALSE(is_error(r));
    const json& s = r["structuredContent"];
    EXPECT_EQ(s["count"], 1);
    EXPECT_EQ(s["sessions"][0]["session_id"], "analysis");
    EXPECT_EQ(s["sessions"][0]["variables"], 7);
    EXPECT_TRUE(s["sessions"][0]["busy"].get<bool>());
    EXPECT_EQ(s["sessions"][0]["executions"], 4);
    EXPECT_THAT(s["sessions"][0]["created"].get<std::string>(), ::testing::MatchesRegex("[0-9-]{10}T[0-9:]{8}Z"));
    EXPECT_THAT(text(r), HasSubstr("analysis"));
}

TEST_F(PythonToolTest, ScriptOperationsAndRunScript) {
    json r = call(json{{"operation", "save_script"}, {"filename", "job"}, {"code", "print('job')\n"}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(r["structuredContent"]["filename"], "job.py");
    r = call(json{{"operation", "load_script"}, {"filename", "job.py"}});
    EXPECT_EQ(r["structuredContent"]["code"], "print('job')\n");
    r = call(json{{"operation", "list_scripts"}});
    EXPECT_EQ(r["structuredContent"]["count"], 1);
    EXPECT_THAT(text(r), HasSubstr("job.py"));

    r = call(json{{"operation", "run_script"}, {"filename", "job"}, {"session_id", "runner"}, {"persistent", true}});
    ASSERT_FALSE(is_error(r)) << r.dump();
    EXPECT_EQ(last().code, "print('job')\n");
    EXPECT_EQ(last().session_id, "runner");
    EXPECT_TRUE(last().persistent);
    EXPECT_EQ(fs::path(last().filename).filename(), "job.py");  // tracebacks name the script

    EXPECT_TRUE(is_error(call(json{{"operation", "run_script"}, {"filename", "../etc/passwd"}})));
    EXPECT_TRUE(is_error(call(json{{"operation", "run_script"}, {"filename", "ghost"}})));
    EXPECT_TRUE(is_error(call(json{{"operation", "save_script"}, {"filename", "x"}})));  // no code
    EXPECT_TRUE(is_error(call(json{{"operation", "load_script"}})));                     // no filename

    r = call(json{{"operation", "delete_script"}, {"filename", "job"}});
    ASSERT_FALSE(is_error(r));
    EXPECT_TRUE(r["structuredContent"]["deleted"].get<bool>());
    EXPECT_EQ(call(json{{"operation", "list_scripts"}})["structuredContent"]["count"], 0);
    EXPECT_EQ(engine_.requests.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Definition and registration

TEST_F(PythonToolTest, DefinitionAndDescriptionListsCallableTools) {
    auto d = registry_->find("python");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->input_schema["type"], "object");
    for (const char* field : {"operation", "code", "session_id", "persistent", "timeout", "max_output", "input",
                              "filename", "run_on_main_thread", "tool_unlock_token"})
        EXPECT_TRUE(d->input_schema["properties"].contains(field)) << field;
    EXPECT_EQ(d->output_schema["type"], "object");
    EXPECT_TRUE(d->annotations.is_object());

    mcp::ToolDefinition sqlite;
    sqlite.name = "sqlite";
    registry_->add(sqlite, mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("s"); }));
    mcp::ToolDefinition downstream;
    downstream.name = "git__status";
    downstream.description = "Show the working tree status";
    downstream.meta = json{{"server", "git"}, {"tool", "status"}};
    downstream.exposed = false;
    registry_->add(downstream, mcp::blocking_handler([](const json&, mcp::CallContext&) { return mcp::tool_result("g"); }));
    std::string desc = registry_->find("python")->description;
    EXPECT_THAT(desc, HasSubstr("sqlite"));
    EXPECT_THAT(desc, HasSubstr("git"));
    EXPECT_THAT(desc, HasSubstr("status"));
    registry_->remove_prefix("git__");
    EXPECT_THAT(registry_->find("python")->description, Not(HasSubstr("status")));
}

// ---------------------------------------------------------------------------------------------
// The non-blocking path (engines that can submit)

// Dispatches a call of the python tool as the server does; records its answers and whether it
// asked for a thread to block on (run inline here).
struct Dispatch {
    std::vector<json> results;
    int offloaded = 0;

    void operator()(mcp::ToolRegistry& registry, const json& arguments, const mcp::CallContext& context) {
        mcp::ToolReply reply{[this](json r) { results.push_back(std::move(r)); },
                             [this](int code, const std::string& m) { results.push_back(json{{"rejected", code}, {"message", m}}); }};
        registry.dispatch(mcp::ToolCall("python", arguments, context, reply, [this](std::function<void()> work) {
            ++offloaded;
            work();
            return true;
        }));
    }
};

TEST_F(PythonToolTest, ExecuteIsSubmittedWithoutAThread) {
    engine_.async = true;
    engine_.next.result = "3";
    Dispatch d;
    mcp::CallContext ctx;
    d(*registry_, json{{"input", {{"code", "1+2"}, {"timeout", 3}}}}, ctx);
    EXPECT_EQ(engine_.submitted, 1);
    EXPECT_EQ(d.offloaded, 0);
    ASSERT_EQ(d.results.size(), 1u);
    EXPECT_EQ(d.results[0]["structuredContent"]["result"], "3");
    EXPECT_EQ(last().timeout, 3000ms);
    EXPECT_EQ(last().session_id, "default");

    // Other operations run where blocking is allowed.
    d(*registry_, json{{"operation", "list_sessions"}}, ctx);
    EXPECT_EQ(d.offloaded, 1);
    EXPECT_EQ(d.results.size(), 2u);

    // Argument errors come back as isError results.
    d(*registry_, json{{"code", "1"}, {"timeout", -1}}, ctx);
    ASSERT_EQ(d.results.size(), 3u);
    EXPECT_TRUE(is_error(d.results[2]));
    EXPECT_EQ(engine_.submitted, 1);

    // The engine refuses (too many sessions): the refusal is the call's isError result.
    engine_.refuse = true;
    EXPECT_NO_THROW(d(*registry_, json{{"code", "1"}, {"session_id", "n"}, {"persistent", true}}, ctx));
    ASSERT_EQ(d.results.size(), 4u);
    EXPECT_TRUE(is_error(d.results[3]));
    EXPECT_THAT(text(d.results[3]), HasSubstr("too many sessions"));
}

// What a client sees when the engine refuses an execute on the non-blocking path: an answer
// (isError), and the request is not left in flight.
TEST_F(PythonToolTest, RefusalThroughTheServerIsAnsweredAndLeavesNothingInFlight) {
    engine_.async = true;
    engine_.refuse = true;
    mcp::Server server(*registry_, mcp::ServerOptions{});
    testing::McpTestClient client(server);
    client.initialize("2025-06-18");
    json args{{"code", "1"}, {"session_id", "n"}, {"persistent", true}};
    for (int round = 0; round < 2; ++round) {  // the id can be used again
        SCOPED_TRACE(round);
        size_t from = client.size();
        client.send(jsonrpc::make_request(1, "tools/call", json{{"name", "python"}, {"arguments", args}}));
        auto answer = client.wait_for([](const json& m) { return m.value("id", json()) == 1; }, 5000ms, from);
        ASSERT_TRUE(answer);
        ASSERT_TRUE(answer->contains("result")) << answer->dump();
        EXPECT_TRUE((*answer)["result"]["isError"].get<bool>());
        EXPECT_THAT(text((*answer)["result"]), HasSubstr("too many sessions"));
        EXPECT_TRUE(server.wait_idle(2000ms)) << "the refused call is still counted as running";
        EXPECT_TRUE(eventually([&] { return server.in_flight() == 0u; })) << server.in_flight();
    }
}

TEST_F(PythonToolTest, SubmitPathKeepsTheGateAndTheSessionGuard) {
    make_tool(true);
    engine_.async = true;
    Dispatch d;
    mcp::CallContext ctx;
    d(*registry_, json{{"code", "1"}}, ctx);
    ASSERT_EQ(d.results.size(), 1u);
    EXPECT_TRUE(is_error(d.results[0]));
    EXPECT_THAT(text(d.results[0]), HasSubstr(kReadme));
    EXPECT_EQ(engine_.submitted, 0);

    mcp::CallContext from_s1 = ctx.nested(CancellationToken(), "s1");
    d(*registry_, json{{"code", "1"}, {"session_id", "s1"}, {"persistent", true}, {"tool_unlock_token", "c0de5eed"}},
      from_s1);
    ASSERT_EQ(d.results.size(), 2u);
    EXPECT_TRUE(is_error(d.results[1]));
    EXPECT_EQ(engine_.submitted, 0);
}

}  // namespace
}  // namespace pymcp::tools
