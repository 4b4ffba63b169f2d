#pragma once
// The in-process engine: runs code in the embedded interpreter, one globals dict per persistent
// session, on a growing pool of Python threads.
//
// Threads: submit() is called from any thread and returns at once; its completion runs on the
// thread that finished the job, the timer thread (time-out answered before the code stopped) or
// the cancelling thread. execute() is submit() plus a wait (without the GIL).
// Jobs of one session run one at a time in arrival order (a per-session queue); sessions run
// concurrently on pool threads, or on the main thread when run_on_main_thread is set. A separate
// interrupter thread posts ExecutionInterrupted into running code, so nothing on the protocol side
// ever waits for the GIL.
// Lock order: sessions_mutex_ -> (pool mutex) -> Job::mutex -> the GIL. The GIL is never held
// while taking sessions_mutex_ (so a CPU-bound session cannot stall bookkeeping); py::objects
// are only touched and destroyed with the GIL held, on a Python pool thread (never on the
// protocol reader or the timer thread: user finalizers run there and may take seconds).
// Memory: a session's globals are usually in a reference cycle (every function's __globals__),
// so a dropped session is cleared and collected explicitly (release_sessions), and freed heap is
// given back to the OS (malloc_trim) after that and after a burst of queued jobs has drained.
// Code reaches the outside only through the ExecutionHost given with each request (held by its
// Execution); the engine itself knows no registry and no protocol. Output that threads of a run
// write after it ended is kept per session name (BackgroundOutputStore) for read_output.
// submit() throws EngineError for requests it refuses (too many sessions, no thread can be
// started, a main-thread execution nested in one); user-code failures, time-outs and
// cancellations are in the ExecOutcome. A refused request never runs.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/python/background_output.hpp"
#include "python_mcp/support/deadline_timer.hpp"
#include "python_mcp/support/elastic_pool.hpp"

namespace pybind11 {
class object;  // only by reference here: the header stays free of pybind11
}

namespace pymcp::python {

struct EngineOptions {
    size_t max_sessions = 64;
    std::chrono::milliseconds session_ttl{0};  // 0: sessions live until cleared
    size_t max_threads = 256;
    // How long an interrupted execution gets to stop before its time-out is answered anyway.
    std::chrono::milliseconds interrupt_grace{300};
};

class SessionEngine final : public engine::Engine {
public:
    using ExecRequest = engine::ExecRequest;
    using ExecOutcome = engine::ExecOutcome;

    // Needs start_interpreter() to have run.
    explicit SessionEngine(EngineOptions options);
    ~SessionEngine() override;

    // A null `host` gets one that refuses tool calls and drops output and progress.
    void submit(const ExecRequest& request, std::shared_ptr<engine::ExecutionHost> host, Completion done) override;
    std::optional<size_t> clear_session(const std::string& session_id) override;
    std::vector<engine::SessionInfo> list_sessions() override;
    std::optional<engine::BackgroundOutput> read_output(const std::string& session_id) override;

    // Interrupts everything running (server shutdown).
    void interrupt_all() override;
    // Jobs submitted and not finished yet, counting code still running after its call was
    // answered (a time-out or a cancel it ignored): a worker process asks, to know whether its
    // code stopped.
    size_t unfinished_jobs();

private:
    struct Session;
    struct Job;
    struct RunFailure;
    class Interrupter;
    using Clock = std::chrono::steady_clock;

    std::shared_ptr<Session> session_for_locked(const ExecRequest& request);  // sessions_mutex_ held
    // Throws EngineError, with nothing queued, when the session or a thread cannot be had.
    void enqueue(const std::shared_ptr<Job>& job);
    void drain(std::shared_ptr<Session> session);
    void run_queued(Session& session, Job& job);  // on this thread, or the main one
    // run_job's steps, in order, on the running thread with the GIL held (the last three
    // only when claim_start() said it may run).
    void run_job(Session& session, Job& job);
    bool claim_start(Session& session, Job& job, Clock::time_point started);
    pybind11::object session_namespace(Session& session);
    void run_cell(Job& job, pybind11::object& ns);
    static void read_cell_result(Job& job, const RunFailure& failure);
    void finish_outcome(Session& session, Job& job, pybind11::object& ns);
    // Timer thread: takes idle sessions past the TTL out of the table, hands them to a pool
    // thread to be freed, and schedules itself again.
    void expiry_tick();
    // Python thread, without the GIL: clears the sessions' globals, collects cycles, trims the heap.
    static void release_sessions(std::vector<std::shared_ptr<Session>> sessions);
    void arm_deadline(const std::shared_ptr<Job>& job, Clock::time_point when);
    void on_deadline(const std::shared_ptr<Job>& job);
    // A job timed out before it started: says what it waited behind. Job::mutex not held.
    ExecOutcome not_started_outcome(const Job& job);
    // Pool thread, after a job: once the engine has been idle a moment after many jobs, a pool
    // thread gives the freed heap back to the OS (trim_if_idle runs on the timer thread).
    void trim_after_burst();
    void trim_if_idle();
    static void answer(Job& job, ExecOutcome outcome);

    const EngineOptions options_;
    std::unique_ptr<Interrupter> interrupter_;
    std::unique_ptr<DeadlineTimer> timer_;
    std::mutex sessions_mutex_;
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // GUARDED_BY(sessions_mutex_)
    // Jobs submitted and not yet finished, for interrupt_all(). Erased when a job finishes: a
    // weak_ptr left behind would pin a whole make_shared Job (a flood of 50k queued jobs kept
    // 20 MB that way).
    std::unordered_map<const Job*, std::weak_ptr<Job>> running_;          // GUARDED_BY(sessions_mutex_)
    size_t done_since_trim_ = 0;  // GUARDED_BY(sessions_mutex_)
    bool trim_scheduled_ = false;  // GUARDED_BY(sessions_mutex_)
    std::vector<std::shared_ptr<Session>> expired_;  // GUARDED_BY(sessions_mutex_): to be freed
    bool stopping_ = false;                          // GUARDED_BY(sessions_mutex_)
    std::unique_ptr<ElasticPool> pool_;
    const std::shared_ptr<BackgroundOutputStore> background_ = std::make_shared<BackgroundOutputStore>();
    std::atomic<int> executing_{0};  // jobs in run_job: the ones a starting job shares the GIL with
};

}  // namespace pymcp::python
