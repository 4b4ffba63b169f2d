#include "python_mcp/tools/scheduler.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "python_mcp/support/head_tail.hpp"
#include "python_mcp/support/paths.hpp"
#include "python_mcp/tools/cron.hpp"
#include "python_mcp/tools/tool_call_host.hpp"

namespace pymcp::tools {

using mcp::ToolError;

namespace {

double now_unix() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "2026-01-02T03:04:05.678Z"
std::string iso_ms(double unix_seconds) {
    auto whole = static_cast<std::time_t>(std::floor(unix_seconds));
    int ms = static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000);
    std::tm tm{};
    gmtime_r(&whole, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[64];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, std::clamp(ms, 0, 999));
    return out;
}

const char* status_name(engine::ExecOutcome::Status s) {
    using Status = engine::ExecOutcome::Status;
    switch (s) {
        case Status::Ok: return "success";
        case Status::Error: return "failure";
        case Status::TimedOut: return "timeout";
        case Status::Cancelled: return "interrupted";
    }
    return "failure";
}

// A schedule as the scheduler thread keeps it.
struct Armed {
    ScheduleRow row;
    std::optional<CronExpression> cron;
    double next_due = 0;  // unix seconds; 0: none
    double last_due = 0;  // the tick the current (or last) run was started for
    bool running = false;
    CancellationSource cancel;  // the current run's (unschedule interrupts it)
};

// The first tick strictly after `after` (0 when a cron expression has none left).
double next_tick(const Armed& a, double after) {
    if (a.row.every_seconds) {
        double every = *a.row.every_seconds;
        double k = std::max(1.0, std::floor((after - a.row.anchor_unix) / every) + 1);
        double t = a.row.anchor_unix + k * every;
        return t > after ? t : t + every;  // rounding
    }
    auto t = a.cron->next_after(static_cast<std::time_t>(std::floor(after)));
    return t ? static_cast<double>(*t) : 0;
}

// The outcome as a run row: status, duration, head+tail of stdout and stderr, result, error.
RunRow run_row(const engine::ExecOutcome& o, size_t limit) {
    RunRow r;
    r.status = status_name(o.status);
    r.duration_ms = std::round(o.duration_ms * 1000) / 1000;
    std::string output = o.out.text;
    if (!o.err.text.empty()) output += std::string(output.empty() || output.back() == '\n' ? "" : "\n") + "[stderr]\n" + o.err.text;
    r.output = head_tail(output, limit);
    r.result = o.result;
    if (o.error) {
        std::string e = o.error->traceback.empty() || o.status != engine::ExecOutcome::Status::Error
                            ? o.error->type + (o.error->message.empty() ? "" : ": " + o.error->message)
                            : o.error->traceback;
        r.error = head_tail(e, limit);
    }
    return r;
}

RunRow failed_row(const std::string& why) {
    RunRow r;
    r.status = "failure";
    r.duration_ms = 0;
    r.error = why;
    return r;
}

}  // namespace

struct Scheduler::Core : std::enable_shared_from_this<Scheduler::Core> {
    Core(SchedulerOptions o, engine::Engine& e, ScriptStore& s, const mcp::ToolRegistry& r)
        : options(std::move(o)), engine(e), scripts(s), registry(r) {}

    const SchedulerOptions options;
    engine::Engine& engine;
    ScriptStore& scripts;
    const mcp::ToolRegistry& registry;
    // Set by open() on the scheduler thread (or by start() when schedules are off) before
    // `opened`; only read after it: the request paths call wait_opened() first.
    std::unique_ptr<ScheduleStore> store;
    std::string unavailable = "schedules are not started yet";
    int lock_fd = -1;

    mutable std::mutex open_mutex;
    mutable std::condition_variable opened_cv;
    bool opened = false;  // GUARDED_BY(open_mutex)

    mutable std::mutex mutex;
    std::condition_variable wake;
    std::map<int64_t, Armed> armed;  // GUARDED_BY(mutex)
    bool stopping = false;           // GUARDED_BY(mutex)
    std::thread thread;

    bool take_process_lock();
    void open();
    void mark_opened();
    void wait_opened() const;
    void arm(ScheduleRow row);
    void loop();
    void launch(const ScheduleRow& row, const CancellationToken& cancel);
    void finished(int64_t id, int64_t run_id, const RunRow& outcome);
    engine::ExecRequest request_for(const ScheduleRow& row, const CancellationToken& cancel) const;
    void store_next_run(int64_t id, double next, int64_t skipped);
};

