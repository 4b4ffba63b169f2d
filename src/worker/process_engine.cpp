#include "python_mcp/worker/process_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "python_mcp/support/time_format.hpp"
#include "python_mcp/worker/wire.hpp"

namespace pymcp::worker {

using engine::EngineError;
using engine::ExecError;
using engine::ExecOutcome;
using engine::ExecRequest;
using pymcp::json;

namespace {

// How long past its own time-out (plus the grace) a worker may take to answer before the server
// stops waiting for it and kills it: the worker answers without needing the GIL, so this is
// only reached when it is wedged.
constexpr std::chrono::seconds kAnswerMargin{5};
constexpr std::chrono::seconds kWorkerCallTimeout{10};

class NoHost final : public engine::ExecutionHost {
public:
    json call_tool(const std::string& name, json, const std::string&, const CancellationToken&) override {
        throw engine::HostError("cannot call tool '" + name + "': this execution was started without a host");
    }
    json list_tools() override { return json::array(); }
    std::string wait_for_server(const std::string&, const CancellationToken&) override { return {}; }
};

std::chrono::milliseconds expiry_period(std::chrono::milliseconds ttl) {
    return std::clamp(ttl / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

ExecOutcome error_outcome(ExecOutcome::Status status, const std::string& type, const std::string& message) {
    ExecOutcome out;
    out.status = status;
    out.error = ExecError{type, message, ""};
    return out;
}

}  // namespace

struct ProcessEngine::Session {
    std::string id;
    bool persistent = false;
    std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
    std::chrono::system_clock::time_point last_used = created;
    Clock::time_point last_used_steady = Clock::now();
    // GUARDED_BY(engine mutex_):
    std::shared_ptr<WorkerProcess> worker;
    std::deque<std::shared_ptr<Job>> queue;
    bool draining = false;
    std::shared_ptr<Job> current;
    bool cleared = false;
    size_t executions = 0;
    size_t variables = 0;
    size_t pending_output = 0;
    std::string lost;
    size_t losses = 0;
};

struct ProcessEngine::Job {
    ExecRequest request;
    std::shared_ptr<engine::ExecutionHost> host;
    long long x = 0;
    Clock::time_point submitted = Clock::now();
    std::atomic<bool> answered{false};
    Completion completion;  // taken by whoever flips `answered`
    CancelRegistration on_cancel;
    uint64_t deadline_id = 0;
    std::mutex mutex;
    std::condition_variable cv;
    // GUARDED_BY(mutex):
    bool started = false;    // sent to a worker (decided with `abandoned`, so "did not run" is true)
    bool abandoned = false;  // answered before it started: it never will
    bool cancelled = false;
    Clock::time_point cancelled_at;
    std::weak_ptr<WorkerProcess> worker;
    std::optional<json> done;  // the worker's answer
    std::string gone;          // the worker ended before answering: why
    std::shared_ptr<BoundExecution> bound;  // the drain thread's, once sent
};

ProcessEngine::ProcessEngine(ProcessEngineOptions options)
    : options_(std::move(options)),
      host_pool_(std::make_unique<ElasticPool>("worker-host", 256)),
      timer_(std::make_unique<DeadlineTimer>()),
      drain_pool_(std::make_unique<ElasticPool>("worker-drain", options_.max_sessions + 8)) {
    spawner_ = std::thread([this] { spawner_loop(); });
    if (options_.session_ttl.count() > 0)
        timer_->schedule(Clock::now() + expiry_period(options_.session_ttl), [this] { expiry_tick(); });
    if (options_.keep_spare) {
        {
            std::lock_guard lock(mutex_);
            spare_wanted_ = true;
        }
        want_spare();
    }
}

ProcessEngine::~ProcessEngine() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        for (auto& [_, s] : sessions_)
            if (auto worker = std::move(s->worker)) worker->kill("the server is shutting down");
        if (spare_) spare_->kill("the server is shutting down");
    }
    changed_.notify_all();
    spawner_.join();
    drain_pool_.reset();
    {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, std::chrono::seconds(10), [&] { return workers_ == 0; });
    }
    host_pool_.reset();
    timer_.reset();
}

void ProcessEngine::spawner_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || !spawner_tasks_.empty(); });
        if (stopping_) break;
        auto task = std::move(spawner_tasks_.front());
        spawner_tasks_.pop_front();
        lock.unlock();
        task();
        lock.lock();
    }
    spawner_tasks_.clear();  // their promises break: the waiting drains answer with an error
}

