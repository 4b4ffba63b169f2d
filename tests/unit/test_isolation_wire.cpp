// Process isolation (issue 16), the Python-free parts: what crosses a worker's pipe survives the
// round trip (binary image bytes included), and the router keeps each session in the mode it was
// created with.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "python_mcp/engine/isolation_router.hpp"
#include "python_mcp/support/json_text.hpp"
#include "python_mcp/worker/wire.hpp"
#include "python_mcp/worker/worker_process.hpp"

using namespace pymcp;
using namespace pymcp::engine;

namespace {

// Through the text the pipe carries, as the Peer writes and reads it.
json parse_json_for_test(const json& value) {
    std::string text;
    append_json(text, value);
    return parse_json(text, 128);
}

TEST(IsolationWire, RequestRoundTrip) {
    ExecRequest r;
    r.code = "print('é')\n1";
    r.session_id = "s1";
    r.persistent = true;
    r.run_on_main_thread = true;
    r.timeout = std::chrono::milliseconds(1234);
    r.max_output = 99;
    r.filename = "/x/y.py";
    r.argv = {"/x/y.py", "a b"};
    r.max_images = 3;
    r.max_image_bytes = 77;
    ExecRequest back = worker::request_from_json(parse_json_for_test(worker::to_json(r)));
    EXPECT_EQ(back.code, r.code);
    EXPECT_EQ(back.session_id, "s1");
    EXPECT_TRUE(back.persistent);
    EXPECT_TRUE(back.run_on_main_thread);
    EXPECT_EQ(back.timeout.count(), 1234);
    EXPECT_EQ(back.max_output, 99u);
    EXPECT_EQ(back.filename, "/x/y.py");
    EXPECT_EQ(back.argv, r.argv);
    EXPECT_EQ(back.max_images, 3u);
    EXPECT_EQ(back.max_image_bytes, 77u);
}

TEST(IsolationWire, OutcomeRoundTripKeepsImageBytes) {
    ExecOutcome o;
    o.status = ExecOutcome::Status::TimedOut;
    o.out = {"out", 10, 7};
    o.err = {"err", 3, 0};
    o.result = "42";
    o.result_cut_bytes = 5;
    o.error = ExecError{"TimeoutError", "ran past", "tb"};
    o.duration_ms = 12.5;
    o.still_running = true;
    o.mcp_calls = {{"sqlite", 1.5, true}};
    o.mcp_calls_omitted = {{"python", 30, 2, 99.0}};
    o.background_output_bytes = 11;
    std::string png("\x89PNG\r\n\x1a\n\x00\xff\xfe", 11);
    o.display = {{ContentItem::Kind::Image, "image/png", png}, {ContentItem::Kind::Text, "text/markdown", "# hi"}};
    o.images_dropped = 1;
    o.image_bytes_dropped = 2;
    o.texts_dropped = 3;
    ExecOutcome b = worker::outcome_from_json(parse_json_for_test(worker::to_json(o)));
    EXPECT_EQ(b.status, ExecOutcome::Status::TimedOut);
    EXPECT_EQ(b.out.text, "out");
    EXPECT_EQ(b.out.total_bytes, 10u);
    EXPECT_EQ(b.out.cut_bytes, 7u);
    EXPECT_EQ(b.err.text, "err");
    EXPECT_EQ(b.result, std::optional<std::string>("42"));
    EXPECT_EQ(b.result_cut_bytes, 5u);
    ASSERT_TRUE(b.error);
    EXPECT_EQ(b.error->message, "ran past");
    EXPECT_EQ(b.error->traceback, "tb");
    EXPECT_TRUE(b.still_running);
    ASSERT_EQ(b.mcp_calls.size(), 1u);
    EXPECT_TRUE(b.mcp_calls[0].is_error);
    ASSERT_EQ(b.mcp_calls_omitted.size(), 1u);
    EXPECT_EQ(b.mcp_calls_omitted[0].calls, 30u);
    EXPECT_EQ(b.background_output_bytes, 11u);
    ASSERT_EQ(b.display.size(), 2u);
    EXPECT_EQ(b.display[0].data, png);
    EXPECT_EQ(b.display[1].data, "# hi");
    EXPECT_EQ(b.display[1].kind, ContentItem::Kind::Text);
    EXPECT_EQ(b.images_dropped + b.image_bytes_dropped + b.texts_dropped, 6u);
}

TEST(IsolationWire, Base64AllLengths) {
    std::string bytes;
    for (int i = 0; i < 300; ++i) {
        EXPECT_EQ(worker::base64_decode(worker::base64_encode(bytes)), bytes) << i;
        bytes += static_cast<char>(i * 37);
    }
    EXPECT_EQ(worker::base64_encode("Man"), "TWFu");
    EXPECT_EQ(worker::base64_encode("Ma"), "TWE=");
}

TEST(IsolationWire, SignalsAreNamed) {
    EXPECT_EQ(worker::describe_worker_status(11), "signal 11 (SIGSEGV: Segmentation fault)");
    EXPECT_EQ(worker::describe_worker_status(6), "signal 6 (SIGABRT: Aborted)");
    EXPECT_EQ(worker::describe_worker_status(3 << 8), "exit status 3");
}

// Records which engine got what; sessions exist once submitted, until cleared.
class FakeEngine final : public Engine {
public:
    void submit(const ExecRequest& request, std::shared_ptr<ExecutionHost>, Completion done) override {
        {
            std::lock_guard lock(mutex_);
            sessions_[request.session_id]++;
        }
        ExecOutcome o;
        o.result = request.code;
        done(std::move(o));
    }
    std::optional<size_t> clear_session(const std::string& id) override {
        std::lock_guard lock(mutex_);
        return sessions_.erase(id) ? std::optional<size_t>(1) : std::nullopt;
    }
    std::vector<SessionInfo> list_sessions() override {
        std::lock_guard lock(mutex_);
        std::vector<SessionInfo> out;
        for (auto& [id, n] : sessions_) out.push_back(SessionInfo{id, n, {}, {}, false, n});
        return out;
    }
    size_t runs(const std::string& id) {
        std::lock_guard lock(mutex_);
        return sessions_.count(id) ? sessions_[id] : 0;
    }
    void forget(const std::string& id) {  // as when a session expires
        std::lock_guard lock(mutex_);
        sessions_.erase(id);
    }

private:
    std::mutex mutex_;
    std::map<std::string, size_t> sessions_;
};

ExecRequest req(const std::string& session, const std::string& isolation = "") {
    ExecRequest r;
    r.session_id = session;
    r.persistent = true;
    r.isolation = isolation;
    return r;
}

TEST(IsolationRouter, DefaultModeAndPerCallField) {
    FakeEngine threads, processes;
    IsolationRouter router(threads, processes, Isolation::Thread);
    router.execute(req("a"), nullptr);
    router.execute(req("b", "process"), nullptr);
    router.execute(req("b"), nullptr);  // no field: the session's own mode
    EXPECT_EQ(threads.runs("a"), 1u);
    EXPECT_EQ(processes.runs("b"), 2u);
    auto listed = router.list_sessions();
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0].isolation, "thread");
    EXPECT_EQ(listed[1].isolation, "process");
}

