// ProcessEngine's server side against a scripted worker (python3.11 -c: it speaks the worker's
// wire protocol, no python-mcp needed): host requests reach the call's host (ask_client, output),
// a worker that dies answers the running call with its signal and the session is reported lost,
// an answer that says the code is still running gets its worker killed, and none is left behind.
#include <gtest/gtest.h>

#include <signal.h>

#include <mutex>

#include "python_mcp/worker/process_engine.hpp"
#include "support/eventually.hpp"

using namespace pymcp;
using namespace pymcp::engine;
using namespace std::chrono_literals;

namespace {

// Answers every execute with its code as the result, except: "ask" (asks the client through the
// host and answers with the reply), "print" (output first), "segv" (dies), "stuck" (says its
// code is still running after the time-out).
const char* const kFakeWorker = R"PY(
import json, os, signal, sys
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def outcome(result, status=0, still=False):
    stream = {"cut": 0, "text": "", "total": 0}
    return {"background": 0, "calls": {"calls": [], "omitted": []},
            "display": {"image_bytes_dropped": 0, "images_dropped": 0, "items": [], "texts_dropped": 0},
            "err": stream, "ms": 1.0, "out": stream, "result": result, "result_cut": 0,
            "status": status, "still_running": still}
send({"jsonrpc": "2.0", "method": "worker/ready", "params": {"pid": os.getpid()}})
for line in sys.stdin:
    m = json.loads(line)
    if m.get("method") != "worker/execute":
        continue
    x, code = m["params"]["x"], m["params"]["request"]["code"]
    if code == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    result, status, still = code, 0, False
    if code == "ask":
        send({"jsonrpc": "2.0", "id": 1, "method": "host/ask_client",
              "params": {"x": x, "method": "elicitation/create", "params": {"q": 1}}})
        result = json.dumps(json.loads(sys.stdin.readline())["result"], sort_keys=True)
    if code == "print":
        send({"jsonrpc": "2.0", "method": "host/output", "params": {"x": x, "s": 0, "t": "hello\n"}})
    if code == "stuck":
        status, still = 2, True
    send({"jsonrpc": "2.0", "method": "worker/done",
          "params": {"x": x, "variables": 1, "outcome": outcome(result, status, still)}})
)PY";

class Host final : public ExecutionHost {
public:
    void output(OutputStream, std::string_view text) override {
        std::lock_guard lock(mutex);
        out += text;
    }
    json call_tool(const std::string&, json, const std::string&, const CancellationToken&) override { return {}; }
    json list_tools() override { return json::array(); }
    std::string wait_for_server(const std::string&, const CancellationToken&) override { return {}; }
    json ask_client(const std::string& method, json params, const CancellationToken&) override {
        return json{{"asked", method}, {"with", params}};
    }
    std::mutex mutex;
    std::string out;
};

worker::ProcessEngineOptions fake_options() {
    worker::ProcessEngineOptions o;
    o.launch.executable = "/usr/bin/python3.11";
    o.launch.args = {"-c", kFakeWorker};
    o.kill_grace = 100ms;
    return o;
}

ExecRequest request(const std::string& code, const std::string& session = "s") {
    ExecRequest r;
    r.code = code;
    r.session_id = session;
    r.persistent = true;
    r.timeout = 20s;
    return r;
}

TEST(ProcessEngine, HostRequestsReachTheCallsHost) {
    worker::ProcessEngine engine(fake_options());
    auto host = std::make_shared<Host>();
    auto asked = engine.execute(request("ask"), host);
    ASSERT_EQ(asked.status, ExecOutcome::Status::Ok) << (asked.error ? asked.error->message : "");
    EXPECT_EQ(*asked.result, R"({"asked": "elicitation/create", "with": {"q": 1}})");
    auto printed = engine.execute(request("print"), host);
    EXPECT_EQ(*printed.result, "print");
    std::lock_guard lock(host->mutex);
    EXPECT_EQ(host->out, "hello\n");
}

TEST(ProcessEngine, ACrashAnswersWithTheSignalAndLosesOnlyThatSession) {
    worker::ProcessEngine engine(fake_options());
    EXPECT_EQ(*engine.execute(request("1", "other"), nullptr).result, "1");
    auto crashed = engine.execute(request("segv"), nullptr);
    EXPECT_EQ(crashed.status, ExecOutcome::Status::Error);
    ASSERT_TRUE(crashed.error);
    EXPECT_EQ(crashed.error->type, "SessionLost");
    EXPECT_NE(crashed.error->message.find("SIGSEGV"), std::string::npos) << crashed.error->message;
    for (const auto& s : engine.list_sessions()) {
        if (s.id == "s") {
            EXPECT_EQ(s.losses, 1u);
            EXPECT_NE(s.lost.find("SIGSEGV"), std::string::npos);
        } else {
            EXPECT_EQ(s.losses, 0u);
        }
    }
    EXPECT_EQ(*engine.execute(request("again"), nullptr).result, "again");  // a fresh worker
}

TEST(ProcessEngine, CodeStillRunningAfterTheGraceGetsItsWorkerKilled) {
    worker::ProcessEngine engine(fake_options());
    auto stuck = engine.execute(request("stuck"), nullptr);
    EXPECT_EQ(stuck.status, ExecOutcome::Status::TimedOut);
    EXPECT_FALSE(stuck.still_running);
    ASSERT_TRUE(stuck.error);
    EXPECT_NE(stuck.error->message.find("killed"), std::string::npos) << stuck.error->message;
    EXPECT_EQ(engine.list_sessions().at(0).losses, 1u);
    EXPECT_EQ(*engine.execute(request("fine"), nullptr).result, "fine");
}

TEST(ProcessEngine, RestartAndClearEndWorkersAndNoneIsLeft) {
    auto engine = std::make_unique<worker::ProcessEngine>(fake_options());
    engine->execute(request("1", "a"), nullptr);
    engine->execute(request("1", "b"), nullptr);
    EXPECT_EQ(engine->restart_session("a"), std::optional<size_t>(1));
    EXPECT_EQ(engine->clear_session("b"), std::optional<size_t>(1));
    EXPECT_EQ(engine->restart_session("nobody"), std::nullopt);
    // The spare stays; the two sessions' workers are reaped.
    EXPECT_TRUE(pymcp::testing::eventually([&] { return engine->worker_count() <= 1; }));
    engine.reset();  // kills the spare and waits for every worker to be reaped
}

}  // namespace