// On the spawner thread: fork + exec of `python-mcp --worker`, its threads started.
std::shared_ptr<WorkerProcess> ProcessEngine::start_worker() {
    auto worker = WorkerProcess::spawn(options_.launch, *host_pool_);
    {
        std::lock_guard lock(mutex_);
        ++workers_;
    }
    worker->start(
        worker, [this](long long x, const json& params) { on_done(x, params); },
        [this](WorkerProcess& w, const std::string& why) { on_worker_exit(w, why); });
    return worker;
}

std::shared_ptr<WorkerProcess> ProcessEngine::spawn_on_spawner() {
    auto task = std::make_shared<std::packaged_task<std::shared_ptr<WorkerProcess>()>>([this] { return start_worker(); });
    auto future = task->get_future();
    {
        std::lock_guard lock(mutex_);
        if (stopping_) throw EngineError("the server is shutting down");
        spawner_tasks_.push_back([task] { (*task)(); });
    }
    changed_.notify_all();
    return future.get();
}

void ProcessEngine::want_spare() {
    {
        std::lock_guard lock(mutex_);
        if (!spare_wanted_ || spare_ || spare_starting_ || stopping_) return;
        spare_starting_ = true;
        spawner_tasks_.push_back([this] {
            std::shared_ptr<WorkerProcess> worker;
            try {
                worker = start_worker();
            } catch (const std::exception& e) {
                spdlog::warn("cannot start a spare worker process: {}", e.what());
            }
            std::lock_guard inner(mutex_);
            spare_starting_ = false;
            spare_ = worker;
        });
    }
    changed_.notify_all();
}

std::shared_ptr<WorkerProcess> ProcessEngine::worker_for(Session& session) {
    std::shared_ptr<WorkerProcess> worker;
    {
        std::lock_guard lock(mutex_);
        if (session.worker && !session.worker->exited()) return session.worker;
        if (session.worker) lose_locked(session, "its worker process ended while the session was idle");
        spare_wanted_ = true;
        worker = std::move(spare_);
    }
    if (!worker || worker->exited()) worker = spawn_on_spawner();
    want_spare();  // the next new session finds one ready
    if (!worker->wait_ready(options_.start_timeout)) {
        worker->kill("it did not start");
        throw EngineError("the worker process for session '" + session.id + "' did not start within " +
                          seconds_text(options_.start_timeout) + " (see the server log)");
    }
    std::lock_guard lock(mutex_);
    if (session.cleared || stopping_) {
        worker->kill("its session was cleared");
        throw EngineError("session '" + session.id + "' was cleared before this code ran; it did not run");
    }
    session.worker = worker;
    return worker;
}

std::shared_ptr<ProcessEngine::Session> ProcessEngine::session_for_locked(const ExecRequest& request) {
    auto it = sessions_.find(request.session_id);
    if (it != sessions_.end()) {
        it->second->persistent = it->second->persistent || request.persistent;
        return it->second;
    }
    if (sessions_.size() >= options_.max_sessions)
        throw EngineError("too many sessions: " + std::to_string(sessions_.size()) + " exist (--max-sessions " +
                          std::to_string(options_.max_sessions) +
                          "); clear one with the clear_session operation, or raise the limit");
    auto s = std::make_shared<Session>();
    s->id = request.session_id;
    s->persistent = request.persistent;
    sessions_.emplace(s->id, s);
    return s;
}

void ProcessEngine::submit(const ExecRequest& request, std::shared_ptr<engine::ExecutionHost> host, Completion done) {
    auto job = std::make_shared<Job>();
    job->request = request;
    job->host = host ? std::move(host) : std::make_shared<NoHost>();
    job->completion = std::move(done);
    // The deadline and the cancel callback first: once queued, the drain may finish the job.
    std::weak_ptr<Job> weak = job;
    job->deadline_id = timer_->schedule(job->submitted + request.timeout, [this, weak] {
        if (auto j = weak.lock()) on_deadline(j);
    });
    job->on_cancel = request.cancel.on_cancel([weak] { on_cancelled(weak); });
    try {
        std::lock_guard lock(mutex_);
        if (stopping_) throw EngineError("the server is shutting down; the code did not run");
        auto session = session_for_locked(request);
        if (!session->draining) {
            try {
                drain_pool_->post([this, session] { drain(session); });
            } catch (const PoolError& e) {
                if (session->executions == 0 && !session->worker && session->queue.empty()) sessions_.erase(session->id);
                throw EngineError(std::string(e.what()) + "; the code did not run");
            }
            session->draining = true;
        }
        job->x = next_x_++;
        jobs_[job->x] = job;
        session->queue.push_back(job);
        spare_wanted_ = true;
    } catch (...) {
        timer_->cancel(job->deadline_id);
        job->answered = true;  // the caller answers from the exception
        throw;
    }
    want_spare();
}