TEST(IsolationRouter, ExistingSessionKeepsItsModeUntilCleared) {
    FakeEngine threads, processes;
    IsolationRouter router(threads, processes, Isolation::Process);
    router.execute(req("a"), nullptr);
    EXPECT_EQ(processes.runs("a"), 1u);
    try {
        router.execute(req("a", "thread"), nullptr);
        FAIL() << "a mode switch of a live session was accepted";
    } catch (const EngineError& e) {
        EXPECT_NE(std::string(e.what()).find("keeps the mode"), std::string::npos) << e.what();
    }
    EXPECT_EQ(threads.runs("a"), 0u);
    EXPECT_THROW(router.execute(req("z", "fork"), nullptr), EngineError);
    router.clear_session("a");
    router.execute(req("a", "thread"), nullptr);
    EXPECT_EQ(threads.runs("a"), 1u);
    // A session that expired in its engine may come back in the other mode.
    processes.forget("a");
    threads.forget("a");
    router.execute(req("a", "process"), nullptr);
    EXPECT_EQ(processes.runs("a"), 1u);
}

TEST(IsolationRouter, RestartInThreadModeSaysWhy) {
    FakeEngine threads, processes;
    IsolationRouter router(threads, processes, Isolation::Thread);
    router.execute(req("a"), nullptr);
    try {
        router.restart_session("a");
        FAIL();
    } catch (const EngineError& e) {
        EXPECT_NE(std::string(e.what()).find("needs process isolation"), std::string::npos) << e.what();
    }
}

}  // namespace