// One process per data dir runs its schedules; the kernel drops the lock when the process dies.
bool Scheduler::Core::take_process_lock() {
    std::string path = options.database.string() + ".lock";
    lock_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        unavailable = "schedules are off: cannot open " + path + ": " + std::strerror(errno);
        return false;
    }
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        unavailable = "schedules are off in this server: another python-mcp process using the same data directory "
                      "runs them (it holds " + path + "); manage schedules there, or give this server its own --data-dir";
        ::close(lock_fd);
        lock_fd = -1;
        return false;
    }
    return true;
}

void Scheduler::Core::arm(ScheduleRow row) {
    Armed a;
    if (!row.cron.empty()) a.cron = CronExpression::parse(row.cron);
    a.row = std::move(row);
    a.next_due = next_tick(a, now_unix());
    a.last_due = a.next_due;
    int64_t id = a.row.id;
    double next = a.next_due;
    {
        std::lock_guard lock(mutex);
        armed[id] = std::move(a);
    }
    wake.notify_all();
    store_next_run(id, next, 0);
}

void Scheduler::Core::store_next_run(int64_t id, double next, int64_t skipped) {
    try {
        if (skipped > 0) store->add_skipped(id, skipped);
        store->set_next_run(id, next > 0 ? iso_ms(next) : "");
    } catch (const ScheduleStoreError& e) {
        spdlog::error("schedule {}: {}", id, e.what());
    }
}

void Scheduler::Core::loop() {
    std::unique_lock lock(mutex);
    while (!stopping) {
        const double now = now_unix();
        double earliest = std::numeric_limits<double>::infinity();
        std::vector<std::pair<ScheduleRow, CancellationToken>> due;
        for (auto& [id, a] : armed) {
            if (a.running || a.next_due <= 0) continue;
            if (a.next_due <= now) {
                a.running = true;
                a.last_due = a.next_due;
                a.cancel = CancellationSource();
                due.emplace_back(a.row, a.cancel.token());
            } else {
                earliest = std::min(earliest, a.next_due);
            }
        }
        if (!due.empty()) {  // submit outside the lock: a completion may come back at once
            lock.unlock();
            for (const auto& [row, cancel] : due) launch(row, cancel);
            lock.lock();
            continue;
        }
        if (std::isinf(earliest)) {
            wake.wait(lock);
        } else {
            auto at = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::duration<double>(earliest)));
            wake.wait_until(lock, at);
        }
    }
}

engine::ExecRequest Scheduler::Core::request_for(const ScheduleRow& row, const CancellationToken& cancel) const {
    engine::ExecRequest req;
    req.code = scripts.read_code(row.script);  // ToolError when it was deleted
    req.filename = scripts.existing_path(row.script).string();
    req.argv = {req.filename};
    req.argv.insert(req.argv.end(), row.args.begin(), row.args.end());
    req.persistent = row.session_id.has_value();
    req.session_id = row.session_id.value_or("schedule-" + std::to_string(row.id));
    req.timeout = row.timeout_seconds
                      ? std::chrono::milliseconds(static_cast<long long>(std::ceil(*row.timeout_seconds * 1000)))
                      : options.default_timeout;
    req.max_output = options.max_output;
    req.max_images = 0;  // figures are not stored
    req.max_image_bytes = 0;
    req.cancel = cancel;
    return req;
}

void Scheduler::Core::launch(const ScheduleRow& row, const CancellationToken& cancel) {
    const double started = now_unix();
    int64_t run_id = 0;
    try {
        run_id = store->begin_run(row.id, iso_ms(started), started);
    } catch (const ScheduleStoreError& e) {
        spdlog::error("schedule {}: cannot record a run: {}", row.id, e.what());
        finished(row.id, 0, failed_row(e.what()));
        return;
    }
    engine::ExecRequest req;
    try {
        req = request_for(row, cancel);
    } catch (const ToolError& e) {
        finished(row.id, run_id, failed_row(e.what()));
        return;
    }
    // No client: output stays in the outcome, progress goes nowhere, mcp.call uses the registry.
    auto host = std::make_shared<ToolCallHost>(registry, mcp::CallContext(cancel, nullptr, nullptr, nullptr), nullptr);
    auto self = shared_from_this();
    const int64_t id = row.id;
    const size_t limit = options.max_output;
    try {
        engine.submit(req, host, [self, id, run_id, limit](engine::ExecOutcome o) {
            self->finished(id, run_id, run_row(o, limit));
        });
    } catch (const engine::EngineError& e) {
        finished(id, run_id, failed_row(e.what()));
    }
}