// The request's cancellation: answered at once, as in-process; the drain goes on waiting to see
// whether the code stops (and kills the worker when it does not).
void ProcessEngine::on_cancelled(const std::weak_ptr<Job>& weak) {
    auto j = weak.lock();
    if (!j) return;
    std::shared_ptr<WorkerProcess> worker;
    bool started;
    {
        std::lock_guard lock(j->mutex);
        j->cancelled = true;
        j->cancelled_at = Clock::now();
        started = j->started;
        j->abandoned = !started;
        worker = j->worker.lock();
        j->cv.notify_all();
    }
    if (worker) worker->cancel(j->x);
    ExecOutcome out = error_outcome(ExecOutcome::Status::Cancelled, "Cancelled", "the execution was cancelled");
    out.still_running = started;
    answer(*j, std::move(out));
}

// A job whose time-out passed before it was sent to its worker: it never runs. (One that was
// sent is timed out by the worker's own engine.)
void ProcessEngine::on_deadline(const std::shared_ptr<Job>& job) {
    {
        std::lock_guard lock(job->mutex);
        if (job->started) return;
        job->abandoned = true;
    }
    const auto& r = job->request;
    answer(*job, error_outcome(ExecOutcome::Status::TimedOut, "TimeoutError",
                               "the code did not run: it waited its whole timeout of " + seconds_text(r.timeout) +
                                   " behind an earlier execution in session '" + r.session_id +
                                   "' (or for its worker process to start); other sessions keep working"));
}

void ProcessEngine::answer(Job& job, ExecOutcome outcome) {
    if (job.answered.exchange(true)) return;
    auto done = std::move(job.completion);
    job.completion = nullptr;
    if (done) done(std::move(outcome));
}

void ProcessEngine::drain(std::shared_ptr<Session> session) {
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::lock_guard lock(mutex_);
            if (session->queue.empty()) {
                session->draining = false;
                return;
            }
            job = session->queue.front();
            session->queue.pop_front();
            session->current = job;
        }
        run(*session, job);
        timer_->cancel(job->deadline_id);
        std::lock_guard lock(mutex_);
        session->current.reset();
        session->last_used = std::chrono::system_clock::now();
        session->last_used_steady = Clock::now();
        ++session->executions;
        jobs_.erase(job->x);
    }
}

void ProcessEngine::run(Session& session, const std::shared_ptr<Job>& job) {
    {
        std::lock_guard lock(job->mutex);
        if (job->abandoned || job->answered.load()) return;  // timed out or cancelled while queued
    }
    bool cleared;
    {
        std::lock_guard lock(mutex_);
        cleared = session.cleared;
    }
    if (cleared) {
        answer(*job, error_outcome(ExecOutcome::Status::Error, "EngineError",
                                   "session '" + session.id + "' was cleared before this code ran; it did not run"));
        return;
    }
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(job->request.timeout -
                                                                          (Clock::now() - job->submitted));
    std::shared_ptr<WorkerProcess> worker;
    try {
        worker = worker_for(session);
    } catch (const std::exception& e) {
        answer(*job, error_outcome(ExecOutcome::Status::Error, "EngineError",
                                   std::string("the code did not run: ") + e.what()));
        return;
    }
    bool cancelled;
    {
        std::lock_guard lock(job->mutex);
        remaining = std::chrono::duration_cast<std::chrono::milliseconds>(job->request.timeout -
                                                                          (Clock::now() - job->submitted));
        if (job->abandoned || job->answered.load() || remaining.count() <= 0) return;  // its deadline answers
        job->started = true;
        job->worker = worker;
        cancelled = job->cancelled;
    }
    auto bound = std::make_shared<BoundExecution>();
    bound->host = job->host;
    bound->max_output = job->request.max_output;
    job->bound = bound;
    worker->bind(job->x, bound);
    ExecRequest request = job->request;
    request.timeout = remaining;
    worker->execute(job->x, request);
    if (cancelled) worker->cancel(job->x);
    if (worker->exited()) {  // it ended before on_worker_exit could see this job bound to it
        std::lock_guard lock(job->mutex);
        if (job->gone.empty()) job->gone = "its worker process ended before the code could start";
    }
    ExecOutcome outcome = wait_for_answer(session, *job, worker);
    worker->unbind(job->x);
    answer(*job, std::move(outcome));
}

