#pragma once
// Jobs: executions that outlived their call's wait budget and keep running in their session
// while the client polls them (job_status, wait_job) or stops them (cancel_job). Python-free.
//
// Job: one execution's record. Its output buffer is bounded: the first `limit / 2` bytes (the
// head) and a window of the last `limit` bytes; byte offsets count everything ever written, so a
// poller asks for "output since offset N" and learns how much fell out of the window.
// JobStore: the jobs by id, with a bounded history: past `history` jobs, the oldest finished
// ones are dropped (running jobs never are).
//
// Threads: Job::append from the code's threads (cheap, never blocks on anything but the job's
// own mutex); finish() once from the engine's completion; readers from request threads. The
// store's mutex and a job's mutex are never held together except store -> job (list, prune,
// session lookups read a job's state under the store's lock); a job never calls into the store.
// Nothing throws except std::bad_alloc (JobTasks: mcp::TaskError for unknown ids and cursors).
//
// Tasks (2025-11-25 tasks utility): a job made for a task-augmented tools/call is marked a task
// (set_task, before it is added) and is then both: list_jobs/job_status/cancel_job see it under
// the same id, and JobTasks (the MCP layer's TaskBackend) serves tasks/get, tasks/result,
// tasks/list and tasks/cancel from it. Jobs started with start_job or by the wait budget are not
// tasks. A finished task is kept until its ttl (from creation) has passed, not counted in the
// job history; at most kMaxFinishedTasks finished tasks are kept (oldest dropped first).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "python_mcp/mcp/task.hpp"
#include "python_mcp/support/cancellation.hpp"
#include "python_mcp/support/json.hpp"

namespace pymcp::tools {

enum class JobState { Running, Succeeded, Failed, TimedOut, Cancelled };
const char* job_state_name(JobState state);

struct JobOutput {
    std::string text;         // from the asked offset (or the window's start), to next_offset
    size_t next_offset = 0;   // everything written so far: ask from here next time
    size_t skipped_bytes = 0; // between the asked offset and `text`: fell out of the window
};

class Job {
public:
    using Clock = std::chrono::steady_clock;

    // `cancel` is what cancel() fires: the execution's own cancellation source.
    // `persistent`: the job runs in the named session (so later calls to it queue behind it).
    Job(std::string id, std::string session_id, bool persistent, size_t limit, CancellationSource cancel);
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    const std::string& id() const { return id_; }
    const std::string& session_id() const { return session_id_; }
    bool persistent() const { return persistent_; }

    void append(std::string_view text);
    JobOutput output_since(size_t offset) const;
    // All output so far, bounded: head, a "bytes cut" marker, the window's last limit/2 bytes.
    std::string output_head_tail() const;
    size_t output_bytes() const;

    // The execution ended: its state and its formatted result. Later calls are ignored.
    void finish(JobState state, pymcp::json result);
    JobState state() const;
    bool done() const;
    std::optional<pymcp::json> result() const;  // set once done
    double elapsed_seconds() const;             // until now, or until it finished
    // Blocks until done or `deadline`; true when done.
    bool wait_until(Clock::time_point deadline) const;
    // Interrupts the execution (as notifications/cancelled would). True when it was running.
    bool cancel() const;