// The run ended (or could not start): close its row, then the next tick after now.
void Scheduler::Core::finished(int64_t id, int64_t run_id, const RunRow& outcome) {
    try {
        if (run_id) store->end_run(run_id, id, outcome);
    } catch (const ScheduleStoreError& e) {
        spdlog::error("schedule {}: cannot record the end of run {}: {}", id, run_id, e.what());
    }
    double next = 0;
    int64_t skipped = 0;
    bool known = false;
    {
        std::lock_guard lock(mutex);
        auto it = armed.find(id);
        if (it != armed.end()) {
            known = true;
            Armed& a = it->second;
            a.running = false;
            next = next_tick(a, std::max(now_unix(), a.last_due));
            for (double t = next_tick(a, a.last_due); t > 0 && t < next && skipped < 100000; t = next_tick(a, t)) ++skipped;
            a.next_due = next;
        }
    }
    if (!known) {  // unscheduled while it ran: its run row may have been written after the delete
        try {
            store->remove(id);
        } catch (const ScheduleStoreError& e) {
            spdlog::error("schedule {}: {}", id, e.what());
        }
        return;
    }
    wake.notify_all();
    store_next_run(id, next, skipped);
}

Scheduler::Scheduler(SchedulerOptions options, engine::Engine& engine, ScriptStore& scripts,
                     const mcp::ToolRegistry& registry)
    : core_(std::make_shared<Core>(std::move(options), engine, scripts, registry)) {}

Scheduler::~Scheduler() { stop(); }

// Opening the store (creating it, a quick_check, marking cut-off runs) and re-arming: on the
// scheduler thread, so a server's start-up and its first answers never wait for SQLite.
void Scheduler::Core::open() {
    Core& c = *this;
    try {
        ensure_directory(c.options.database.parent_path());
    } catch (const std::exception& e) {
        c.unavailable = "schedules are off: cannot create " + c.options.database.parent_path().string() + ": " + e.what();
        spdlog::error("{}", c.unavailable);
        return;
    }
    if (!c.take_process_lock()) {
        spdlog::warn("{}", c.unavailable);
        return;
    }
    std::vector<ScheduleRow> rows;
    try {
        c.store = std::make_unique<ScheduleStore>(c.options.database, c.options.runs_kept);
        rows = c.store->list();
    } catch (const std::exception& e) {
        c.store.reset();
        c.unavailable = std::string("schedules are off: ") + e.what() +
                        " (the server runs without schedules; move the file away to start afresh)";
        spdlog::error("{}", c.unavailable);
        return;
    }
    if (c.store->interrupted_at_open())
        spdlog::warn("schedules: {} run(s) cut off by the end of an earlier server recorded as interrupted",
                     c.store->interrupted_at_open());
    c.unavailable.clear();
    for (auto& row : rows) {
        try {
            c.arm(std::move(row));
        } catch (const std::exception& e) {
            spdlog::error("schedule {}: not armed: {}", row.id, e.what());
        }
    }
    spdlog::info("schedules: {} armed from {}", rows.size(), c.options.database.string());
}

void Scheduler::Core::mark_opened() {
    {
        std::lock_guard lock(open_mutex);
        opened = true;
    }
    opened_cv.notify_all();
}

void Scheduler::Core::wait_opened() const {
    std::unique_lock lock(open_mutex);
    opened_cv.wait(lock, [&] { return opened; });
}

void Scheduler::start() {
    Core& c = *core_;
    if (!c.options.enabled) {
        c.unavailable = "schedules are off in this server (it was started with --no-schedules)";
        c.mark_opened();
        return;
    }
    c.thread = std::thread([core = core_] {
        core->open();
        core->mark_opened();
        core->loop();  // with nothing armed when schedules are off: it only waits for stop()
    });
}

void Scheduler::stop() {
    {
        std::lock_guard lock(core_->mutex);
        core_->stopping = true;
    }
    core_->wake.notify_all();
    if (core_->thread.joinable()) core_->thread.join();
}

