#pragma once
// Process isolation: an Engine that runs each session in a worker process of its own
// (`python-mcp --worker`, see worker_main.hpp), so that code stuck in a C call can be killed and
// a crash (SIGSEGV, abort, the OOM killer) costs that session only.
//
// A session's jobs run one at a time in arrival order: a drain task on the engine's pool sends
// each to the worker and waits for its answer (the worker runs the in-process engine, so
// time-outs, interrupts, output, images and mcp.call behave as in-process). When the code does
// not stop within kill_grace of its interrupt (time-out or cancel), or the worker dies, the
// worker is killed and reaped, the call is answered with an error saying why, and the session is
// reported lost (list_sessions: `lost`, `losses`); its next call starts a fresh worker. One warm
// spare worker (Python already up) is kept once process isolation is in use, so a new session
// starts without waiting for an interpreter; workers of sessions idle past the session TTL end.
//
// Threads: submit() returns at once (a job waits in its session's queue, holding no thread). A
// pool thread per busy session waits for its worker; one spawner thread starts every worker (a
// worker's death signal is tied to the thread that forked it, so that thread lives as long as
// the engine); the timer thread answers jobs whose time-out passed while queued and expires
// idle sessions; each worker has two threads of its own (WorkerProcess) while it lives.
// Lock order: mutex_ -> Job::mutex -> (WorkerProcess's mutex). Nothing is sent to a worker,
// no completion runs and no worker is spawned with mutex_ held (kill() is only a signal).
// Throws EngineError from submit() for requests it refuses (too many sessions, no thread).

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "python_mcp/engine/engine.hpp"
#include "python_mcp/support/deadline_timer.hpp"
#include "python_mcp/support/elastic_pool.hpp"
#include "python_mcp/worker/worker_process.hpp"

namespace pymcp::worker {

struct ProcessEngineOptions {
    WorkerLaunch launch;
    std::chrono::milliseconds kill_grace{2000};
    size_t max_sessions = 64;
    std::chrono::milliseconds session_ttl{0};  // 0: workers live until their session is cleared
    bool keep_spare = false;                   // from the start (else once a session used a worker)
    std::chrono::milliseconds start_timeout{60000};  // a worker's Python must be up within this
};

class ProcessEngine final : public engine::Engine {
public:
    explicit ProcessEngine(ProcessEngineOptions options);
    ~ProcessEngine() override;

    void submit(const engine::ExecRequest& request, std::shared_ptr<engine::ExecutionHost> host,
                Completion done) override;
    std::optional<size_t> clear_session(const std::string& session_id) override;
    std::optional<size_t> restart_session(const std::string& session_id) override;
    std::vector<engine::SessionInfo> list_sessions() override;
    std::optional<engine::BackgroundOutput> read_output(const std::string& session_id) override;
    void interrupt_all() override;

    // Tests and measurements: workers alive (sessions' and the spare).
    size_t worker_count();

private:
    struct Session;
    struct Job;
    using Clock = std::chrono::steady_clock;

    std::shared_ptr<Session> session_for_locked(const engine::ExecRequest& request);
    void drain(std::shared_ptr<Session> session);
    void run(Session& session, const std::shared_ptr<Job>& job);
    engine::ExecOutcome wait_for_answer(Session& session, Job& job, const std::shared_ptr<WorkerProcess>& worker);
    engine::ExecOutcome read_answer(Session& session, Job& job, const std::shared_ptr<WorkerProcess>& worker);
    engine::ExecOutcome lost_outcome(Job& job, const std::string& why);
    std::shared_ptr<WorkerProcess> worker_for(Session& session);
    std::shared_ptr<WorkerProcess> start_worker();  // on the spawner thread; waits until it is ready
    std::shared_ptr<WorkerProcess> spawn_on_spawner();
    void want_spare();
    void on_worker_exit(WorkerProcess& worker, const std::string& why);
    void on_done(long long x, const pymcp::json& params);
    // mutex_ held: kills the session's worker and records the loss.
    void lose_locked(Session& session, const std::string& why);
    void on_deadline(const std::shared_ptr<Job>& job);
    static void on_cancelled(const std::weak_ptr<Job>& job);
    void expiry_tick();
    static void answer(Job& job, engine::ExecOutcome outcome);
    void spawner_loop();

    const ProcessEngineOptions options_;
    std::unique_ptr<ElasticPool> host_pool_;  // host calls of running code (mcp.call) and drains
    std::unique_ptr<DeadlineTimer> timer_;

    std::mutex mutex_;
    std::condition_variable changed_;  // workers_ shrank, spare_ready_ changed, spawner work
    std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;  // GUARDED_BY(mutex_)
    std::unordered_map<long long, std::weak_ptr<Job>> jobs_;              // GUARDED_BY(mutex_), by x
    long long next_x_ = 1;                                                 // GUARDED_BY(mutex_)
    std::shared_ptr<WorkerProcess> spare_;                                 // GUARDED_BY(mutex_)
    bool spare_wanted_ = false;                                            // GUARDED_BY(mutex_)
    bool spare_starting_ = false;                                          // GUARDED_BY(mutex_)
    size_t workers_ = 0;     // GUARDED_BY(mutex_): started and not yet reaped
    size_t spawn_requests_ = 0;  // GUARDED_BY(mutex_): session workers the spawner owes
    std::deque<std::function<void()>> spawner_tasks_;  // GUARDED_BY(mutex_)
    bool stopping_ = false;  // GUARDED_BY(mutex_)
    std::unique_ptr<ElasticPool> drain_pool_;
    std::thread spawner_;
};

}  // namespace pymcp::worker