    // Marks the job a task kept `ttl` from its creation. Only before the job is shared (added).
    void set_task(std::chrono::milliseconds ttl) { task_ttl_ = ttl; }
    bool is_task() const { return task_ttl_.has_value(); }
    std::chrono::milliseconds task_ttl() const { return task_ttl_.value_or(std::chrono::milliseconds(0)); }
    std::chrono::system_clock::time_point created_wall() const { return created_wall_; }
    std::chrono::system_clock::time_point updated_wall() const;  // creation, or when it ended
    // A finished task whose ttl has passed since its creation.
    bool expired(std::chrono::system_clock::time_point now) const;

private:
    const std::string id_;
    const std::string session_id_;
    const bool persistent_;
    const size_t limit_;
    const CancellationSource cancel_;
    const Clock::time_point started_ = Clock::now();
    const std::chrono::system_clock::time_point created_wall_ = std::chrono::system_clock::now();
    std::optional<std::chrono::milliseconds> task_ttl_;  // set before sharing, then read-only
    mutable std::mutex mutex_;
    mutable std::condition_variable finished_cv_;
    std::string head_;          // GUARDED_BY(mutex_): the first limit_/2 bytes
    std::string window_;        // GUARDED_BY(mutex_): the last bytes, at most 2 * limit_ (trimmed to limit_)
    size_t total_ = 0;          // GUARDED_BY(mutex_): bytes ever appended
    JobState state_ = JobState::Running;   // GUARDED_BY(mutex_)
    std::optional<pymcp::json> result_;    // GUARDED_BY(mutex_)
    Clock::time_point ended_{};            // GUARDED_BY(mutex_)
    std::chrono::system_clock::time_point ended_wall_{};  // GUARDED_BY(mutex_)
};

class JobStore {
public:
    static constexpr size_t kMaxFinishedTasks = 1000;

    explicit JobStore(size_t history = 100) : history_(history) {}

    // A fresh id ("job-1", "job-2", ...) for a job not yet added.
    std::string next_id();
    // Makes the job findable, then drops the oldest finished jobs past the history.
    void add(std::shared_ptr<Job> job);
    void remove(const std::string& id);
    // Call after a job finished: drops the oldest finished jobs past the history.
    void prune();
    std::shared_ptr<Job> find(const std::string& id) const;
    std::vector<std::shared_ptr<Job>> list() const;  // oldest first
    // The tasks whose id number is above `after` (0: all), oldest first, at most `limit`.
    std::vector<std::shared_ptr<Job>> tasks_after(uint64_t after, size_t limit) const;
    // The running jobs of a session (oldest first).
    std::vector<std::shared_ptr<Job>> running_in(const std::string& session_id) const;
    // Cancels the running jobs of a session; returns their ids.
    std::vector<std::string> cancel_session(const std::string& session_id);

private:
    void prune_locked();

    const size_t history_;
    mutable std::mutex mutex_;
    uint64_t next_ = 1;                              // GUARDED_BY(mutex_): for ids
    uint64_t added_ = 0;                             // GUARDED_BY(mutex_): insertion order
    std::map<uint64_t, std::shared_ptr<Job>> jobs_;  // GUARDED_BY(mutex_): oldest added first
};

// A job's task as tasks/get shows it: working / completed / failed (an error result, a time-out)
// / cancelled, with a status message and the suggested poll interval.
mcp::TaskInfo task_info(const Job& job, std::chrono::milliseconds poll_interval);
// The number in a job id ("job-12" -> 12); 0 for anything else.
uint64_t job_number(const std::string& id);

// The MCP layer's TaskBackend over a JobStore: tasks are the store's task jobs.
// Thread-safe (the store is); cancel() and result() block (bounded / until the task ends).
class JobTasks final : public mcp::TaskBackend {
public:
    JobTasks(std::shared_ptr<JobStore> jobs, std::chrono::milliseconds poll_interval, size_t page_size = 50)
        : jobs_(std::move(jobs)), poll_interval_(poll_interval), page_size_(page_size) {}

    mcp::TaskInfo get(const std::string& id) override;
    mcp::TaskPage list(const std::string& cursor) override;
    mcp::TaskInfo cancel(const std::string& id) override;
    pymcp::json result(const std::string& id, const CancellationToken& cancel) override;

private:
    std::shared_ptr<Job> find_task(const std::string& id) const;

    const std::shared_ptr<JobStore> jobs_;
    const std::chrono::milliseconds poll_interval_;
    const size_t page_size_;
};

}  // namespace pymcp::tools
