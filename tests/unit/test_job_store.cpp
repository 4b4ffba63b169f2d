// JobStore and Job (issue 13): bounded output with byte offsets, finishing once, waiting,
// cancellation, bounded history, per-session lookups. Python-free.

#include "python_mcp/tools/job_store.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace pymcp::tools {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<Job> make_job(JobStore& store, const std::string& session = "s", size_t limit = 64,
                              CancellationSource cancel = {}) {
    return std::make_shared<Job>(store.next_id(), session, true, limit, cancel);
}

TEST(JobStore, IdsAreDistinct) {
    JobStore store;
    EXPECT_EQ(store.next_id(), "job-1");
    EXPECT_EQ(store.next_id(), "job-2");
}

TEST(Job, OutputSinceAnOffset) {
    JobStore store;
    auto job = make_job(store);
    job->append("hello ");
    job->append("world");
    auto all = job->output_since(0);
    EXPECT_EQ(all.text, "hello world");
    EXPECT_EQ(all.next_offset, 11u);
    EXPECT_EQ(all.skipped_bytes, 0u);
    EXPECT_EQ(job->output_since(6).text, "world");
    EXPECT_EQ(job->output_since(11).text, "");
    EXPECT_EQ(job->output_since(99).next_offset, 11u);
}

TEST(Job, OutputIsBoundedAndSaysWhatFellOut) {
    JobStore store;
    auto job = make_job(store, "s", 64);
    for (int i = 0; i < 1000; ++i) job->append("0123456789");
    EXPECT_EQ(job->output_bytes(), 10000u);
    auto out = job->output_since(0);
    EXPECT_LE(out.text.size(), 128u);
    EXPECT_GE(out.text.size(), 64u);
    EXPECT_EQ(out.skipped_bytes + out.text.size(), 10000u);
    std::string whole = job->output_head_tail();
    EXPECT_EQ(whole.substr(0, 32), std::string("01234567890123456789012345678901"));
    EXPECT_NE(whole.find("bytes cut"), std::string::npos);
    EXPECT_LT(whole.size(), 200u);
}

TEST(Job, WindowCutStartsOnACharacter) {
    JobStore store;
    auto job = make_job(store, "s", 64);
    for (int i = 0; i < 200; ++i) job->append("\xC3\xA9");  // é, two bytes
    auto out = job->output_since(1);
    ASSERT_FALSE(out.text.empty());
    EXPECT_NE(static_cast<unsigned char>(out.text[0]) & 0xC0, 0x80);
}

TEST(Job, FinishesOnceAndWakesWaiters) {
    JobStore store;
    auto job = make_job(store);
    EXPECT_FALSE(job->wait_until(Job::Clock::now() + 10ms));
    std::thread finisher([&] { job->finish(JobState::Succeeded, pymcp::json{{"x", 1}}); });
    EXPECT_TRUE(job->wait_until(Job::Clock::now() + 30s));
    finisher.join();
    job->finish(JobState::Failed, pymcp::json{{"x", 2}});  // ignored
    EXPECT_EQ(job->state(), JobState::Succeeded);
    EXPECT_EQ((*job->result())["x"], 1);
    double e = job->elapsed_seconds();
    std::this_thread::sleep_for(5ms);  // elapsed stops at the end (not synchronisation)
    EXPECT_EQ(job->elapsed_seconds(), e);
}

TEST(Job, CancelFiresTheExecutionsSourceOnlyWhileRunning) {
    JobStore store;
    CancellationSource source;
    auto job = make_job(store, "s", 64, source);
    EXPECT_TRUE(job->cancel());
    EXPECT_TRUE(source.cancelled());
    job->finish(JobState::Cancelled, pymcp::json::object());
    EXPECT_FALSE(job->cancel());
    EXPECT_STREQ(job_state_name(job->state()), "cancelled");
}

TEST(JobStore, HistoryDropsTheOldestFinishedNeverRunning) {
    JobStore store(2);
    auto running = make_job(store);
    store.add(running);
    std::vector<std::shared_ptr<Job>> done;
    for (int i = 0; i < 4; ++i) {
        auto j = make_job(store);
        store.add(j);
        j->finish(JobState::Succeeded, pymcp::json::object());
        store.prune();
        done.push_back(j);
    }
    auto all = store.list();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0], running);
    EXPECT_EQ(all[1], done[2]);
    EXPECT_EQ(all[2], done[3]);
    EXPECT_EQ(store.find(done[0]->id()), nullptr);
    EXPECT_EQ(store.find(running->id()), running);
    store.remove(running->id());
    EXPECT_EQ(store.find(running->id()), nullptr);
}

TEST(JobStore, CancelSessionCancelsOnlyItsRunningJobs) {
    JobStore store;
    CancellationSource a_source, b_source, c_source;
    auto a = make_job(store, "work", 64, a_source);
    auto b = make_job(store, "other", 64, b_source);
    auto c = make_job(store, "work", 64, c_source);
    for (auto& j : {a, b, c}) store.add(j);
    c->finish(JobState::Succeeded, pymcp::json::object());
    EXPECT_EQ(store.running_in("work").size(), 1u);
    auto ids = store.cancel_session("work");
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0], a->id());
    EXPECT_TRUE(a_source.cancelled());
    EXPECT_FALSE(b_source.cancelled());
    EXPECT_FALSE(c_source.cancelled());
}

TEST(Job, ConcurrentAppendsAndReadsKeepTheCount) {
    JobStore store;
    auto job = make_job(store, "s", 256);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t)
        writers.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) job->append("abc");
        });
    for (int i = 0; i < 100; ++i) (void)job->output_since(static_cast<size_t>(i));
    for (auto& w : writers) w.join();
    EXPECT_EQ(job->output_bytes(), 12000u);
    auto out = job->output_since(0);
    EXPECT_EQ(out.skipped_bytes + out.text.size(), 12000u);
}

}  // namespace
}  // namespace pymcp::tools