std::string Scheduler::unavailable() const {
    core_->wait_opened();
    return core_->unavailable;
}
std::filesystem::path Scheduler::database() const { return core_->options.database; }

ScheduleInfo Scheduler::add(const ScheduleRequest& r) {
    Core& c = *core_;
    c.wait_opened();
    if (!c.unavailable.empty()) throw ToolError(c.unavailable);
    ScheduleRow row;
    (void)c.scripts.existing_path(r.script);  // ToolError naming the script when there is none
    row.script = c.scripts.normalize(r.script);
    if (r.every.has_value() == !r.cron.empty())
        throw ToolError(r.every ? "give 'every' or 'cron', not both"
                                : "give 'every' (seconds between runs) or 'cron' (e.g. '0 * * * *': every hour)");
    if (r.every) {
        if (!std::isfinite(*r.every) || *r.every < c.options.min_interval || *r.every > 366.0 * 86400)
        {
            char low[32];
            std::snprintf(low, sizeof low, "%g", c.options.min_interval);
            throw ToolError(std::string("'every' must be a number of seconds from ") + low + " to 31622400 (a year)");
        }
        row.every_seconds = r.every;
    } else {
        try {
            auto cron = CronExpression::parse(r.cron);
            if (!cron.next_after(std::time(nullptr))) throw ToolError("cron '" + r.cron + "' never matches a date");
            row.cron = cron.text();
        } catch (const CronError& e) {
            throw ToolError(e.what());
        }
    }
    if (r.session_id && r.session_id->empty()) throw ToolError("'session_id' must not be empty");
    if (r.timeout && (!std::isfinite(*r.timeout) || *r.timeout <= 0 || *r.timeout > 7.0 * 86400))
        throw ToolError("'timeout' must be a positive number of seconds (at most a week)");
    row.session_id = r.session_id;
    row.args = r.args;
    row.timeout_seconds = r.timeout;
    const double now = now_unix();
    row.created_at = iso_ms(now);
    row.anchor_unix = now;
    try {
        row.id = c.store->add(row);
    } catch (const ScheduleStoreError& e) {
        throw ToolError(std::string("the schedule was not stored: ") + e.what());
    }
    c.arm(row);
    for (auto& info : list())
        if (info.row.id == row.id) return info;
    throw ToolError("the schedule was removed while it was being added");
}

bool Scheduler::remove(int64_t id) {
    Core& c = *core_;
    c.wait_opened();
    if (!c.unavailable.empty()) throw ToolError(c.unavailable);
    std::optional<CancellationSource> running;
    {
        std::lock_guard lock(c.mutex);
        auto it = c.armed.find(id);
        if (it != c.armed.end()) {
            if (it->second.running) running = it->second.cancel;
            c.armed.erase(it);
        }
    }
    c.wake.notify_all();
    bool removed = false;
    try {
        removed = c.store->remove(id);
    } catch (const ScheduleStoreError& e) {
        if (running) running->cancel("the schedule was removed (unschedule)");
        throw ToolError(std::string("the schedule was not removed: ") + e.what());
    }
    // After the delete (the run's end then only cleans up its row), without the lock: cancelling
    // may complete the run at once, on this thread (finished()).
    if (running) running->cancel("the schedule was removed (unschedule)");
    return removed;
}

std::vector<ScheduleInfo> Scheduler::list() const {
    Core& c = *core_;
    c.wait_opened();
    if (!c.unavailable.empty()) throw ToolError(c.unavailable);
    std::vector<ScheduleRow> rows;
    try {
        rows = c.store->list();
    } catch (const ScheduleStoreError& e) {
        throw ToolError(e.what());
    }
    std::vector<ScheduleInfo> out;
    std::lock_guard lock(c.mutex);
    for (auto& row : rows) {
        ScheduleInfo info;
        if (auto it = c.armed.find(row.id); it != c.armed.end()) {
            info.running = it->second.running;
            if (it->second.next_due > 0) info.next_run = iso_ms(it->second.next_due);
        }
        info.row = std::move(row);
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<RunRow> Scheduler::recent_runs(int64_t id, size_t count) const {
    core_->wait_opened();
    if (!core_->store) return {};
    try {
        return core_->store->recent_runs(id, count);
    } catch (const ScheduleStoreError& e) {
        throw ToolError(e.what());
    }
}

}  // namespace pymcp::tools
