// Code asking its client (issue 17) on the real interpreter, with a host that plays the client:
// the time-out pauses while the answer is awaited, the wait ends on cancellation, and the host's
// failures become mcp.AskUnavailable / mcp.AskError.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "python_mcp/engine/execution_host.hpp"
#include "python_mcp/python/session_engine.hpp"
#include "python_mcp/support/cancellation.hpp"
#include "support/eventually.hpp"

namespace pymcp::python {
namespace {

using ::testing::HasSubstr;
using json = pymcp::json;
using namespace std::chrono_literals;
using Status = engine::ExecOutcome::Status;

// A client whose answers come from `answer(method, params, cancel)`.
class AskingHost final : public engine::ExecutionHost {
public:
    using Answer = std::function<json(const std::string&, const json&, const CancellationToken&)>;
    explicit AskingHost(Answer answer) : answer_(std::move(answer)) {}
    json call_tool(const std::string&, json, const std::string&, const CancellationToken&) override {
        throw engine::HostError("no tools here");
    }
    json list_tools() override { return json::array(); }
    std::string wait_for_server(const std::string&, const CancellationToken&) override { return {}; }
    json ask_client(const std::string& method, json params, const CancellationToken& cancel) override {
        return answer_(method, params, cancel);
    }

private:
    Answer answer_;
};

class AskPauseTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!engine_) engine_ = new SessionEngine(EngineOptions{});  // lives until the process _Exits
    }
    // Runs in the persistent session "ask", and returns once the session is idle again, so no
    // code of these tests still runs when the next test (or suite, with its own engine) starts.
    static engine::ExecOutcome run(const std::string& code, std::chrono::milliseconds timeout, AskingHost::Answer answer,
                                   CancellationToken cancel = {}) {
        engine::ExecRequest r;
        r.code = code;
        r.session_id = "ask";
        r.persistent = true;
        r.timeout = timeout;
        r.max_output = 64 * 1024;
        r.cancel = cancel;
        auto outcome = engine_->execute(r, std::make_shared<AskingHost>(std::move(answer)));
        EXPECT_TRUE(pymcp::testing::eventually([] {
            for (const auto& s : engine_->list_sessions())
                if (s.id == "ask") return !s.busy;
            return true;
        }, std::chrono::seconds(20)));
        return outcome;
    }
    static inline SessionEngine* engine_ = nullptr;
};

TEST_F(AskPauseTest, TheTimeoutPausesWhileTheClientAnswers) {
    // The "person" takes 1.2 s against a 0.4 s time-out; a deadline that did not pause would
    // cancel the token and end the wait early.
    bool cut_short = false;
    auto o = run("r = mcp._ask_client('elicitation/create', {'message': 'q'})\nprint(r['action'])", 400ms,
                 [&](const std::string&, const json&, const CancellationToken& cancel) {
                     cut_short = cancel.wait_for(1200ms);
                     return json{{"action", "accept"}, {"content", json::object()}};
                 });
    EXPECT_FALSE(cut_short);
    EXPECT_EQ(o.status, Status::Ok) << (o.error ? o.error->message : "");
    EXPECT_EQ(o.out.text, "accept\n");
}

TEST_F(AskPauseTest, TheTimeoutStillCountsOutsideTheWait) {
    auto o = run("mcp._ask_client('elicitation/create', {})\nwhile True: pass", 300ms,
                 [](const std::string&, const json&, const CancellationToken&) { return json::object(); });
    EXPECT_EQ(o.status, Status::TimedOut);
}

TEST_F(AskPauseTest, CancellationEndsTheWait) {
    CancellationSource source;
    auto o = run("mcp._ask_client('sampling/createMessage', {})", 20s,
                 [&](const std::string&, const json&, const CancellationToken& cancel) -> json {
                     source.cancel("client went away");
                     cancel.wait_for(20s);
                     throw std::runtime_error("cancelled");
                 },
                 source.token());
    EXPECT_EQ(o.status, Status::Cancelled);
}

TEST_F(AskPauseTest, HostFailuresBecomeAskUnavailableAndAskError) {
    auto o = run(R"(
out = []
for m in ('elicitation/create', 'sampling/createMessage'):
    try:
        mcp._ask_client(m, {})
    except mcp.AskUnavailable as e:
        out.append('unavailable: ' + str(e))
    except mcp.AskError as e:
        out.append('error: ' + str(e))
print(out))",
                 20s, [](const std::string& method, const json&, const CancellationToken&) -> json {
                     if (method == "elicitation/create") throw engine::HostError("no elicitation here");
                     throw std::runtime_error("the client answered with error -1: refused");
                 });
    EXPECT_EQ(o.status, Status::Ok);
    EXPECT_THAT(o.out.text, HasSubstr("'unavailable: no elicitation here', 'error: the client answered"));
}

}  // namespace
}  // namespace pymcp::python
