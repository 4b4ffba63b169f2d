// DeferredEngine: calls that arrive while Python starts are held, in order, and handed on.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "python_mcp/engine/deferred_engine.hpp"

using namespace pymcp;
using namespace pymcp::engine;
using namespace std::chrono_literals;

namespace {

// Records what reaches it; answers every request at once with its code as the result.
class RecordingEngine final : public Engine {
public:
    void submit(const ExecRequest& request, std::shared_ptr<ExecutionHost>, Completion done) override {
        if (request.code == "refuse") throw EngineError("too many sessions");
        record(request.code);
        ExecOutcome o;
        o.result = request.code;
        done(std::move(o));
    }
    std::optional<size_t> clear_session(const std::string& id) override {
        record("clear " + id);
        return 3;
    }
    std::vector<SessionInfo> list_sessions() override {
        SessionInfo one;
        one.id = "s1";
        return {one};
    }
    void interrupt_all() override { interrupted = true; }

    std::vector<std::string> seen() {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    std::atomic<bool> interrupted{false};

private:
    void record(const std::string& what) {
        std::lock_guard lock(mutex_);
        seen_.push_back(what);
    }
    std::mutex mutex_;
    std::vector<std::string> seen_;
};

ExecRequest req(std::string code) {
    ExecRequest r;
    r.code = std::move(code);
    return r;
}

}  // namespace

TEST(DeferredEngine, SubmissionsWaitInOrderAndGoOnWhenReady) {
    DeferredEngine deferred;
    RecordingEngine real;
    EXPECT_TRUE(deferred.can_submit());
    EXPECT_FALSE(deferred.is_ready());
    std::vector<std::string> answers;
    std::mutex m;
    for (const char* code : {"a", "b", "c"})
        deferred.submit(req(code), nullptr, [&](ExecOutcome o) {
            std::lock_guard lock(m);
            answers.push_back(*o.result);
        });
    EXPECT_TRUE(answers.empty());  // nothing ran before the engine exists
    EXPECT_TRUE(real.seen().empty());
    deferred.ready(real);
    EXPECT_TRUE(deferred.is_ready());
    EXPECT_EQ(answers, (std::vector<std::string>{"a", "b", "c"}));
    deferred.submit(req("d"), nullptr, [&](ExecOutcome o) { answers.push_back(*o.result); });
    EXPECT_EQ(real.seen(), (std::vector<std::string>{"a", "b", "c", "d"}));
    EXPECT_EQ(answers.back(), "d");
}

TEST(DeferredEngine, BlockingCallsWaitForReadiness) {
    DeferredEngine deferred;
    RecordingEngine real;
    auto executed = std::async(std::launch::async, [&] { return deferred.execute(req("x = 1"), nullptr); });
    auto cleared = std::async(std::launch::async, [&] { return deferred.clear_session("s"); });
    auto listed = std::async(std::launch::async, [&] { return deferred.list_sessions(); });
    EXPECT_EQ(executed.wait_for(50ms), std::future_status::timeout);
    deferred.ready(real);
    EXPECT_EQ(*executed.get().result, "x = 1");
    EXPECT_EQ(cleared.get(), std::optional<size_t>(3));
    EXPECT_EQ(listed.get().at(0).id, "s1");
}

TEST(DeferredEngine, ARefusalWhileQueuedIsAnErrorOutcome) {
    DeferredEngine deferred;
    RecordingEngine real;
    std::optional<ExecOutcome> refused;
    deferred.submit(req("refuse"), nullptr, [&](ExecOutcome o) { refused = std::move(o); });
    deferred.ready(real);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->status, ExecOutcome::Status::Error);
    ASSERT_TRUE(refused->error.has_value());
    EXPECT_EQ(refused->error->message, "too many sessions");
    // After readiness the real engine's refusal is the caller's to handle, as without deferral.
    EXPECT_THROW(deferred.submit(req("refuse"), nullptr, [](ExecOutcome) {}), EngineError);
}

TEST(DeferredEngine, FailureAnswersTheWaitingAndRefusesTheRest) {
    DeferredEngine deferred;
    std::optional<ExecOutcome> queued;
    deferred.submit(req("x"), nullptr, [&](ExecOutcome o) { queued = std::move(o); });
    auto blocked = std::async(std::launch::async, [&] { return deferred.list_sessions(); });
    deferred.fail("cannot start Python: no encodings module");
    ASSERT_TRUE(queued.has_value());
    EXPECT_EQ(queued->status, ExecOutcome::Status::Error);
    EXPECT_EQ(queued->error->type, "EngineError");
    EXPECT_EQ(queued->error->message, "cannot start Python: no encodings module");
    EXPECT_THROW(blocked.get(), EngineError);
    EXPECT_THROW(deferred.execute(req("y"), nullptr), EngineError);
    EXPECT_THROW(deferred.submit(req("y"), nullptr, [](ExecOutcome) {}), EngineError);
    EXPECT_NO_THROW(deferred.interrupt_all());  // nothing to interrupt
}

TEST(DeferredEngine, InterruptAllReachesTheRealEngineOnceReady) {
    DeferredEngine deferred;
    RecordingEngine real;
    deferred.interrupt_all();  // before: nothing runs, nothing to do
    EXPECT_FALSE(real.interrupted);
    deferred.ready(real);
    deferred.interrupt_all();
    EXPECT_TRUE(real.interrupted);
}

TEST(DeferredEngine, SubmissionsRacingReadinessAreAllAnsweredOnce) {
    for (int round = 0; round < 20; ++round) {
        DeferredEngine deferred;
        RecordingEngine real;
        std::atomic<int> answered{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 50; ++i) deferred.submit(req("x"), nullptr, [&](ExecOutcome) { ++answered; });
            });
        deferred.ready(real);
        for (auto& t : threads) t.join();
        EXPECT_EQ(answered.load(), 200);
        EXPECT_EQ(real.seen().size(), 200u);
    }
}