ExecOutcome ProcessEngine::wait_for_answer(Session& session, Job& job, const std::shared_ptr<WorkerProcess>& worker) {
    const auto sent = Clock::now();
    const auto budget = job.request.timeout - (sent - job.submitted) + options_.kill_grace + kAnswerMargin;
    std::unique_lock lock(job.mutex);
    for (;;) {
        if (job.done) {
            lock.unlock();
            return read_answer(session, job, worker);
        }
        if (!job.gone.empty()) {
            std::string why = job.gone;
            lock.unlock();
            return lost_outcome(job, why);
        }
        auto deadline = job.cancelled ? job.cancelled_at + options_.kill_grace + kAnswerMargin
                                      : sent + std::chrono::duration_cast<Clock::duration>(budget);
        if (Clock::now() >= deadline) break;
        job.cv.wait_until(lock, deadline);
    }
    lock.unlock();
    std::string why = "its worker process stopped answering (killed " + seconds_text(kAnswerMargin) +
                      " after the answer was due)";
    {
        std::lock_guard engine_lock(mutex_);
        if (session.worker == worker) lose_locked(session, why);
        else worker->kill(why);
    }
    return lost_outcome(job, why);
}

ExecOutcome ProcessEngine::read_answer(Session& session, Job& job, const std::shared_ptr<WorkerProcess>& worker) {
    const json& params = *job.done;
    if (params.contains("refused"))
        return error_outcome(ExecOutcome::Status::Error, "EngineError", params["refused"].get<std::string>());
    ExecOutcome outcome;
    try {
        outcome = outcome_from_json(params.at("outcome"));
    } catch (const std::exception& e) {
        return error_outcome(ExecOutcome::Status::Error, "InternalError",
                             std::string("the worker's answer could not be read: ") + e.what());
    }
    std::lock_guard lock(mutex_);
    session.variables = params.value("variables", size_t{0});
    session.pending_output = outcome.background_output_bytes;
    if (!outcome.still_running) return outcome;
    // The code ignored its interrupt for the whole grace: only killing the worker stops it.
    const bool timed_out = outcome.status == ExecOutcome::Status::TimedOut;
    std::string why = (timed_out ? "the code ran past its timeout of " + seconds_text(job.request.timeout)
                                 : std::string("the code was cancelled")) +
                      " and did not stop within " + seconds_text(options_.kill_grace) +
                      " of being interrupted (probably inside a long C call), so its worker process was killed";
    if (session.worker == worker) lose_locked(session, why);
    else worker->kill(why);
    outcome.still_running = false;
    outcome.error = ExecError{timed_out ? "TimeoutError" : "Cancelled",
                              why + ": session '" + session.id +
                                  "' is lost (its variables are gone) and the next call starts it fresh; other "
                                  "sessions were not affected",
                              ""};
    return outcome;
}

ExecOutcome ProcessEngine::lost_outcome(Job& job, const std::string& why) {
    bool cancelled;
    {
        std::lock_guard lock(job.mutex);
        cancelled = job.cancelled;
    }
    ExecOutcome out = error_outcome(cancelled ? ExecOutcome::Status::Cancelled : ExecOutcome::Status::Error,
                                    "SessionLost",
                                    "session '" + job.request.session_id + "' was lost while this code ran: " + why +
                                        ". Its variables are gone and the next call starts it fresh; other "
                                        "sessions were not affected");
    out.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - job.submitted).count();
    if (job.bound) {  // what it printed before the end, as the host saw it
        std::lock_guard lock(job.bound->mutex);
        out.out = engine::StreamText{job.bound->out, job.bound->out_total, job.bound->out_total - job.bound->out.size()};
        out.err = engine::StreamText{job.bound->err, job.bound->err_total, job.bound->err_total - job.bound->err.size()};
    }
    return out;
}

void ProcessEngine::lose_locked(Session& session, const std::string& why) {
    session.lost = why;
    ++session.losses;
    session.variables = 0;
    session.pending_output = 0;
    if (auto worker = std::move(session.worker)) worker->kill(why);
}

