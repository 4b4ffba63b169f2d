#include "python_mcp/python/session_engine.hpp"

#include "python_mcp/support/time_format.hpp"

#include <malloc.h>
#include <pybind11/embed.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <string_view>
#include <thread>

#include "python_mcp/bridge/bridge.hpp"
#include "python_mcp/python/execution.hpp"
#include "python_mcp/python/fd_capture.hpp"
#include "python_mcp/python/gil_priority.hpp"
#include "python_mcp/python/interpreter.hpp"

namespace py = pybind11;
using Clock = std::chrono::steady_clock;

namespace pymcp::python {

using engine::ExecError;
using engine::ExecOutcome;
using engine::ExecRequest;
using engine::SessionInfo;
using engine::EngineError;

namespace {

// The host of an execution submitted without one: it refuses tool calls and drops the rest.
class NoHost final : public engine::ExecutionHost {
public:
    pymcp::json call_tool(const std::string& name, pymcp::json, const std::string&, const CancellationToken&) override {
        throw engine::HostError("cannot call tool '" + name + "': this execution was started without a host");
    }
    pymcp::json list_tools() override { return pymcp::json::array(); }
    std::string wait_for_server(const std::string&, const CancellationToken&) override { return {}; }
};

// Counts the jobs inside run_job: a job that starts while another runs shares the GIL with it.
struct Executing {
    std::atomic<int>& count;
    const bool shared;  // another job was running when this one started
    explicit Executing(std::atomic<int>& n) : count(n), shared(n.fetch_add(1) > 0) {}
    ~Executing() { count.fetch_sub(1); }
    Executing(const Executing&) = delete;
    Executing& operator=(const Executing&) = delete;
};

// A py::object that takes the GIL to die, wherever its owner is destroyed.
struct GilObject {
    py::object* object = nullptr;
    GilObject() = default;
    GilObject(const GilObject&) = delete;
    GilObject& operator=(const GilObject&) = delete;
    ~GilObject() { reset(); }
    void reset() {
        if (!object) return;
        py::gil_scoped_acquire gil;
        delete object;
        object = nullptr;
    }
};

// The signals the server handles itself (shutdown) or ignores (SIGPIPE: a client that went away
// must not kill it). User code on the main thread can take them over with signal.signal(), and C
// code from any thread with sigaction(); after every execution the server's dispositions are put
// back, so the next SIGTERM still shuts the server down.
constexpr int kServerSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
struct SavedSignal {
    int sig;
    struct sigaction action;
};
std::vector<SavedSignal>& saved_signals() {
    static std::vector<SavedSignal> saved;
    return saved;
}
// Set in a child made by fork() (pthread_atfork), so the check after every execution costs no
// getpid() system call.
std::atomic<bool> g_in_forked_child{false};

int watch_for_fork() {
    static const bool registered = [] {
        ::pthread_atfork(nullptr, nullptr, [] { g_in_forked_child.store(true, std::memory_order_relaxed); });
        return true;
    }();
    (void)registered;
    return 0;
}

void save_server_signals() {
    if (!saved_signals().empty()) return;
    for (int sig : kServerSignals) {
        SavedSignal s{sig, {}};
        if (::sigaction(sig, nullptr, &s.action) == 0) saved_signals().push_back(s);
    }
}

// Puts back what save_server_signals() saw; returns the names of the signals it had to restore.
std::string restore_server_signals() {
    std::string changed;
    for (const auto& s : saved_signals()) {
        struct sigaction now {};
        if (::sigaction(s.sig, nullptr, &now) != 0) continue;
        if (now.sa_handler == s.action.sa_handler && now.sa_flags == s.action.sa_flags) continue;
        ::sigaction(s.sig, &s.action, nullptr);
        if (!changed.empty()) changed += ", ";
        changed += sigabbrev_np(s.sig) ? std::string("SIG") + sigabbrev_np(s.sig) : std::to_string(s.sig);
    }
    return changed;
}

// How often idle sessions are looked at: a quarter of the TTL (so one expires at most 25% late),
// at least every second, at most every 10 ms.
std::chrono::milliseconds expiry_period(std::chrono::milliseconds ttl) {
    return std::clamp(ttl / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

// Jobs finished since the last trim that make it worth trimming the heap once the engine is
// idle, and how long it must stay idle first (so a burst that pauses is trimmed at its end, once).
constexpr size_t kBurstJobs = 64;
constexpr std::chrono::milliseconds kTrimDelay{100};

}  // namespace

struct SessionEngine::Session {
    std::string id;
    bool persistent = false;
    GilObject globals;  // created on first run, under the GIL
    std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
    std::chrono::system_clock::time_point last_used = created;
    Clock::time_point last_used_steady = Clock::now();
    // GUARDED_BY(engine sessions_mutex_):
    std::deque<std::shared_ptr<Job>> queue;
    bool draining = false;
    std::shared_ptr<Job> current;
    size_t executions = 0;
    size_t variables = 0;  // counted after each run, so listing needs no GIL
    bool cleared = false;  // cleared while busy: freed when its queue has drained
};

struct SessionEngine::Job {
    ExecRequest request;
    std::shared_ptr<Execution> execution;
    std::weak_ptr<Session> session;
    std::mutex mutex;
    bool done = false;        // GUARDED_BY(mutex): the code has finished (or never ran)
    // GUARDED_BY(mutex): the code began to run, or the deadline answered that it never did
    // (abandoned: it must not start later). Decided under the one mutex, so an answer that says
    // "did not run" is always true.
    bool started = false;
    bool abandoned = false;
    Clock::time_point started_at;  // GUARDED_BY(mutex), once started
    ExecOutcome outcome;      // written by the running thread before done is set
    std::atomic<bool> running{false};
    unsigned long thread_id = 0;
    PyThreadState* thread_state = nullptr;  // the running thread's; set and read with the GIL held
    std::atomic<bool> answered{false};
    // GUARDED_BY(mutex): the spool files the answer named (they now belong to the caller). An
    // outcome that comes after the answer is dropped, and its other spool files with it.
    std::vector<std::string> delivered_spools;
    Completion completion;    // called once, by whoever flips `answered`
    CancelRegistration on_cancel;
    // The time-out's timer entry: re-armed (from the timer or an asking thread) when pauses
    // moved it (Execution::postpone), so atomic.
    std::atomic<uint64_t> deadline_id{0};
    Clock::time_point deadline_due;  // submission + timeout, before pauses; set before enqueue
};

namespace {
// Whether the innermost Python frame of `ts` is importlib's locking code (_bootstrap: module
// locks, _find_and_load). An asynchronous exception raised there can leave a module lock
// acquired with nobody to release it (for example between `_ModuleLock.acquire()` returning and
// the `with` that releases it), and every later import of that module, in any session, then
// waits forever. An exception is raised in the frame where the thread resumes, so one posted
// while the thread sits elsewhere cannot land in those frames. _bootstrap_external (finding and
// reading files) holds no lock and unwinds cleanly; it is also where an importing thread usually
// waits (stat, read), so passing it over too would starve the interrupt. GIL held.
bool in_import_machinery(PyThreadState* ts) {
    PyFrameObject* frame = PyThreadState_GetFrame(ts);
    if (!frame) return false;
    PyCodeObject* code = PyFrame_GetCode(frame);
    Py_DECREF(frame);
    const char* file = PyUnicode_AsUTF8(code->co_filename);
    Py_DECREF(code);
    if (!file) {
        PyErr_Clear();
        return false;
    }
    return std::string_view(file) == "<frozen importlib._bootstrap>";
}
}  // namespace

// Posts ExecutionInterrupted into interrupted jobs until they stop. Its own thread, because
// posting needs the GIL and C code may hold the GIL for a long time. It posts only while the
// cell's own code runs and never into importlib's frames (see in_import_machinery); a job it
// had to pass over is tried again within a millisecond (20 ms once it has been passed over
// for a second).
class SessionEngine::Interrupter {
public:
    Interrupter() : thread_([this] { loop(); }) {}
    ~Interrupter() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    void request(const std::shared_ptr<Job>& job) {
        {
            std::lock_guard lock(mutex_);
            targets_.push_back(job);
            ++generation_;
        }
        wake_.notify_all();
    }

private:
    void loop() {
        auto hooks = python_thread_hooks();
        hooks.on_start();
        std::unique_lock lock(mutex_);
        while (!stop_) {
            wake_.wait(lock, [&] { return stop_ || !targets_.empty(); });
            if (stop_) break;
            auto targets = targets_;
            lock.unlock();
            std::vector<std::weak_ptr<Job>> still;
            bool passed_over = false;
            {
                py::gil_scoped_acquire gil;
                for (auto& weak : targets) {
                    auto job = weak.lock();
                    if (!job) continue;
                    // running and in_user_code are only changed with the GIL held, so a job
                    // seen in its code here cannot have moved on before the exception is
                    // posted; the worker clears any late one once it has stopped.
                    if (job->running.load() && job->thread_state) {
                        if (job->execution->in_user_code() && !in_import_machinery(job->thread_state))
                            PyThreadState_SetAsyncExc(job->thread_id, bridge::execution_interrupted_type());
                        else
                            passed_over = true;
                        still.push_back(weak);
                    } else if (!job->running.load()) {
                        std::lock_guard jl(job->mutex);
                        if (!job->done) still.push_back(weak);  // queued or not yet started
                    }
                }
            }
            lock.lock();
            // Keep new requests that came in meanwhile, drop the finished ones.
            std::vector<std::weak_ptr<Job>> merged = std::move(still);
            for (size_t i = targets.size(); i < targets_.size(); ++i) merged.push_back(targets_[i]);
            targets_ = std::move(merged);
            // Re-post every 50 ms (code may catch the exception and go on) and serve a new
            // request at once. A passed-over job is tried again after 1 ms: a thread busy in
            // import code is caught outside importlib's frames within a few tries (backing off
            // made a loop of imports take seconds to stop). After a second of passes in a row
            // it is more likely blocked on a module lock for good: every 20 ms then, so it does
            // not cost a GIL round trip each millisecond.
            size_t seen = generation_;
            passes_in_a_row_ = passed_over ? passes_in_a_row_ + 1 : 0;
            auto pause = !passed_over                ? kRepost
                         : passes_in_a_row_ < 1000   ? std::chrono::milliseconds(1)
                                                     : std::chrono::milliseconds(20);
            if (!targets_.empty())
                wake_.wait_for(lock, pause, [&] { return stop_ || generation_ != seen; });
        }
        lock.unlock();
        hooks.on_stop();
    }

    static constexpr std::chrono::milliseconds kRepost{50};
    size_t passes_in_a_row_ = 0;  // the interrupter thread's own
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<std::weak_ptr<Job>> targets_;  // GUARDED_BY(mutex_)
    size_t generation_ = 0;                    // GUARDED_BY(mutex_): bumped by every request
    bool stop_ = false;                        // GUARDED_BY(mutex_)
    std::thread thread_;
};

namespace {
// The runtime's functions, looked up once (GIL held when used).
struct RuntimeFns {
    py::object run, new_namespace, count_variables;
};
RuntimeFns* g_fns = nullptr;
}  // namespace

SessionEngine::SessionEngine(EngineOptions options)
    : options_(options),
      interrupter_((save_server_signals(), watch_for_fork(), std::make_unique<Interrupter>())),
      timer_(std::make_unique<DeadlineTimer>()) {
    {
        py::gil_scoped_acquire gil;
        bridge::attach_runtime();
        if (!g_fns) {
            py::module_ rt = py::module_::import("_pymcp_runtime");
            g_fns = new RuntimeFns{rt.attr("run"), rt.attr("new_namespace"), rt.attr("count_variables")};
        }
    }
    pool_ = std::make_unique<ElasticPool>("python", options_.max_threads, python_thread_hooks());
    if (options_.session_ttl.count() > 0)
        timer_->schedule(Clock::now() + expiry_period(options_.session_ttl), [this] { expiry_tick(); });
}

SessionEngine::~SessionEngine() {
    {
        std::lock_guard lock(sessions_mutex_);
        stopping_ = true;  // no expiry tick posts to the pool from now on
    }
    interrupt_all();
    pool_.reset();  // joins; running code must have stopped
    timer_.reset();
    interrupter_.reset();
    std::lock_guard lock(sessions_mutex_);
    sessions_.clear();
}

std::shared_ptr<SessionEngine::Session> SessionEngine::session_for_locked(const ExecRequest& request) {
    if (!request.persistent) {
        auto s = std::make_shared<Session>();
        s->id = request.session_id;
        return s;
    }
    auto it = sessions_.find(request.session_id);
    if (it != sessions_.end()) return it->second;
    if (sessions_.size() >= options_.max_sessions)
        throw EngineError("too many sessions: " + std::to_string(sessions_.size()) + " exist (--max-sessions " +
                          std::to_string(options_.max_sessions) +
                          "); clear one with the clear_session operation, or raise the limit");
    auto s = std::make_shared<Session>();
    s->id = request.session_id;
    s->persistent = true;
    sessions_.emplace(s->id, s);
    return s;
}

// Finding the session and queueing the job happen under one hold of sessions_mutex_: a session
// that expired or was cleared in between would otherwise run the job on globals being freed.
void SessionEngine::enqueue(const std::shared_ptr<Job>& job) {
    std::lock_guard lock(sessions_mutex_);
    auto session = session_for_locked(job->request);
    job->session = session;
    session->queue.push_back(job);
    running_.emplace(job.get(), job);
    if (session->draining) return;
    // Posted under the lock (the pool never calls back into this engine with its own lock
    // held), so a refusal can be undone before anyone else saw the job.
    try {
        pool_->post([this, session] { drain(session); });
    } catch (const PoolError& e) {
        session->queue.pop_back();
        running_.erase(job.get());
        if (session->persistent && session->executions == 0 && !session->globals.object && session->queue.empty())
            sessions_.erase(session->id);  // made for this job only
        throw EngineError(std::string(e.what()) + "; the code did not run");
    }
    session->draining = true;
}

void SessionEngine::drain(std::shared_ptr<Session> session) {
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::lock_guard lock(sessions_mutex_);
            if (session->queue.empty()) {
                session->draining = false;
                if (!session->cleared) return;
            } else {
                job = session->queue.front();
                session->queue.pop_front();
                session->current = job;
            }
        }
        if (!job) {  // cleared while busy: nothing can queue here any more (it left the table)
            release_sessions({std::move(session)});
            return;
        }
        run_queued(*session, *job);
        ExecOutcome outcome;
        {
            std::lock_guard lock(job->mutex);
            job->done = true;
            outcome = std::move(job->outcome);
        }
        timer_->cancel(job->deadline_id);
        {
            // Before answering, so a client that lists sessions right after sees this run.
            std::lock_guard lock(sessions_mutex_);
            session->current.reset();
            session->last_used = std::chrono::system_clock::now();
            session->last_used_steady = Clock::now();
            ++session->executions;
            running_.erase(job.get());
        }
        answer(*job, std::move(outcome));
        job.reset();
        trim_after_burst();
    }
}

void SessionEngine::run_queued(Session& session, Job& job) {
    if (!job.request.run_on_main_thread) {
        run_job(session, job);
        return;
    }
    std::promise<void> finished;
    MainThreadExecutor::instance().post([&] {
        run_job(session, job);
        finished.set_value();
    });
    finished.get_future().wait();
}

void SessionEngine::trim_after_burst() {
    std::lock_guard lock(sessions_mutex_);
    ++done_since_trim_;
    if (!running_.empty() || trim_scheduled_ || done_since_trim_ < kBurstJobs || stopping_) return;
    trim_scheduled_ = true;
    timer_->schedule(Clock::now() + kTrimDelay, [this] { trim_if_idle(); });
}

void SessionEngine::trim_if_idle() {
    std::lock_guard lock(sessions_mutex_);
    trim_scheduled_ = false;
    if (stopping_ || !running_.empty()) return;  // busy again: its next idle moment asks again
    done_since_trim_ = 0;
    // Thousands of queued jobs (each with its request, buffers and outcome) were freed across
    // every thread's malloc arena; without this the process keeps them resident for good.
    // Trimming walks the arenas (milliseconds on a big heap): a pool thread does it.
    try {
        pool_->post([] { ::malloc_trim(0); });
    } catch (const PoolError&) {
        // No thread: nothing ran, nothing to give back that matters.
    }
}

// How the cell's run itself failed, beyond what the runtime reported: an interrupt that escaped
// the runtime's own handlers, or an error of the runtime.
struct SessionEngine::RunFailure {
    bool escaped_interrupt = false;
    std::string internal_error;
};

void SessionEngine::run_job(Session& session, Job& job) {
    Executing executing(executing_);
    GilPriority::Waiting waiting(GilPriority::instance(), executing.shared);
    py::gil_scoped_acquire gil;
    waiting.done();
    auto started = Clock::now();
    if (!claim_start(session, job, started)) return;
    py::object ns = session_namespace(session);
    run_cell(job, ns);
    job.outcome.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    finish_outcome(session, job, ns);
}

// Decides, under the job's mutex, that it runs now: not when it was cancelled or timed out while
// it waited in the queue (then the outcome says so and it never runs).
bool SessionEngine::claim_start(Session& session, Job& job, Clock::time_point started) {
    Execution& ex = *job.execution;
    bool run;
    {
        std::lock_guard lock(job.mutex);
        run = !job.abandoned && !ex.interrupted();
        job.started = run;
        if (run) job.started_at = started;
    }
    if (run) return true;
    ExecOutcome& out = job.outcome;
    out.status = ex.interrupt_kind() == Execution::Interrupt::Timeout ? ExecOutcome::Status::TimedOut
                                                                      : ExecOutcome::Status::Cancelled;
    if (out.status == ExecOutcome::Status::TimedOut)
        out.error = ExecError{"TimeoutError", "session '" + session.id + "' was busy until the time-out passed; the code did not run",
                              ""};
    return false;
}

py::object SessionEngine::session_namespace(Session& session) {
    if (!session.persistent) return g_fns->new_namespace();
    if (!session.globals.object) session.globals.object = new py::object(g_fns->new_namespace());
    return *session.globals.object;
}

// Runs the cell with fd capture on, then puts the thread and the process back in order: no late
// interrupt left pending, the server's signal handlers restored, the output closed (later
// writes of the code's threads go to the background store).
void SessionEngine::run_cell(Job& job, py::object& ns) {
    Execution& ex = *job.execution;
    FdCapture* capture = FdCapture::instance();
    uint64_t capture_token = capture ? capture->begin(&ex) : 0;
    job.thread_id = PyThread_get_thread_ident();
    job.thread_state = PyThreadState_Get();
    job.running = true;
    RunFailure failure;
    try {
        std::string filename = job.request.filename.empty() ? "<python-input>" : job.request.filename;
        g_fns->run(bridge::wrap_execution(job.execution), job.request.code, ns, filename);
    } catch (py::error_already_set& e) {
        if (e.matches(bridge::execution_interrupted_type())) failure.escaped_interrupt = true;
        else failure.internal_error = e.what();
    }
    // A child made by os.fork() that did not exit came back here: it must not live on as a
    // headless copy of the server (its threads are gone, its locks may be held forever). It
    // exits like a script that ran to its end.
    if (g_in_forked_child.load(std::memory_order_relaxed))
        ::_exit(ex.cell_result().status == CellResult::Status::Ok ? 0 : 1);
    job.running = false;
    job.thread_state = nullptr;
    // An interrupt posted just as the code finished must not hit whatever this thread runs next.
    PyThreadState_SetAsyncExc(job.thread_id, nullptr);
    if (std::string taken = restore_server_signals(); !taken.empty())
        ex.err().write("\n[python-mcp] " + taken +
                       " belong to the server (shutdown, a client that went away); the handlers this code "
                       "installed were removed.\n");
    if (capture) capture->end(capture_token);
    ex.close_output();
    read_cell_result(job, failure);
}

// The runtime's report (CellResult), or the failure around it, as the outcome's status, result
// and error. A time-out or cancellation gets its own wording whatever the code was doing.
void SessionEngine::read_cell_result(Job& job, const RunFailure& failure) {
    Execution& ex = *job.execution;
    ExecOutcome& out = job.outcome;
    const CellResult& cell = ex.cell_result();
    auto status = cell.status;
    if (failure.escaped_interrupt) {
        status = CellResult::Status::Interrupted;
        out.error = ExecError{ex.interrupt_reason(), "interrupted", ""};
    } else if (!failure.internal_error.empty() || status == CellResult::Status::None) {
        status = CellResult::Status::Error;
        out.error = ExecError{"InternalError",
                              failure.internal_error.empty() ? "the runtime reported no result" : failure.internal_error, ""};
    } else {
        out.error = cell.error;
        if (cell.value) {
            // A huge repr is cut like output: head and tail, within max_output.
            OutputBuffer value(job.request.max_output);
            if (!job.request.spool_prefix.empty())
                value.spool_to(job.request.spool_prefix + "result.txt", job.request.spool_max_bytes);
            value.write(*cell.value);
            engine::StreamText kept = value.snapshot();
            out.result = std::move(kept.text);
            out.result_cut_bytes = kept.cut_bytes;
            out.result_spool = std::move(kept.spool);
        }
    }
    if (status == CellResult::Status::Ok) {
        out.status = ExecOutcome::Status::Ok;
        return;
    }
    if (status != CellResult::Status::Interrupted && !ex.interrupted()) {
        out.status = ExecOutcome::Status::Error;
        return;
    }
    const bool timed_out = ex.interrupt_kind() == Execution::Interrupt::Timeout;
    out.status = timed_out ? ExecOutcome::Status::TimedOut : ExecOutcome::Status::Cancelled;
    if (!out.error) return;
    out.error->type = timed_out ? "TimeoutError" : "Cancelled";
    out.error->message = timed_out ? "the code ran past its timeout of " + seconds_text(job.request.timeout) +
                                         " and was interrupted"
                                   : "the execution was cancelled";
}

void SessionEngine::finish_outcome(Session& session, Job& job, py::object& ns) {
    Execution& ex = *job.execution;
    ExecOutcome& out = job.outcome;
    if (session.persistent) {
        try {
            auto n = g_fns->count_variables(ns).cast<size_t>();
            std::lock_guard lock(sessions_mutex_);
            session.variables = n;
        } catch (const py::error_already_set&) {
        }
    }
    // A fresh namespace is only dropped, not cleared: threads the code started may still use
    // its globals; the dict dies with its last reference.
    ns = py::object();
    out.out = ex.out().snapshot();
    out.err = ex.err().snapshot();
    out.mcp_calls = ex.take_calls();
    out.mcp_calls_omitted = ex.take_omitted_calls();
    ex.take_display(out);
    out.background_output_bytes = background_->pending(session.id);
}

namespace {

std::vector<std::string> spool_paths(const ExecOutcome& o) {
    std::vector<std::string> paths;
    for (const auto* f : {&o.out.spool, &o.err.spool, &o.result_spool})
        if (*f) paths.push_back((*f)->path);
    return paths;
}

}  // namespace

void SessionEngine::answer(Job& job, ExecOutcome outcome) {
    {
        std::lock_guard lock(job.mutex);
        if (job.answered.exchange(true)) {
            // Nobody will name these files (a cancelled call, or the outcome after a time-out's
            // answer): remove those the answer did not hand over.
            for (const auto& path : spool_paths(outcome))
                if (std::find(job.delivered_spools.begin(), job.delivered_spools.end(), path) == job.delivered_spools.end())
                    ::unlink(path.c_str());
            return;
        }
        job.delivered_spools = spool_paths(outcome);
    }
    auto done = std::move(job.completion);
    job.completion = nullptr;
    if (done) done(std::move(outcome));
}

void SessionEngine::submit(const ExecRequest& request, std::shared_ptr<engine::ExecutionHost> host, Completion done) {
    if (request.run_on_main_thread && MainThreadExecutor::instance().runs_on_this_thread())
        throw EngineError(
            "run_on_main_thread: this code already runs on the main thread (a run_on_main_thread execution "
            "called mcp.call for another one), which would wait for itself until its timeout; the nested code "
            "did not run. Run it without run_on_main_thread, or call it directly");
    auto job = std::make_shared<Job>();
    job->request = request;
    if (!host) host = std::make_shared<NoHost>();
    job->execution = std::make_shared<Execution>(request.session_id, request.persistent, request.max_output,
                                                 std::move(host), background_);
    job->execution->set_argv(request.argv);
    job->execution->set_image_budget(request.max_images, request.max_image_bytes);
    if (!request.spool_prefix.empty()) {
        job->execution->out().spool_to(request.spool_prefix + "stdout.txt", request.spool_max_bytes);
        job->execution->err().spool_to(request.spool_prefix + "stderr.txt", request.spool_max_bytes);
    }
    job->completion = std::move(done);
    std::weak_ptr<Job> weak = job;
    job->on_cancel = request.cancel.on_cancel([this, weak] {
        auto j = weak.lock();
        if (!j) return;
        j->execution->interrupt(Execution::Interrupt::Cancelled);
        interrupter_->request(j);
        ExecOutcome out;  // nobody reads it: a cancelled request gets no answer
        out.status = ExecOutcome::Status::Cancelled;
        out.still_running = true;
        answer(*j, std::move(out));
    });
    // While the code waits for its client's answer (input(), mcp.ask) the time-out pauses; a
    // deadline that fell meanwhile is looked at again when the wait ends.
    job->execution->set_resume_hook([this, weak] {
        timer_->schedule(Clock::now(), [this, weak] {
            if (auto j = weak.lock()) on_deadline(j);
        });
    });
    job->deadline_due = Clock::now() + request.timeout;
    arm_deadline(job, job->deadline_due);
    try {
        enqueue(job);
    } catch (...) {
        timer_->cancel(job->deadline_id);
        job->completion = nullptr;  // the caller answers from the exception
        throw;
    }
}

void SessionEngine::arm_deadline(const std::shared_ptr<Job>& job, Clock::time_point when) {
    std::weak_ptr<Job> weak = job;
    job->deadline_id = timer_->schedule(when, [this, weak] {
        if (auto j = weak.lock()) on_deadline(j);
    });
}

void SessionEngine::on_deadline(const std::shared_ptr<Job>& job) {
    if (job->answered.load()) return;
    // Paused time (the code waited for its client's answer) moves the deadline; during a pause
    // the resume hook brings it back here.
    if (auto later = job->execution->postpone(job->deadline_due)) {
        if (*later != Clock::time_point::max()) arm_deadline(job, *later);
        return;
    }
    bool started;
    {
        std::lock_guard lock(job->mutex);
        started = job->started;
        job->abandoned = !started;
    }
    job->execution->interrupt(Execution::Interrupt::Timeout);
    if (!started) {
        // It never ran and now never will: say what it waited for, not that it overran.
        answer(*job, not_started_outcome(*job));
        return;
    }
    interrupter_->request(job);
    // The interrupt usually lands within milliseconds and the job answers with its traceback.
    // If it has not after the grace period, the code is stuck in C: answer now with what it printed.
    std::weak_ptr<Job> weak = job;
    timer_->schedule(Clock::now() + options_.interrupt_grace, [weak, grace = options_.interrupt_grace] {
        auto j = weak.lock();
        if (!j || j->answered.load()) return;
        const auto& req = j->request;
        ExecOutcome out;
        out.status = ExecOutcome::Status::TimedOut;
        out.still_running = true;
        out.out = j->execution->out().snapshot();
        out.err = j->execution->err().snapshot();
        out.duration_ms = std::chrono::duration<double, std::milli>(req.timeout + grace).count();
        out.error = ExecError{"TimeoutError",
                              "the code ran past its timeout of " + seconds_text(req.timeout) +
                                  " and has not stopped yet (it is probably inside a long C call that cannot be "
                                  "interrupted); session '" + req.session_id +
                                  "' stays busy until it returns, other sessions keep working",
                              ""};
        answer(*j, std::move(out));
    });
}

ExecOutcome SessionEngine::not_started_outcome(const Job& job) {
    const auto& req = job.request;
    std::shared_ptr<Job> ahead;  // the session's running job, when it is another one
    if (auto session = job.session.lock()) {
        std::lock_guard lock(sessions_mutex_);
        if (session->current.get() != &job) ahead = session->current;
    }
    std::string why;
    if (ahead) {
        std::string busy_for;
        {
            std::lock_guard lock(ahead->mutex);
            if (ahead->started) busy_for = " that has been running for " + seconds_text(Clock::now() - ahead->started_at);
        }
        why = "it waited its whole timeout of " + seconds_text(req.timeout) + " behind an earlier execution in session '" +
              req.session_id + "'" + busy_for +
              " (probably inside a long C call that cannot be interrupted); that session stays busy until it returns, "
              "other sessions keep working";
    } else {
        why = "it could not start within its timeout of " + seconds_text(req.timeout) +
              ": other code held the interpreter (a long C call that keeps the GIL)" +
              (req.run_on_main_thread ? std::string(" or the main thread") : std::string()) + " the whole time";
    }
    ExecOutcome out;
    out.status = ExecOutcome::Status::TimedOut;
    out.error = ExecError{"TimeoutError", "the code did not run: " + why, ""};
    return out;
}

std::optional<size_t> SessionEngine::clear_session(const std::string& session_id) {
    std::shared_ptr<Session> session;
    size_t counted;
    {
        std::lock_guard lock(sessions_mutex_);
        auto it = sessions_.find(session_id);
        if (it == sessions_.end()) return std::nullopt;
        session = it->second;
        sessions_.erase(it);
        counted = session->variables;
        // Busy: its globals go when the running code (and what queued behind it) returns; the
        // draining thread frees them then, without waiting for another call.
        session->cleared = session->draining;
        if (session->cleared) return counted;
    }
    {
        py::gil_scoped_acquire gil;
        if (session->globals.object) counted = g_fns->count_variables(*session->globals.object).cast<size_t>();
    }
    release_sessions({std::move(session)});
    return counted;
}

std::vector<SessionInfo> SessionEngine::list_sessions() {
    std::vector<SessionInfo> out;
    auto pending = background_->pending_all();  // before sessions_mutex_: the store's lock is a leaf
    {
        std::lock_guard lock(sessions_mutex_);
        for (const auto& [id, s] : sessions_)
            out.push_back(SessionInfo{id, s->variables, s->created, s->last_used, s->current || !s->queue.empty(),
                                      s->executions});
    }
    // Background output of a name with no persistent session (fresh-namespace runs) is listed too.
    for (const auto& [id, bytes] : pending) {
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& s) { return s.id == id; });
        if (it == out.end()) {
            it = out.insert(out.end(), SessionInfo{});
            it->id = id;
            it->persistent = false;
        }
        it->pending_output_bytes = bytes;
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

std::optional<engine::BackgroundOutput> SessionEngine::read_output(const std::string& session_id) {
    return background_->take(session_id);
}

size_t SessionEngine::unfinished_jobs() {
    std::lock_guard lock(sessions_mutex_);
    return running_.size();
}

void SessionEngine::interrupt_all() {
    std::vector<std::shared_ptr<Job>> jobs;
    {
        std::lock_guard lock(sessions_mutex_);
        for (auto& [_, w] : running_)
            if (auto j = w.lock()) jobs.push_back(j);
    }
    for (auto& j : jobs) {
        j->execution->interrupt(Execution::Interrupt::Shutdown);
        interrupter_->request(j);
    }
}

void SessionEngine::expiry_tick() {
    std::lock_guard lock(sessions_mutex_);
    if (stopping_) return;
    auto now = Clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (!it->second->draining && now - it->second->last_used_steady > options_.session_ttl) {
            spdlog::info("session '{}' expired after {} idle", it->first, seconds_text(options_.session_ttl));
            expired_.push_back(std::move(it->second));
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
    // Freeing runs user finalizers and needs the GIL: never on this thread (it answers
    // time-outs), nor on the reader (it answers pings); a pool thread does it.
    if (!expired_.empty()) {
        try {
            pool_->post([this] {
                std::vector<std::shared_ptr<Session>> batch;
                {
                    std::lock_guard l(sessions_mutex_);
                    batch.swap(expired_);
                }
                release_sessions(std::move(batch));
            });
        } catch (const PoolError& e) {
            spdlog::warn("cannot free expired sessions yet: {}", e.what());  // tried again next tick
        }
    }
    timer_->schedule(now + expiry_period(options_.session_ttl), [this] { expiry_tick(); });
}

void SessionEngine::release_sessions(std::vector<std::shared_ptr<Session>> sessions) {
    if (sessions.empty()) return;
    {
        py::gil_scoped_acquire gil;
        for (auto& s : sessions) {
            bridge::forget_session_cells(s->id);  // its cells' sources, kept for tracebacks
            if (!s->globals.object) continue;
            // Clearing breaks the cycles through every function's __globals__ (and runs the
            // values' finalizers, here); then the dict itself goes.
            try {
                s->globals.object->attr("clear")();
            } catch (py::error_already_set& e) {
                spdlog::warn("clearing session '{}': {}", s->id, e.what());
            }
            delete s->globals.object;
            s->globals.object = nullptr;
        }
        sessions.clear();
        // What is left in cycles among the values (classes, closures, self-references).
        try {
            py::module_::import("gc").attr("collect")();
        } catch (py::error_already_set& e) {
            spdlog::warn("gc.collect after freeing sessions: {}", e.what());
        }
    }
    // Large frees went back to glibc's free lists, not to the OS (its mmap threshold grows with
    // use): return them, outside the GIL.
    ::malloc_trim(0);
}

}  // namespace pymcp::python