// The worker's reader thread, after reaping it: its session (if it still had it) is lost, and
// the job it was running learns why.
void ProcessEngine::on_worker_exit(WorkerProcess& worker, const std::string& why) {
    std::lock_guard lock(mutex_);
    if (spare_.get() == &worker) spare_.reset();
    for (auto& [id, s] : sessions_)
        if (s->worker.get() == &worker) {
            spdlog::warn("session '{}' lost: {}", id, why);
            lose_locked(*s, why);
        }
    for (auto& [x, weak] : jobs_) {
        auto job = weak.lock();
        if (!job) continue;
        std::lock_guard job_lock(job->mutex);
        if (job->worker.lock().get() != &worker) continue;
        if (job->gone.empty()) job->gone = why;
        job->cv.notify_all();
    }
    --workers_;
    changed_.notify_all();
}

void ProcessEngine::on_done(long long x, const json& params) {
    std::shared_ptr<Job> job;
    {
        std::lock_guard lock(mutex_);
        if (auto it = jobs_.find(x); it != jobs_.end()) job = it->second.lock();
    }
    if (!job) return;
    std::lock_guard lock(job->mutex);
    job->done = params;
    job->cv.notify_all();
}

void ProcessEngine::expiry_tick() {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    auto now = Clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        auto& s = it->second;
        if (!s->draining && s->queue.empty() && now - s->last_used_steady > options_.session_ttl) {
            spdlog::info("session '{}' expired after {} idle; its worker process ends", it->first,
                         seconds_text(options_.session_ttl));
            if (s->worker) s->worker->kill("its session expired");
            s->cleared = true;
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
    // No session left: the spare ends too (the next session that needs one starts it again).
    if (sessions_.empty() && spare_ && !spare_starting_) {
        spare_->kill("idle");
        spare_.reset();
        spare_wanted_ = false;
    }
    timer_->schedule(now + expiry_period(options_.session_ttl), [this] { expiry_tick(); });
}

std::optional<size_t> ProcessEngine::clear_session(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return std::nullopt;
    auto session = it->second;
    sessions_.erase(it);
    session->cleared = true;
    if (auto worker = std::move(session->worker)) worker->kill("session '" + session_id + "' was cleared (clear_session)");
    // Jobs queued behind are answered by the drain ("cleared before this code ran").
    return session->variables;
}

std::optional<size_t> ProcessEngine::restart_session(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return std::nullopt;
    size_t variables = it->second->variables;
    lose_locked(*it->second, "restarted on request (restart_session)");
    return variables;
}

std::vector<engine::SessionInfo> ProcessEngine::list_sessions() {
    std::vector<engine::SessionInfo> out;
    std::lock_guard lock(mutex_);
    for (const auto& [id, s] : sessions_) {
        engine::SessionInfo info{id, s->variables, s->created, s->last_used, s->current || !s->queue.empty(),
                                 s->executions};
        info.persistent = s->persistent;
        info.pending_output_bytes = s->pending_output;
        info.isolation = "process";
        info.lost = s->lost;
        info.losses = s->losses;
        out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

std::optional<engine::BackgroundOutput> ProcessEngine::read_output(const std::string& session_id) {
    std::shared_ptr<WorkerProcess> worker;
    {
        std::lock_guard lock(mutex_);
        if (auto it = sessions_.find(session_id); it != sessions_.end()) worker = it->second->worker;
    }
    if (!worker) return std::nullopt;
    try {
        json taken = worker->call(method::kReadOutput, json{{"session", session_id}}, kWorkerCallTimeout);
        {
            std::lock_guard lock(mutex_);
            if (auto it = sessions_.find(session_id); it != sessions_.end()) it->second->pending_output = 0;
        }
        if (taken.is_null()) return std::nullopt;
        return background_from_json(taken);
    } catch (const std::exception& e) {
        spdlog::warn("read_output of session '{}': {}", session_id, e.what());
        return std::nullopt;
    }
}

void ProcessEngine::interrupt_all() {
    std::vector<std::pair<std::shared_ptr<WorkerProcess>, long long>> running;
    {
        std::lock_guard lock(mutex_);
        for (auto& [x, weak] : jobs_)
            if (auto job = weak.lock()) {
                std::lock_guard job_lock(job->mutex);
                if (auto w = job->worker.lock()) running.emplace_back(w, x);
            }
    }
    for (auto& [worker, x] : running) worker->cancel(x);
}

size_t ProcessEngine::worker_count() {
    std::lock_guard lock(mutex_);
    return workers_;
}

}  // namespace pymcp::worker
